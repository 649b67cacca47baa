package mountopt

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTable(t *testing.T) {
	if f, ok := Lookup("ro"); !ok || f.Clear || f.Flag != unix.MS_RDONLY {
		t.Errorf("ro = %+v %v", f, ok)
	}
	if f, ok := Lookup("rw"); !ok || !f.Clear || f.Flag != unix.MS_RDONLY {
		t.Errorf("rw = %+v %v", f, ok)
	}
	if f, ok := Propagation("rshared"); !ok || f != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("rshared = %#x %v", f, ok)
	}
	if IsPropagation("ro") || !IsPropagation("runbindable") {
		t.Error("IsPropagation mixes flags and propagations")
	}
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %v", names)
	}
	// Every name is applied somewhere, and no option is both a flag and a
	// propagation.
	for _, n := range names {
		_, flag := Lookup(n)
		_, prop := Propagation(n)
		if flag && prop || !flag && !prop && n != TmpCopyUp {
			t.Errorf("option %q: flag %v, propagation %v", n, flag, prop)
		}
	}
	for _, ignored := range []string{"rro", "idmap", "nosymfollow", "size=1m"} {
		if slices.Contains(names, ignored) {
			t.Errorf("Names lists %q, which berth does not apply", ignored)
		}
	}
}
