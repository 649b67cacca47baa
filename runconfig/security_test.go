package runconfig

import (
	"encoding/json"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/runtime"
)

// allCaps pins "all capabilities" for the tests.
func allCaps(t *testing.T) []string {
	t.Helper()
	all := runtime.KnownCaps()
	old := boundedCaps
	boundedCaps = func() []string { return slices.Clone(all) }
	t.Cleanup(func() { boundedCaps = old })
	return all
}

func TestCapabilities(t *testing.T) {
	all := allCaps(t)
	def := runtime.DefaultCaps
	without := func(l []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(l), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name      string
		add, drop []string
		priv      bool
		want      []string
	}{
		{"default", nil, nil, false, def},
		{"add", []string{"net_admin", "CAP_SYS_PTRACE"}, nil, false, append(slices.Clone(def), "CAP_NET_ADMIN", "CAP_SYS_PTRACE")},
		{"add twice and present", []string{"Net_Admin", "CAP_NET_ADMIN", "chown"}, nil, false, append(slices.Clone(def), "CAP_NET_ADMIN")},
		{"drop", nil, []string{"chown", "CAP_NET_RAW"}, false, without(def, "CAP_CHOWN", "CAP_NET_RAW")},
		{"drop ALL add some", []string{"chown", "kill"}, []string{"all"}, false, []string{"CAP_CHOWN", "CAP_KILL"}},
		{"drop ALL", nil, []string{"ALL"}, false, []string{}},
		{"add ALL drop some", []string{"ALL"}, []string{"sys_admin"}, false, without(all, "CAP_SYS_ADMIN")},
		{"add and drop the same", []string{"net_raw"}, []string{"net_raw"}, false, append(without(def, "CAP_NET_RAW"), "CAP_NET_RAW")},
		{"privileged ignores drops", nil, []string{"ALL"}, true, all},
	}
	for _, tt := range tests {
		o := opts("sh")
		o.Host.CapAdd, o.Host.CapDrop, o.Host.Privileged = tt.add, tt.drop, tt.priv
		s := specOf(t, o)
		c := s.Process.Capabilities
		if !slices.Equal(c.Bounding, tt.want) || !slices.Equal(c.Effective, tt.want) || !slices.Equal(c.Permitted, tt.want) {
			t.Errorf("%s: bounding %v effective %v permitted %v, want %v", tt.name, c.Bounding, c.Effective, c.Permitted, tt.want)
		}
		if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
			t.Errorf("%s: inheritable %v ambient %v, want none", tt.name, c.Inheritable, c.Ambient)
		}
	}
	for _, bad := range []struct {
		add, drop []string
		want      string
	}{
		{[]string{"fly"}, nil, `--cap-add: unknown capability "fly"`},
		{nil, []string{"CAP_FLY"}, `--cap-drop: unknown capability "CAP_FLY"`},
	} {
		o := opts("sh")
		o.Host.CapAdd, o.Host.CapDrop = bad.add, bad.drop
		_, _, err := Spec(testID, o, &fakeVols{})
		wantErr(t, "caps", err, bad.want)
	}
	// A capability berth lacks can not be given.
	boundedCaps = func() []string { return without(all, "CAP_SYS_RESOURCE") }
	o := opts("sh")
	o.Host.CapAdd = []string{"sys_resource"}
	_, _, err := Spec(testID, o, &fakeVols{})
	wantErr(t, "cap-add of a capability berth lacks", err, "berth itself does not hold this capability")
	o = opts("sh")
	o.Host.Privileged = true
	if c := specOf(t, o).Process.Capabilities; slices.Contains(c.Bounding, "CAP_SYS_RESOURCE") {
		t.Error("--privileged gave a capability berth lacks")
	}
}

