// Package seccomp compiles OCI runtime-spec seccomp profiles
// (specs.LinuxSeccomp) into classic BPF seccomp filters and installs them,
// in pure Go (no libseccomp, no cgo).
//
// Supported architectures are the x86 family: SCMP_ARCH_X86_64,
// SCMP_ARCH_X86 (i386) and SCMP_ARCH_X32. Other known architecture names are
// accepted and ignored (a kernel on an x86 host never presents them); the
// native architecture of the running binary is always part of the filter,
// like libseccomp does. System calls from any architecture that is not part
// of the filter get the profile's default action.
//
// Semantics follow runc+libseccomp where the spec is silent:
//   - a syscall name that does not exist on an architecture is skipped for
//     that architecture; a name unknown on every architecture is logged at
//     debug level;
//   - rules whose action equals the default action are kept (runc drops
//     them because libseccomp refuses them): with first-match ordering a
//     conditional ALLOW under a default ALLOW still takes precedence over a
//     later unconditional ERRNO for the same syscall;
//   - all argument conditions of one rule are ANDed; a rule matches when all
//     its conditions hold;
//   - for one syscall, rules with argument conditions are tried first, in
//     profile order, then the first rule without conditions, then the
//     default action.
package seccomp

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data (little endian).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const x32SyscallBit = 0x40000000

// archInfo describes one seccomp architecture we can compile for.
type archInfo struct {
	name  specs.Arch
	audit uint32
	table func() map[string]uint32
}

var (
	archX86_64 = &archInfo{specs.ArchX86_64, unix.AUDIT_ARCH_X86_64, syscallsX86_64}
	archX86    = &archInfo{specs.ArchX86, unix.AUDIT_ARCH_I386, syscallsX86}
	archX32    = &archInfo{specs.ArchX32, unix.AUDIT_ARCH_X86_64, syscallsX32}
)

var supportedArches = map[specs.Arch]*archInfo{
	specs.ArchX86_64: archX86_64,
	specs.ArchX86:    archX86,
	specs.ArchX32:    archX32,
}

// foreignArches are valid OCI architecture names that cannot occur on an x86
// host; they are accepted and ignored.
var foreignArches = map[specs.Arch]bool{
	specs.ArchARM: true, specs.ArchAARCH64: true, specs.ArchMIPS: true,
	specs.ArchMIPS64: true, specs.ArchMIPS64N32: true, specs.ArchMIPSEL: true,
	specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true,
	specs.ArchS390X: true, specs.ArchPARISC: true, specs.ArchPARISC64: true,
	specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true, specs.ArchM68K: true,
	specs.ArchSH: true, specs.ArchSHEB: true,
}

// nativeArch returns the seccomp architecture of the running binary.
func nativeArch() (*archInfo, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "386":
		return archX86, nil
	}
	return nil, fmt.Errorf("seccomp: unsupported host architecture %q", runtime.GOARCH)
}

// actionRet converts an OCI action (+ optional errno) to a SECCOMP_RET_* value.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with %s or %s, not %q", specs.ActErrno, specs.ActTrace, act)
		}
		if *errnoRet > 0xffff {
			return 0, fmt.Errorf("errnoRet %d out of range (max 65535)", *errnoRet)
		}
		data = *errnoRet
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(data), nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(data), nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s is not supported", act)
	case "":
		return 0, fmt.Errorf("empty action")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

// Flags converts the profile's flags to SECCOMP_FILTER_FLAG_* bits for
// seccomp(2).
func Flags(cfg *specs.LinuxSeccomp) (uint, error) {
	if cfg == nil {
		return 0, fmt.Errorf("seccomp: nil profile")
	}
	var flags uint
	for _, f := range cfg.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case "SECCOMP_FILTER_FLAG_TSYNC":
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagWaitKillableRecv:
			return 0, fmt.Errorf("seccomp: flag %s needs a notify listener, which is not supported", f)
		default:
			return 0, fmt.Errorf("seccomp: unknown flag %q", f)
		}
	}
	return flags, nil
}
