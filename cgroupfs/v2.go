package cgroupfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// v2Controllers are the cgroup2 controllers berth enables for a container
// when they are available.
var v2Controllers = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

// freezeTimeout bounds how long Freeze and Thaw wait for the kernel.
const freezeTimeout = 10 * time.Second

// v2 is a cgroup in a cgroup2 hierarchy mounted at root. It serves as the
// Manager on Unified hosts and as the unified half of a Hybrid manager.
type v2 struct {
	root string // mount point of the cgroup2 hierarchy
	path string // clean absolute cgroups path
	dir  string // root + path
	// enableAll makes Apply enable every available controller along the
	// path (pure v2). In the hybrid layout, controllers are enabled only
	// when Set needs one (hugetlb), to leave the host's tree alone.
	enableAll bool
}

func newV2(root, path string, enableAll bool) *v2 {
	return &v2{root: root, path: path, dir: filepath.Join(root, path), enableAll: enableAll}
}

func splitSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

// enableIn enables the wanted controllers in parent's cgroup.subtree_control
// if the parent has them in cgroup.controllers and they are not yet on.
// With strict, a controller the kernel refuses is an error; otherwise it is
// logged and skipped.
func enableIn(parent string, want []string, strict bool) error {
	avail, err := readFile(parent, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(parent, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	a, o := splitSet(avail), splitSet(on)
	for _, c := range want {
		if !a[c] || o[c] {
			if strict && !a[c] {
				return fmt.Errorf("cgroup controller %q is not available in %s", c, parent)
			}
			continue
		}
		if err := writeFile(parent, "cgroup.subtree_control", "+"+c); err != nil {
			if strict {
				return fmt.Errorf("enable controller %s: %w", c, err)
			}
			logrus.Warnf("cgroupfs: cannot enable controller %s in %s: %v", c, parent, err)
		}
	}
	return nil
}

// ensureControllers makes sure ctrls are enabled on every level from the
// root down to the parent of the cgroup, so that their files exist in it.
func (m *v2) ensureControllers(ctrls ...string) error {
	cur := m.root
	for _, c := range strings.Split(strings.Trim(m.path, "/"), "/") {
		if err := enableIn(cur, ctrls, true); err != nil {
			return err
		}
		cur = filepath.Join(cur, c)
	}
	return nil
}

// Apply creates the cgroup and moves pid into it. pid <= 0 only creates it.
func (m *v2) Apply(pid int) error {
	err := mkdirAll(m.root, m.path, func(parent, _ string) error {
		if m.enableAll {
			// A unit's cgroup that systemd did not delegate keeps the
			// controllers systemd gives it: systemd turns off any
			// enabled behind its back (the container is then limited
			// by the unit).
			if IsUnitCgroup(parent) && !delegatedDir(parent) {
				return nil
			}
			return enableIn(parent, v2Controllers, false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if pid > 0 {
		return m.Enter(pid)
	}
	return nil
}

// Enter moves pid into the cgroup.
func (m *v2) Enter(pid int) error {
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

// Set writes the limits of r.
func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if _, err := os.Stat(m.dir); err != nil {
		return fmt.Errorf("cgroup %s: %w", m.dir, err)
	}
	steps := []func(*specs.LinuxResources) error{
		m.setMemory, m.setCPU, m.setPids, m.setIO, m.setHugetlb, m.setUnified, m.setDevices,
	}
	for _, s := range steps {
		if err := s(r); err != nil {
			return err
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		logrus.Warnf("cgroupfs: network classid/priorities are not supported on cgroup v2, ignored")
	}
	if len(r.Rdma) > 0 {
		return m.setRdma(r.Rdma)
	}
	return nil
}

// limitString renders a v2 limit: negative is "max".
func limitString(v int64) string {
	if v < 0 {
		return "max"
	}
	return fmtInt(v)
}

// swapV2 converts the OCI memory+swap limit to memory.swap.max (swap only),
// as runc does. ok is false when nothing must be written.
func swapV2(swap, limit *int64) (val string, ok bool, err error) {
	if swap == nil || *swap == 0 {
		return "", false, nil
	}
	if *swap == -1 {
		return "max", true, nil
	}
	if *swap < 0 {
		return "", false, fmt.Errorf("invalid memory swap limit %d", *swap)
	}
	if limit == nil || *limit <= 0 {
		return "", false, errors.New("memory swap limit set without a memory limit")
	}
	if *swap < *limit {
		return "", false, fmt.Errorf("memory+swap limit %d is lower than the memory limit %d", *swap, *limit)
	}
	return fmtInt(*swap - *limit), true, nil
}

func (m *v2) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	need := mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil
	if !need {
		return nil
	}
	if err := m.ensureControllers("memory"); err != nil {
		return err
	}
	swap, doSwap, err := swapV2(mem.Swap, mem.Limit)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if doSwap {
		if fileExists(m.dir, "memory.swap.max") {
			if err := writeFile(m.dir, "memory.swap.max", swap); err != nil {
				return err
			}
		} else if swap != "max" {
			return fmt.Errorf("memory swap limit requested but %s/memory.swap.max does not exist (swap accounting disabled?)", m.dir)
		}
	}
	if mem.Limit != nil && *mem.Limit != 0 {
		if err := writeFile(m.dir, "memory.max", limitString(*mem.Limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(m.dir, "memory.low", limitString(*mem.Reservation)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness != ^uint64(0) {
		logrus.Warnf("cgroupfs: memory swappiness is not supported on cgroup v2, ignored")
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		logrus.Warnf("cgroupfs: disableOOMKiller is not supported on cgroup v2, ignored")
	}
	return nil
}

// SharesToWeight converts cgroup v1 cpu.shares (2..262144) to cgroup v2
// cpu.weight (1..10000) with the conversion shared by the OCI runtimes.
// 0 means unset and returns 0.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = max(2, min(shares, 262144))
	return 1 + ((shares-2)*9999)/262142
}

func (m *v2) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if c.Cpus != "" || c.Mems != "" {
		if err := m.ensureControllers("cpuset"); err != nil {
			return err
		}
		if c.Cpus != "" {
			if err := writeFile(m.dir, "cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := writeFile(m.dir, "cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
		return errors.New("cpu: realtime runtime/period are not supported on cgroup v2")
	}
	needCPU := (c.Shares != nil && *c.Shares != 0) || (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) || c.Burst != nil || c.Idle != nil
	if !needCPU {
		return nil
	}
	if err := m.ensureControllers("cpu"); err != nil {
		return err
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(m.dir, "cpu.weight", fmtUint(SharesToWeight(*c.Shares))); err != nil {
			return err
		}
	}
	// A quota of 0 means unset, as on v1 and in runc.
	hasQuota := c.Quota != nil && *c.Quota != 0
	if hasQuota || (c.Period != nil && *c.Period != 0) {
		quota := ""
		if hasQuota {
			quota = limitString(*c.Quota)
		} else {
			cur, err := readFile(m.dir, "cpu.max")
			if err != nil {
				return err
			}
			quota = strings.Fields(cur + " max")[0]
		}
		val := quota
		if c.Period != nil && *c.Period != 0 {
			val += " " + fmtUint(*c.Period)
		}
		if err := writeFile(m.dir, "cpu.max", val); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(m.dir, "cpu.max.burst", fmtUint(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(m.dir, "cpu.idle", fmtInt(*c.Idle)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	if err := m.ensureControllers("pids"); err != nil {
		return err
	}
	return writeFile(m.dir, "pids.max", PidsMaxValue(*r.Pids.Limit))
}

// blkioToIOWeight converts a v1 blkio weight (10..1000) to io.weight
// (1..10000).
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := uint64(max(10, min(w, 1000)))
	return 1 + (v-10)*9999/990
}

func (m *v2) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	hasWeight := (b.Weight != nil && *b.Weight != 0) || len(b.WeightDevice) > 0
	hasThrottle := len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0
	if !hasWeight && !hasThrottle {
		return nil
	}
	if err := m.ensureControllers("io"); err != nil {
		return err
	}
	if hasWeight {
		// BFQ takes the v1 scale as is; io.weight needs conversion.
		file, conv := "io.bfq.weight", func(w uint16) uint64 { return uint64(w) }
		if !fileExists(m.dir, file) {
			file, conv = "io.weight", blkioToIOWeight
			if !fileExists(m.dir, file) {
				return fmt.Errorf("blockIO weight requested but neither io.bfq.weight nor io.weight exist in %s", m.dir)
			}
		}
		if b.Weight != nil && *b.Weight != 0 {
			if err := writeFile(m.dir, file, fmtUint(conv(*b.Weight))); err != nil {
				return err
			}
		}
		for _, d := range b.WeightDevice {
			if d.Weight == nil || *d.Weight == 0 {
				continue
			}
			v := fmt.Sprintf("%d:%d %d", d.Major, d.Minor, conv(*d.Weight))
			if err := writeFile(m.dir, file, v); err != nil {
				return err
			}
		}
	}
	throttle := func(key string, devs []specs.LinuxThrottleDevice) error {
		for _, d := range devs {
			rate := "max"
			if d.Rate != 0 {
				rate = fmtUint(d.Rate)
			}
			if err := writeFile(m.dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, key, rate)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		if err := throttle(t.key, t.devs); err != nil {
			return err
		}
	}
	return nil
}

// validPagesize accepts hugepage sizes like "2MB" or "1GB".
func validPagesize(s string) bool {
	if len(s) < 3 || !strings.HasSuffix(s, "B") {
		return false
	}
	for _, c := range s[:len(s)-2] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.ContainsRune("KMGT", rune(s[len(s)-2]))
}

func (m *v2) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	for _, h := range r.HugepageLimits {
		if !validPagesize(h.Pagesize) {
			return fmt.Errorf("hugetlb: invalid page size %q", h.Pagesize)
		}
	}
	if err := m.ensureControllers("hugetlb"); err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		if err := writeFile(m.dir, "hugetlb."+h.Pagesize+".max", fmtUint(h.Limit)); err != nil {
			return err
		}
		// Reservation limits, where the kernel has them.
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.max"; fileExists(m.dir, rsvd) {
			if err := writeFile(m.dir, rsvd, fmtUint(h.Limit)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setUnified writes the unified map verbatim. The file must exist; its
// controller is enabled first when the key names one.
func (m *v2) setUnified(r *specs.LinuxResources) error {
	for k, v := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("unified: invalid key %q", k)
		}
		if ctrl, _, ok := strings.Cut(k, "."); ok && ctrl != "cgroup" {
			for _, c := range v2Controllers {
				if c == ctrl {
					if err := m.ensureControllers(ctrl); err != nil {
						return fmt.Errorf("unified %s: %w", k, err)
					}
				}
			}
		}
		if !fileExists(m.dir, k) {
			return fmt.Errorf("unified: cgroup file %s does not exist", filepath.Join(m.dir, k))
		}
		if err := writeFile(m.dir, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setRdma(rd map[string]specs.LinuxRdma) error {
	if err := m.ensureControllers("rdma"); err != nil {
		return err
	}
	return m.writeRdma(rd)
}

// writeRdma writes rdma.max lines (same format on v1 and v2).
func (m *v2) writeRdma(rd map[string]specs.LinuxRdma) error {
	for dev, l := range rd {
		if strings.ContainsAny(dev, " \n=") {
			return fmt.Errorf("rdma: invalid device name %q", dev)
		}
		v := dev
		if l.HcaHandles != nil {
			v += " hca_handle=" + fmtUint(uint64(*l.HcaHandles))
		}
		if l.HcaObjects != nil {
			v += " hca_object=" + fmtUint(uint64(*l.HcaObjects))
		}
		if err := writeFile(m.dir, "rdma.max", v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setDevices(r *specs.LinuxResources) error {
	if r.Devices == nil {
		return nil
	}
	return setDevicesBPF(m.dir, r.Devices)
}

// Pids lists the processes of the cgroup and its descendants.
func (m *v2) Pids() ([]int, error) { return readProcs(m.dir, true) }

// eventsFrozen reads the "frozen" key of cgroup.events.
func (m *v2) eventsFrozen() (bool, error) {
	ev, err := readKeyValues(m.dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return ev["frozen"] == 1, nil
}

func (m *v2) setFrozen(want bool) error {
	v := "0"
	if want {
		v = "1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	err := pollUntil(freezeTimeout, func() (bool, error) {
		f, err := m.eventsFrozen()
		return f == want, err
	})
	if err != nil {
		return fmt.Errorf("wait for %s/cgroup.events frozen %s: %w", m.dir, v, err)
	}
	return nil
}

// Freeze freezes the cgroup and waits until cgroup.events says frozen.
func (m *v2) Freeze() error {
	if err := m.setFrozen(true); err != nil {
		// Do not leave it half frozen.
		_ = writeFile(m.dir, "cgroup.freeze", "0")
		return err
	}
	return nil
}

// Thaw resumes the cgroup.
func (m *v2) Thaw() error { return m.setFrozen(false) }

// Frozen reports whether the cgroup is frozen.
func (m *v2) Frozen() (bool, error) { return m.eventsFrozen() }

// KillAll signals every process; SIGKILL uses cgroup.kill when the kernel
// has it (5.14+), which also reaches processes forked meanwhile.
func (m *v2) KillAll(sig int) error {
	if !m.Exists() {
		return fmt.Errorf("kill cgroup %s: %w", m.dir, os.ErrNotExist)
	}
	if sig == int(unix.SIGKILL) && fileExists(m.dir, "cgroup.kill") {
		return writeFile(m.dir, "cgroup.kill", "1")
	}
	pids, err := m.Pids()
	if err != nil {
		return err
	}
	return signalPids(pids, sig)
}

// Destroy removes the cgroup (and any cgroups below it), not its parents.
func (m *v2) Destroy() error { return removeCgroup(m.dir) }

// Path returns the cgroup directory; every controller shares it.
func (m *v2) Path(string) string { return m.dir }

// Exists reports whether the cgroup directory is there.
func (m *v2) Exists() bool {
	st, err := os.Stat(m.dir)
	return err == nil && st.IsDir()
}

// Stats reads memory, cpu, pids and io usage. Files of controllers that are
// not enabled read as zero.
func (m *v2) Stats() (*Stats, error) {
	if !m.Exists() {
		return nil, fmt.Errorf("cgroup %s: %w", m.dir, os.ErrNotExist)
	}
	s := &Stats{}
	var errs []error
	u := func(file string, dst *uint64) {
		v, err := readUint(m.dir, file)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		*dst = v
	}
	u("memory.current", &s.MemoryUsage)
	u("memory.max", &s.MemoryLimit)
	u("memory.peak", &s.MemoryMaxUsage)
	u("pids.current", &s.PidsCurrent)
	u("pids.max", &s.PidsLimit)
	if n, err := m.OOMKills(); err == nil {
		s.OOMKills = n
	} else {
		errs = append(errs, err)
	}
	if cs, err := readKeyValues(m.dir, "cpu.stat"); err == nil {
		s.CPUUsageNanos = cs["usage_usec"] * 1000
		s.CPUUserNanos = cs["user_usec"] * 1000
		s.CPUSystemNanos = cs["system_usec"] * 1000
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if io, err := readFile(m.dir, "io.stat"); err == nil {
		for _, line := range strings.Split(io, "\n") {
			for _, f := range strings.Fields(line) {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					continue
				}
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					s.IOReadBytes += n
				case "wbytes":
					s.IOWriteBytes += n
				}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// OOMKills reads memory.events; without the memory controller it is 0.
func (m *v2) OOMKills() (uint64, error) {
	ev, err := readKeyValues(m.dir, "memory.events")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ev["oom_kill"], nil
}
