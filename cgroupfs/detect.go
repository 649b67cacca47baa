package cgroupfs

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs/hostcg"
)

const (
	// cgroupRoot is where the cgroup hierarchies are mounted.
	cgroupRoot = "/sys/fs/cgroup"
	// hybridUnified is the cgroup2 mount of the hybrid layout.
	hybridUnified = "/sys/fs/cgroup/unified"
)

var (
	modeOnce sync.Once
	mode     Mode
)

// DetectMode reports the cgroup layout of the host: Unified when
// /sys/fs/cgroup is a cgroup2 mount, Hybrid when /sys/fs/cgroup/unified is
// cgroup2 and v1 controllers are mounted too, Legacy otherwise. The result is
// computed once per process.
func DetectMode() Mode {
	modeOnce.Do(func() { mode = detectMode() })
	return mode
}

func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

func detectMode() Mode {
	if isCgroup2(cgroupRoot) {
		return Unified
	}
	if isCgroup2(hybridUnified) {
		if m, err := v1Mounts(); err == nil && len(m) > 0 {
			return Hybrid
		}
	}
	return Legacy
}

// New returns the manager of the cgroup at path, an OCI linux.cgroupsPath
// such as "/berth/abc" (relative to the root of every hierarchy; a relative
// path is taken from the root as well). New creates nothing and keeps no
// state but the path, so a later process can call New with the same path
// and manage the same cgroup. Apply creates it.
func New(path string) (Manager, error) {
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	switch m := DetectMode(); m {
	case Unified:
		return newV2(cgroupRoot, p, true), nil
	default:
		return newV1(p, m == Hybrid)
	}
}

// v1Mounts maps each v1 controller (by its name in /proc/cgroups) to the
// mount point of its hierarchy, read from /proc/self/mountinfo. Co-mounted
// controllers ("cpu,cpuacct") map to the same directory. Named hierarchies
// such as name=systemd are left out. Mounts under /sys/fs/cgroup win over
// others of the same hierarchy.
func v1Mounts() (map[string]string, error) {
	ctrls, _, err := v1Hierarchies()
	return ctrls, err
}

// namedMounts maps each named v1 hierarchy (a cgroup mount with a
// "name=" option and no controller, such as name=systemd) to its mount
// point, preferring mounts under /sys/fs/cgroup as v1Mounts does.
func namedMounts() (map[string]string, error) {
	_, named, err := v1Hierarchies()
	return named, err
}

// v1Hierarchies reads the v1 cgroup mounts once for both of the above:
// the controllers' hierarchies and the named ones without a controller.
func v1Hierarchies() (ctrls, named map[string]string, err error) {
	known, err := knownControllers()
	if err != nil {
		return nil, nil, err
	}
	mounts, err := Mounts()
	if err != nil {
		return nil, nil, err
	}
	ctrls, named = map[string]string{}, map[string]string{}
	prefer := func(out map[string]string, key, mountpoint string) {
		cur, have := out[key]
		if !have || (!strings.HasPrefix(cur, cgroupRoot+"/") && strings.HasPrefix(mountpoint, cgroupRoot+"/")) {
			out[key] = mountpoint
		}
	}
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			continue
		}
		name, ctrl := "", false
		for _, o := range strings.Split(m.SuperOpts, ",") {
			if strings.HasPrefix(o, "name=") {
				name = o
			}
			if known[o] {
				ctrl = true
				prefer(ctrls, o, m.Mountpoint)
			}
		}
		if name != "" && !ctrl {
			prefer(named, name, m.Mountpoint)
		}
	}
	return ctrls, named, nil
}

// Mount is a cgroup or cgroup2 mount of the process's mount namespace.
type Mount = hostcg.Mount

// Mounts returns the cgroup and cgroup2 mounts, read once per process
// (see hostcg.Mounts).
func Mounts() ([]Mount, error) { return hostcg.Mounts() }

// Prefetch reads the cgroup layout in the background, for a process that
// will need it once other work is done. The cgroup mounts are read only
// where something uses them (v1 and hybrid): the whole mount table, which
// grows with every running container, is read for them.
func Prefetch() {
	go func() {
		if DetectMode() != Unified {
			_, _ = Mounts()
		}
	}()
}

// knownControllers lists the controller names of /proc/cgroups.
func knownControllers() (map[string]bool, error) {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil, fmt.Errorf("read /proc/cgroups: %w", err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 4 && f[3] == "1" {
			m[f[0]] = true
		}
	}
	return m, nil
}

// RealtimeSupported tells whether containers can get a real-time CPU
// runtime: only cgroup v1 has it, and only with a kernel built with
// real-time group scheduling (cpu.rt_runtime_us).
func RealtimeSupported() bool {
	if DetectMode() == Unified {
		return false
	}
	m, err := v1Mounts()
	if err != nil || m["cpu"] == "" {
		return false
	}
	_, err = os.Stat(m["cpu"] + "/cpu.rt_runtime_us")
	return err == nil
}
