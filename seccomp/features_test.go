package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFeatureLists(t *testing.T) {
	acts := Actions()
	for _, a := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG"} {
		if !slices.Contains(acts, a) {
			t.Errorf("Actions lacks %s: %v", a, acts)
		}
	}
	if slices.Contains(acts, string(specs.ActNotify)) {
		t.Errorf("Actions lists SCMP_ACT_NOTIFY, which berth refuses")
	}
	// Each listed operator compiles in a rule.
	for _, op := range Operators() {
		if _, err := validateConds([]specs.LinuxSeccompArg{{Index: 0, Op: specs.LinuxSeccompOperator(op)}}); err != nil {
			t.Errorf("operator %s: %v", op, err)
		}
	}
	if len(Operators()) != 7 {
		t.Errorf("Operators = %v", Operators())
	}
	if a := Archs(); !slices.Equal(a, []string{"SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"}) {
		t.Errorf("Archs = %v", a)
	}
}