func TestPrivileged(t *testing.T) {
	allCaps(t)
	o := opts("sh")
	o.Host.Privileged = true
	o.Host.SecurityOpt = []string{"seccomp=/nonexistent.json"} // ignored, as Docker
	s := specOf(t, o)
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("seccomp %v masked %v readonly %v, want none", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Type != "" {
		t.Errorf("device cgroup %+v, want allow all", d)
	}
	for _, dst := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := findMount(s, dst); slices.Contains(m.Options, "ro") {
			t.Errorf("%s still read-only: %v", dst, m.Options)
		}
	}
	if m := findMount(specOf(t, opts("sh")), "/sys"); !slices.Contains(m.Options, "ro") {
		t.Error("the default spec's /sys lost ro")
	}
	var null *specs.LinuxDevice
	for i, d := range s.Linux.Devices {
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" || d.Path == "/dev/ptmx" || strings.HasPrefix(d.Path, "/dev/shm/") {
			t.Errorf("device %s should be skipped", d.Path)
		}
		if d.Type != "c" && d.Type != "b" {
			t.Errorf("device %s of type %q", d.Path, d.Type)
		}
		if d.Path == "/dev/null" {
			null = &s.Linux.Devices[i]
		}
	}
	if null == nil || null.Type != "c" || null.Major != 1 || null.Minor != 3 || null.FileMode == nil || *null.FileMode&0o777 != 0o666 {
		t.Errorf("/dev/null %+v", null)
	}
}

