package rlimit

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTable(t *testing.T) {
	seen := map[int]bool{}
	for _, typ := range SpecTypes() {
		res, ok := Resource(typ)
		if !ok {
			t.Fatalf("%s listed but has no resource", typ)
		}
		if seen[res] {
			t.Errorf("resource %d named twice", res)
		}
		seen[res] = true
		// Every type has its --ulimit name: the lower-case suffix.
		if got, ok := SpecType(strings.ToLower(strings.TrimPrefix(typ, "RLIMIT_"))); !ok || got != typ {
			t.Errorf("--ulimit name of %s: %q %v", typ, got, ok)
		}
		// The kernel knows the resource.
		var lim unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &lim); err != nil {
			t.Errorf("getrlimit %s (%d): %v", typ, res, err)
		}
	}
	if len(seen) != 16 {
		t.Errorf("%d limits, want the kernel's 16", len(seen))
	}
	if _, ok := SpecType("RLIMIT_NOFILE"); ok {
		t.Error("a spec type taken as a --ulimit name")
	}
	if _, ok := Resource("nofile"); ok {
		t.Error("a --ulimit name taken as a spec type")
	}
}
