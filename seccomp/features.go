package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// operators are the argument comparisons the compiler emits code for.
var operators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// specActions are all the actions the runtime-spec names; Actions keeps
// those actionRet compiles.
var specActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

// Actions lists the actions a profile may use, sorted.
func Actions() []string {
	var out []string
	for _, a := range specActions {
		if _, err := actionRet(a, nil); err == nil {
			out = append(out, string(a))
		}
	}
	slices.Sort(out)
	return out
}

// Operators lists the argument operators a profile may use, sorted.
func Operators() []string {
	var out []string
	for _, o := range operators {
		out = append(out, string(o))
	}
	slices.Sort(out)
	return out
}

// Archs lists the architectures a filter is compiled for, sorted (the
// others a profile names are accepted and left out).
func Archs() []string {
	var out []string
	for a := range supportedArches {
		out = append(out, string(a))
	}
	slices.Sort(out)
	return out
}
