package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// effectiveResources is what berth writes to the cgroup: the spec's
// resources, with device rules that let the container use the device
// nodes every container gets (the spec's own and the standard ones) and
// create nodes with mknod, appended after the spec's rules as runc does.
func effectiveResources(spec *specs.Spec) *specs.LinuxResources {
	var res specs.LinuxResources
	if spec.Linux.Resources != nil {
		res = *spec.Linux.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), res.Devices...)
	rules = append(rules,
		devRule("c", -1, -1, "m"), devRule("b", -1, -1, "m"),
		devRule("c", 1, 3, "rwm"), devRule("c", 1, 5, "rwm"), devRule("c", 1, 7, "rwm"),
		devRule("c", 1, 8, "rwm"), devRule("c", 1, 9, "rwm"), devRule("c", 5, 0, "rwm"),
		devRule("c", 5, 1, "rwm"), devRule("c", 5, 2, "rwm"), devRule("c", 136, -1, "rwm"),
		devRule("c", 10, 200, "rwm"),
	)
	for _, d := range spec.Linux.Devices {
		t := d.Type
		if t == "u" {
			t = "c"
		}
		if t == "p" || hasExactRule(res.Devices, t, d.Major, d.Minor) {
			// The spec's own rule for the node (berth run --device
			// HOST:CTR:r) says what access it gets.
			continue
		}
		rules = append(rules, devRule(t, d.Major, d.Minor, "rwm"))
	}
	res.Devices = rules
	return &res
}

// hasExactRule tells whether rules has an allow rule for exactly the
// device t major:minor.
func hasExactRule(rules []specs.LinuxDeviceCgroup, t string, major, minor int64) bool {
	for _, r := range rules {
		if r.Allow && r.Type == t && r.Major != nil && *r.Major == major && r.Minor != nil && *r.Minor == minor {
			return true
		}
	}
	return false
}
