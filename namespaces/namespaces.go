// Package namespaces turns the namespaces of a runtime spec into clone
// flags, joins existing namespaces by path, and sets up id mappings and
// time namespace offsets.
package namespaces

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var flagOf = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// ProcName is the name of each namespace under /proc/PID/ns.
var ProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Flag returns the clone flag of a namespace type.
func Flag(t specs.LinuxNamespaceType) (uintptr, error) {
	f, ok := flagOf[t]
	if !ok {
		return 0, fmt.Errorf("unknown namespace type %q", t)
	}
	return f, nil
}

// Plan is what to do with the namespaces of one process.
type Plan struct {
	// Clone are the flags of namespaces to create at clone time. Cgroup and
	// time namespaces are left out: a cgroup namespace must be made after
	// the process is in its cgroup, and a time namespace needs its offsets
	// written before any process enters it.
	Clone uintptr
	// NewCgroup asks the init to unshare a cgroup namespace once placed.
	NewCgroup bool
	// NewTime asks for a new time namespace (see NewTime).
	NewTime bool
	// Join maps namespace types to the paths to join.
	Join map[specs.LinuxNamespaceType]string
}

// Has reports whether the plan creates or joins a namespace of type t.
func (p *Plan) Has(t specs.LinuxNamespaceType) bool {
	if _, ok := p.Join[t]; ok {
		return true
	}
	switch t {
	case specs.CgroupNamespace:
		return p.NewCgroup
	case specs.TimeNamespace:
		return p.NewTime
	}
	return p.Clone&flagOf[t] != 0
}

// PlanFor builds the plan from the spec's namespace list.
func PlanFor(nss []specs.LinuxNamespace) (*Plan, error) {
	return plan(nss, "")
}

// PlanBefore is PlanFor for a plan made before the namespace file to
// join of type later exists (it is made while the init starts).
func PlanBefore(nss []specs.LinuxNamespace, later specs.LinuxNamespaceType) (*Plan, error) {
	return plan(nss, later)
}

func plan(nss []specs.LinuxNamespace, later specs.LinuxNamespaceType) (*Plan, error) {
	p := &Plan{Join: map[specs.LinuxNamespaceType]string{}}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range nss {
		f, err := Flag(ns.Type)
		if err != nil {
			return nil, err
		}
		if seen[ns.Type] {
			return nil, fmt.Errorf("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil && ns.Type != later {
				return nil, fmt.Errorf("namespace %s path: %w", ns.Type, err)
			}
			p.Join[ns.Type] = ns.Path
			continue
		}
		switch ns.Type {
		case specs.CgroupNamespace:
			p.NewCgroup = true
		case specs.TimeNamespace:
			p.NewTime = true
		default:
			p.Clone |= f
		}
	}
	return p, nil
}

// JoinForExec returns a plan that joins every namespace of pid that differs
// from the caller's own.
func JoinForExec(pid int) (*Plan, error) {
	p := &Plan{Join: map[specs.LinuxNamespaceType]string{}}
	for t, name := range ProcName {
		theirs := fmt.Sprintf("/proc/%d/ns/%s", pid, name)
		a, err := os.Stat(theirs)
		if err != nil {
			if os.IsNotExist(err) {
				continue // kernel without this namespace type
			}
			return nil, fmt.Errorf("namespace %s of pid %d: %w", name, pid, err)
		}
		b, err := os.Stat("/proc/self/ns/" + name)
		if err != nil {
			return nil, fmt.Errorf("own namespace %s: %w", name, err)
		}
		if os.SameFile(a, b) {
			continue
		}
		p.Join[t] = theirs
	}
	return p, nil
}

// JoinBeforeFork joins, on the calling (locked) thread, the namespaces that
// a fork from this thread must inherit: everything except mount (the child
// joins that itself, so that re-executing berth still resolves paths in the
// host's mount namespace) and user (a multi-threaded process cannot join a
// user namespace: the forked child does, see package nsfork). The caller
// must have locked the goroutine to its thread and must let the thread die
// afterwards.
func (p *Plan) JoinBeforeFork(offsets map[string]specs.LinuxTimeOffset) error {
	// Berth is root in the initial user namespace, so it may join these
	// before the user namespace that owns them.
	for _, t := range []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.CgroupNamespace, specs.PIDNamespace, specs.TimeNamespace} {
		path, ok := p.Join[t]
		if !ok {
			continue
		}
		if err := SetnsPath(path, flagOf[t]); err != nil {
			return err
		}
	}
	if len(offsets) > 0 && !p.NewTime {
		return fmt.Errorf("timeOffsets need a new time namespace")
	}
	return nil
}

// NewTime makes a new time namespace with offsets as the calling thread's
// time_for_children. The offsets file is per process, so call it from the
// main thread and fork the namespace's first process from that thread.
func NewTime(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	return writeTimeOffsets(offsets)
}

// JoinMount joins the mount namespace at path from the calling locked thread.
func JoinMount(path string) error {
	// setns into a mount namespace needs a private fs_struct.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	return SetnsPath(path, unix.CLONE_NEWNS)
}

// SetnsPath joins the namespace at path.
func SetnsPath(path string, flag uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, int(flag)); err != nil {
		return fmt.Errorf("setns %s: %w", path, err)
	}
	return nil
}

func writeTimeOffsets(offsets map[string]specs.LinuxTimeOffset) error {
	var buf []byte
	for clock, off := range offsets {
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("time offset for unknown clock %q", clock)
		}
		buf = fmt.Appendf(buf, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if len(buf) == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/self/timens_offsets", buf, 0); err != nil {
		return fmt.Errorf("write time offsets: %w", err)
	}
	return nil
}

// IDMaps converts spec id mappings to the form os/exec writes.
func IDMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, e := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)})
	}
	return out
}

// HostID maps a container id to the host through mappings (identity when
// there are none), for chowning files the container must own.
func HostID(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	if len(m) == 0 {
		return id, true
	}
	for _, e := range m {
		if id >= e.ContainerID && id < e.ContainerID+e.Size {
			return e.HostID + (id - e.ContainerID), true
		}
	}
	return 0, false
}

// ipcSysctls are the kernel.* sysctls of an IPC namespace (ipc/ipc_sysctl.c).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
	"kernel.msg_next_id": true, "kernel.sem_next_id": true, "kernel.shm_next_id": true,
}

// SysctlNamespace is the namespace a sysctl belongs to, so that setting it
// in a container changes only that namespace; "" for a sysctl that is not
// namespaced, which a container must never set (it would change the host).
func SysctlNamespace(key string) specs.LinuxNamespaceType {
	switch {
	case strings.HasPrefix(key, "net."):
		return specs.NetworkNamespace
	case ipcSysctls[key], strings.HasPrefix(key, "fs.mqueue."):
		return specs.IPCNamespace
	case key == "kernel.hostname", key == "kernel.domainname":
		return specs.UTSNamespace
	}
	return ""
}

// Types lists the namespaces berth can create or join, sorted.
func Types() []specs.LinuxNamespaceType {
	out := make([]specs.LinuxNamespaceType, 0, len(flagOf))
	for t := range flagOf {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
