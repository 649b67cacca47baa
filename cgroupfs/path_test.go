package cgroupfs

import "testing"

func TestSpecPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "/berth/c1"},
		{"/my/cg", "/my/cg"},
		{"rel/cg", "/rel/cg"},
		{"machine.slice:berth:c1", "/machine.slice/berth-c1.scope"},
		{":berth:c1", "/system.slice/berth-c1.scope"},
	} {
		if got := SpecPath(c.in, "c1"); got != c.want {
			t.Errorf("SpecPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := ChildPath("parent/x", "c1"); got != "/parent/x/berth-c1" {
		t.Errorf("ChildPath = %q", got)
	}
	// The CLI's default and the runtime's are one.
	if SpecPath("", "c1") != DefaultPath("c1") {
		t.Error("default paths differ")
	}
}
