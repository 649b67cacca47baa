package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/cgroupfs"
)

// Sample is one container's resource use as stats shows it.
type Sample struct {
	Record *Record
	// OK is false when the container's cgroup could not be read twice
	// (it is not running); the rest is then zero.
	OK         bool
	CPUPercent float64
	// MemoryLimit is the cgroup's limit, or the host's memory for a
	// container without one.
	MemoryLimit uint64
	*cgroupfs.Stats
}

// Stats reads each container's cgroup twice, interval apart, for the CPU
// share it used meanwhile.
func (s *Store) Stats(recs []*Record, interval time.Duration) []Sample {
	first := map[string]*cgroupfs.Stats{}
	for _, r := range recs {
		if st, err := s.rt.Stats(r.ID); err == nil {
			first[r.ID] = st
		}
	}
	t0 := time.Now()
	time.Sleep(interval)
	elapsed := time.Since(t0)
	total := HostMemory()
	var out []Sample
	for _, r := range recs {
		smp := Sample{Record: r}
		st, err := s.rt.Stats(r.ID)
		if a, ok := first[r.ID]; ok && err == nil {
			smp.OK, smp.Stats = true, st
			smp.CPUPercent = float64(st.CPUUsageNanos-a.CPUUsageNanos) / float64(elapsed.Nanoseconds()) * 100
			smp.MemoryLimit = st.MemoryLimit
			if smp.MemoryLimit == 0 || smp.MemoryLimit > total && total > 0 {
				smp.MemoryLimit = total
			}
		}
		out = append(out, smp)
	}
	return out
}

// HostMemory is MemTotal, the limit stats shows for an unlimited container.
func HostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb uint64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

// Top runs ps with psArgs (default -ef) on the host and keeps its header
// and the lines of running container r's processes.
func (s *Store) Top(r *Record, psArgs []string) ([]string, error) {
	if !r.State.Running {
		return nil, fmt.Errorf("container %s is not running", r.Name)
	}
	pids, err := s.rt.Pids(r.ID)
	if err != nil {
		return nil, err
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return nil, fmt.Errorf("top: ps %s: %w", strings.Join(psArgs, " "), err)
	}
	return filterPs(string(out), pids)
}

// filterPs keeps ps's header and the lines of pids.
func filterPs(out string, pids []int) ([]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil, errors.New("top: ps printed nothing")
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("top: ps output has no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	keep := []string{lines[0]}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			keep = append(keep, l)
		}
	}
	return keep, nil
}

// Pause freezes every process of a running container.
func (s *Store) Pause(r *Record) error {
	if !r.State.Running {
		return fmt.Errorf("container %s is not running", r.Name)
	}
	if err := s.rt.Pause(r.ID); err != nil {
		return err
	}
	s.emit(r, "pause")
	return nil
}

// Unpause thaws a paused container.
func (s *Store) Unpause(r *Record) error {
	if !r.State.Running {
		return fmt.Errorf("container %s is not running", r.Name)
	}
	if err := s.rt.Resume(r.ID); err != nil {
		return err
	}
	s.emit(r, "unpause")
	return nil
}

// LowerDirs are the image layers under a container's root, lowest first.
func (s *Store) LowerDirs(r *Record) ([]string, error) {
	if s.images == nil {
		return nil, errors.New("no image store")
	}
	return s.images.LayerDirsOf(r.Image)
}
