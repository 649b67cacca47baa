package runtime

import (
	"reflect"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-project/berth/internal/mountopt"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/seccomp"
)

// Features is the runtime-spec features document (`oci features`), built
// from the tables the runtime applies, so it lists what berth does.
func Features() *features.Features {
	yes, no := true, false
	var ns []string
	for _, t := range namespaces.Types() {
		ns = append(ns, string(t))
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         hookNames(),
		MountOptions:  mountopt.Names(),
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: KnownCaps(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp: &features.Seccomp{
				Enabled:   &yes,
				Actions:   seccomp.Actions(),
				Operators: seccomp.Operators(),
				Archs:     seccomp.Archs(),
			},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
		},
	}
}

// hookNames are the JSON names of the hook lists of specs.Hooks: the
// runtime runs every one of them (Prestart with CreateRuntime).
func hookNames() []string {
	var out []string
	t := reflect.TypeFor[specs.Hooks]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}
