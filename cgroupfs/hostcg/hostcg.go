// Package hostcg is what a container's init needs to know of the host's
// cgroups: the layout, the cgroup mounts, and how a thread enters a v1
// cgroup. It is apart from package cgroupfs, whose managers link the eBPF
// library, so that the init program (cmd/berth-init) stays small.
package hostcg

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Mode is the cgroup layout of the host.
type Mode int

const (
	// Legacy is cgroup v1 only: one hierarchy per controller.
	Legacy Mode = iota
	// Hybrid is v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified.
	Hybrid
	// Unified is pure cgroup v2 mounted at /sys/fs/cgroup.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Unified:
		return "v2"
	case Hybrid:
		return "hybrid"
	default:
		return "v1"
	}
}

// Mount is a cgroup or cgroup2 mount of the process's mount namespace.
type Mount struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	SuperOpts  string `json:"opts"`
}

// Mounts returns the cgroup and cgroup2 mounts from /proc/self/mountinfo,
// read once per process: with an overlay per running container the kernel
// takes milliseconds to produce that table (2.5 ms with 200 here), and a
// container start needs the layout several times.
func Mounts() ([]Mount, error) {
	mountsOnce.Do(func() { mountsCached, mountsErr = readMounts() })
	return append([]Mount(nil), mountsCached...), mountsErr
}

var (
	mountsOnce   sync.Once
	mountsCached []Mount
	mountsErr    error
)

func readMounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mp, fstype, opts, ok := parseMountinfoLine(sc.Text())
		if ok && (fstype == "cgroup" || fstype == "cgroup2") {
			out = append(out, Mount{Mountpoint: mp, FSType: fstype, SuperOpts: opts})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// parseMountinfoLine returns the mount point, file system type and super
// options of one line of mountinfo(5).
func parseMountinfoLine(line string) (mountpoint, fstype, superOpts string, ok bool) {
	pre, post, found := strings.Cut(line, " - ")
	if !found {
		return "", "", "", false
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 5 || len(g) < 3 {
		return "", "", "", false
	}
	return unescapeMount(f[4]), g[0], g[2], true
}

// unescapeMount undoes the octal escapes (\040 ...) of mountinfo fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			o := s[i+1 : i+4]
			if o[0] >= '0' && o[0] <= '3' && o[1] >= '0' && o[1] <= '7' && o[2] >= '0' && o[2] <= '7' {
				b.WriteByte((o[0]-'0')<<6 | (o[1]-'0')<<3 | (o[2] - '0'))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// EnterThread moves the calling thread into the cgroup of a v1 "tasks"
// file from a cgroupfs.Attach.
func EnterThread(fd int) error {
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("join cgroup (tasks): %w", err)
	}
	return nil
}
