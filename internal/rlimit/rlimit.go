// Package rlimit is the one table of resource limits berth knows: the
// runtime-spec's RLIMIT_ names, Docker's --ulimit names for them, and
// the kernel's resource numbers. The CLI, the runtime's spec check, the
// init and `oci features` all read it, so a limit one accepts the others
// can apply.
package rlimit

import (
	"sort"

	"golang.org/x/sys/unix"
)

// rlimitRTTime is RLIMIT_RTTIME, which x/sys/unix does not name.
const rlimitRTTime = 15

var table = []struct {
	ulimit, spec string
	resource     int
}{
	{"as", "RLIMIT_AS", unix.RLIMIT_AS},
	{"core", "RLIMIT_CORE", unix.RLIMIT_CORE},
	{"cpu", "RLIMIT_CPU", unix.RLIMIT_CPU},
	{"data", "RLIMIT_DATA", unix.RLIMIT_DATA},
	{"fsize", "RLIMIT_FSIZE", unix.RLIMIT_FSIZE},
	{"locks", "RLIMIT_LOCKS", unix.RLIMIT_LOCKS},
	{"memlock", "RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK},
	{"msgqueue", "RLIMIT_MSGQUEUE", unix.RLIMIT_MSGQUEUE},
	{"nice", "RLIMIT_NICE", unix.RLIMIT_NICE},
	{"nofile", "RLIMIT_NOFILE", unix.RLIMIT_NOFILE},
	{"nproc", "RLIMIT_NPROC", unix.RLIMIT_NPROC},
	{"rss", "RLIMIT_RSS", unix.RLIMIT_RSS},
	{"rtprio", "RLIMIT_RTPRIO", unix.RLIMIT_RTPRIO},
	{"rttime", "RLIMIT_RTTIME", rlimitRTTime},
	{"sigpending", "RLIMIT_SIGPENDING", unix.RLIMIT_SIGPENDING},
	{"stack", "RLIMIT_STACK", unix.RLIMIT_STACK},
}

// Resource is the kernel's resource number for a spec type ("RLIMIT_NOFILE").
func Resource(specType string) (int, bool) {
	for _, e := range table {
		if e.spec == specType {
			return e.resource, true
		}
	}
	return 0, false
}

// SpecType is the spec type of a --ulimit name ("nofile" -> "RLIMIT_NOFILE").
func SpecType(ulimit string) (string, bool) {
	for _, e := range table {
		if e.ulimit == ulimit {
			return e.spec, true
		}
	}
	return "", false
}

// SpecTypes lists every spec type berth can set, sorted.
func SpecTypes() []string {
	out := make([]string, 0, len(table))
	for _, e := range table {
		out = append(out, e.spec)
	}
	sort.Strings(out)
	return out
}