func TestSecurityOpt(t *testing.T) {
	tests := []struct {
		opts    []string
		nnp     bool
		seccomp bool
		masked  bool
	}{
		{nil, true, true, true},
		{[]string{"no-new-privileges"}, true, true, true},
		{[]string{"no-new-privileges:true"}, true, true, true},
		{[]string{"no-new-privileges=false"}, false, true, true},
		{[]string{"no-new-privileges:false"}, false, true, true},
		{[]string{"seccomp=unconfined"}, true, false, true},
		{[]string{"seccomp:unconfined"}, true, false, true},
		{[]string{"systempaths=unconfined"}, true, true, false},
		{[]string{"label=disable", "apparmor=unconfined", "label:disable"}, true, true, true},
	}
	for _, tt := range tests {
		o := opts("sh")
		o.Host.SecurityOpt = tt.opts
		s := specOf(t, o)
		if s.Process.NoNewPrivileges != tt.nnp || (s.Linux.Seccomp != nil) != tt.seccomp || (s.Linux.MaskedPaths != nil) != tt.masked || (s.Linux.ReadonlyPaths != nil) != tt.masked {
			t.Errorf("%q: nnp %v seccomp %v masked %v", tt.opts, s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
		}
	}
	// The default profile follows the capabilities: CAP_SYS_ADMIN allows
	// mount.
	allows := func(sc *specs.LinuxSeccomp, name string) bool {
		for _, r := range sc.Syscalls {
			if r.Action == specs.ActAllow && slices.Contains(r.Names, name) && len(r.Args) == 0 {
				return true
			}
		}
		return false
	}
	if allows(specOf(t, opts("sh")).Linux.Seccomp, "mount") {
		t.Error("the default profile allows mount without CAP_SYS_ADMIN")
	}
	allCaps(t)
	o := opts("sh")
	o.Host.CapAdd = []string{"SYS_ADMIN"}
	if !allows(specOf(t, o).Linux.Seccomp, "mount") {
		t.Error("the default profile with CAP_SYS_ADMIN does not allow mount")
	}

	for _, bad := range []struct{ opt, want string }{
		{"no-new-privileges=maybe", "want no-new-privileges[=true|false]"},
		{"seccomp=", "want seccomp=unconfined or seccomp=PROFILE.json"},
		{"seccomp=/nonexistent.json", "--security-opt seccomp: open /nonexistent.json"},
		{"label=type:svirt_t", "no SELinux support"},
		{"apparmor=docker-default", "no AppArmor support"},
		{"systempaths=confined", "want systempaths=unconfined"},
		{"mask=/proc/x", `--security-opt "mask=/proc/x": unsupported option`},
		{"no-new-privileges-typo", "unsupported option"},
	} {
		o := opts("sh")
		o.Host.SecurityOpt = []string{bad.opt}
		_, _, err := Spec(testID, o, &fakeVols{})
		wantErr(t, bad.opt, err, bad.want)
	}
}

func TestSeccompProfileFile(t *testing.T) {
	native := nativeArch[goruntime.GOARCH]
	profile := map[string]any{
		"defaultAction":   "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 1,
		"archMap": []any{
			map[string]any{"architecture": string(native), "subArchitectures": []string{"SCMP_ARCH_X32"}},
			map[string]any{"architecture": "SCMP_ARCH_NOTME", "subArchitectures": []string{"SCMP_ARCH_OTHER"}},
		},
		"syscalls": []any{
			map[string]any{"names": []string{"read", "write", "exit_group"}, "action": "SCMP_ACT_ALLOW"},
			map[string]any{"names": []string{"mount"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"caps": []string{"CAP_SYS_ADMIN"}}},
			map[string]any{"names": []string{"reboot"}, "action": "SCMP_ACT_ALLOW", "excludes": map[string]any{"caps": []string{"CAP_CHOWN"}}},
			map[string]any{"names": []string{"getpid"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"arches": []string{"notmyarch"}}},
			map[string]any{"names": []string{"getppid"}, "action": "SCMP_ACT_ALLOW", "excludes": map[string]any{"arches": []string{goruntime.GOARCH}}},
			map[string]any{"names": []string{"gettid"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"minKernel": "99.0"}},
			map[string]any{"names": []string{"uname"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"minKernel": "2.6"}},
			map[string]any{"name": "close", "action": "SCMP_ACT_ALLOW"},
		},
	}
	b, _ := json.Marshal(profile)
	file := writeFile(t, "profile.json", string(b))

	o := opts("sh")
	o.Host.SecurityOpt = []string{"seccomp=" + file}
	sc := specOf(t, o).Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Fatalf("profile %+v", sc)
	}
	if want := []specs.Arch{native, "SCMP_ARCH_X32"}; !slices.Equal(sc.Architectures, want) {
		t.Errorf("architectures %v, want %v", sc.Architectures, want)
	}
	var names []string
	for _, r := range sc.Syscalls {
		names = append(names, r.Names...)
	}
	// Default caps: CAP_CHOWN (so no reboot), no CAP_SYS_ADMIN (no mount).
	if want := []string{"read", "write", "exit_group", "uname", "close"}; !slices.Equal(names, want) {
		t.Errorf("syscalls %v, want %v", names, want)
	}

	bad := []struct{ content, want string }{
		{"{", "unexpected end of JSON"},
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}`, "a rule has no syscall names"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.0"}}]}`, "minKernel is only valid in includes"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}`, "invalid kernel version"},
		{`{"defaultAction": "SCMP_ACT_BOGUS"}`, ""},
	}
	for _, tt := range bad {
		o := opts("sh")
		o.Host.SecurityOpt = []string{"seccomp=" + writeFile(t, "p.json", tt.content)}
		_, _, err := Spec(testID, o, &fakeVols{})
		wantErr(t, tt.content, err, tt.want)
	}
}

func TestParseKernelVersion(t *testing.T) {
	for _, tt := range []struct {
		v        string
		maj, min int
		ok       bool
	}{
		{"6.8.0-45-generic", 6, 8, true}, {"5.10", 5, 10, true}, {"4.19.0+", 4, 19, true}, {"4", 0, 0, false}, {"x.y", 0, 0, false},
	} {
		maj, min, err := parseKernelVersion(tt.v)
		if (err == nil) != tt.ok || tt.ok && (maj != tt.maj || min != tt.min) {
			t.Errorf("parseKernelVersion(%q) = %d, %d, %v", tt.v, maj, min, err)
		}
	}
}
