package container

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestLeanFits: only an init the lean program can fork (no user or time
// namespace, no namespace joined before the fork) starts under it, and
// no notify relay is asked for.
func TestLeanFits(t *testing.T) {
	f := newFixture(t)
	ns := func(extra ...specs.LinuxNamespace) []specs.LinuxNamespace {
		return append([]specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}}, extra...)
	}
	for _, c := range []struct {
		name    string
		ns      []specs.LinuxNamespace
		host    HostConfig
		uidMaps []specs.LinuxIDMapping
		want    bool
	}{
		{name: "plain", ns: ns(), want: true},
		{name: "bridge", ns: ns(), host: HostConfig{NetworkMode: "bridge"}, want: true},
		{name: "conmon", ns: ns(), host: HostConfig{Sdnotify: "conmon"}, want: true},
		{name: "sdnotify container", ns: ns(), host: HostConfig{Sdnotify: "container"}},
		{name: "sdnotify healthy", ns: ns(), host: HostConfig{Sdnotify: "healthy"}},
		{name: "user namespace", ns: ns(specs.LinuxNamespace{Type: specs.UserNamespace})},
		{name: "mapped root", ns: ns(), uidMaps: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}},
		{name: "time namespace", ns: ns(specs.LinuxNamespace{Type: specs.TimeNamespace})},
		{name: "joined ipc", ns: ns(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/1/ns/ipc"})},
		{name: "another container's network", ns: ns(), host: HostConfig{NetworkMode: "container:abc"}},
	} {
		r := &Record{ID: NewID(), HostConfig: c.host,
			Spec: &specs.Spec{Process: &specs.Process{Args: []string{"true"}}, Linux: &specs.Linux{Namespaces: c.ns, UIDMappings: c.uidMaps}}}
		if got := f.s.LeanFits(r); got != c.want {
			t.Errorf("%s: LeanFits = %v, want %v", c.name, got, c.want)
		}
	}
}
