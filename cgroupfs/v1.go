package cgroupfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// v1 is a cgroup in the v1 hierarchies (Legacy), plus, in the Hybrid
// layout, the same path in the cgroup2 hierarchy at /sys/fs/cgroup/unified.
type v1 struct {
	path   string
	mounts map[string]string // controller -> mount point of its hierarchy
	// named are the hierarchies without controllers ("name=systemd" ->
	// its mount point): the container gets its own cgroup there too, or
	// it would sit in the host's root of them and, through its cgroup
	// mount, see every other cgroup of the host.
	named map[string]string
	// unified is the cgroup2 half in Hybrid mode, nil in Legacy mode.
	unified *v2
}

func newV1(path string, hybrid bool) (*v1, error) {
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	named, err := namedMounts()
	if err != nil {
		return nil, err
	}
	m := &v1{path: path, mounts: mounts, named: named}
	if hybrid {
		m.unified = newV2(hybridUnified, path, false)
	}
	return m, nil
}

// hierarchies returns the distinct mount points (co-mounted controllers
// share one), in a stable order.
// eachHierarchy runs f for every hierarchy at once: removing a cgroup in
// one is independent of the others, and each rmdir waits in the kernel
// (10 to 12 hierarchies here).
func eachHierarchy(mps []string, f func(mp string) error) error {
	errs := make([]error, len(mps))
	var wg sync.WaitGroup
	for i, mp := range mps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(mp)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *v1) hierarchies() []string {
	seen := map[string]bool{}
	var out []string
	for _, mps := range []map[string]string{m.mounts, m.named} {
		for _, mp := range mps {
			if !seen[mp] {
				seen[mp] = true
				out = append(out, mp)
			}
		}
	}
	sort.Strings(out)
	return out
}

// dir returns the cgroup directory for a controller, "" if it is not mounted.
func (m *v1) dir(ctrl string) string {
	mp, ok := m.mounts[ctrl]
	if !ok {
		return ""
	}
	return filepath.Join(mp, m.path)
}

// need returns the directory of ctrl or an error saying it is not mounted.
func (m *v1) need(ctrl, what string) (string, error) {
	d := m.dir(ctrl)
	if d == "" {
		return "", fmt.Errorf("%s: cgroup v1 controller %q is not mounted", what, ctrl)
	}
	return d, nil
}

// Path returns the directory for a v1 controller; "" names the cgroup2
// directory in Hybrid mode (and is "" in Legacy mode).
func (m *v1) Path(ctrl string) string {
	if ctrl == "" {
		if m.unified != nil {
			return m.unified.dir
		}
		return ""
	}
	return m.dir(ctrl)
}

// Exists reports whether the cgroup directory exists in any hierarchy.
func (m *v1) Exists() bool {
	for _, mp := range m.hierarchies() {
		if st, err := os.Stat(filepath.Join(mp, m.path)); err == nil && st.IsDir() {
			return true
		}
	}
	return m.unified != nil && m.unified.Exists()
}

// fillCpuset copies cpuset.cpus and cpuset.mems from the parent into every
// level of the path where they are empty: a v1 cpuset without them cannot
// take tasks.
func (m *v1) fillCpuset() error {
	mp, ok := m.mounts["cpuset"]
	if !ok {
		return nil
	}
	parent := mp
	for _, c := range strings.Split(strings.Trim(m.path, "/"), "/") {
		cur := filepath.Join(parent, c)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readFile(cur, f)
			if err != nil {
				return err
			}
			if v != "" {
				continue
			}
			pv, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(cur, f, pv); err != nil {
				return err
			}
		}
		parent = cur
	}
	return nil
}

// Apply creates the cgroup in every hierarchy and moves pid into it. pid
// <= 0 only creates it.
func (m *v1) Apply(pid int) error {
	if len(m.mounts) == 0 {
		return errors.New("cgroupfs: no cgroup v1 controllers are mounted")
	}
	// One at a time, unlike Destroy: the runtime makes the cgroup while
	// the container's init starts, and parallel mkdirs would take the
	// CPU that init needs.
	for _, mp := range m.hierarchies() {
		if err := mkdirAll(mp, m.path, nil); err != nil {
			return err
		}
	}
	if err := m.fillCpuset(); err != nil {
		return err
	}
	if m.unified != nil {
		if err := m.unified.Apply(-1); err != nil {
			return err
		}
	}
	if pid <= 0 {
		return nil
	}
	return m.Enter(pid)
}

// Enter moves pid into the cgroup in every hierarchy.
func (m *v1) Enter(pid int) error {
	for _, mp := range m.hierarchies() {
		if err := writeFile(filepath.Join(mp, m.path), "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	if m.unified != nil {
		return m.unified.Enter(pid)
	}
	return nil
}

// Set writes the limits of r.
func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	steps := []func(*specs.LinuxResources) error{
		m.setMemory, m.setCPU, m.setCpuset, m.setPids, m.setBlkio, m.setHugetlb,
		m.setDevices, m.setNetwork, m.setRdma, m.setUnified,
	}
	for _, s := range steps {
		if err := s(r); err != nil {
			return err
		}
	}
	return nil
}

// v1Unlimited is the smallest value that v1 reports for "no limit"
// (PAGE_COUNTER_MAX pages, rounded); anything this big reads as unlimited.
const v1Unlimited = uint64(1) << 62

func (m *v1) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	//lint:ignore SA1019 a spec asking for a kernel-memory limit must still get its refusal
	if mem.Kernel != nil || mem.KernelTCP != nil {
		logrus.Debugf("cgroupfs: kernel memory limits are obsolete, ignored")
	}
	writeLimit := mem.Limit != nil && *mem.Limit != 0
	wantSwap := mem.Swap != nil && *mem.Swap != 0
	if !writeLimit && !wantSwap && mem.Reservation == nil && mem.Swappiness == nil &&
		(mem.DisableOOMKiller == nil || !*mem.DisableOOMKiller) {
		return nil
	}
	d, err := m.need("memory", "memory limits")
	if err != nil {
		return err
	}
	const limitF, swapF = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
	haveMemsw := fileExists(d, swapF)
	if wantSwap && !haveMemsw && *mem.Swap != -1 {
		return fmt.Errorf("memory swap limit %d requested but %s does not exist (kernel without swap accounting; boot with swapaccount=1)", *mem.Swap, filepath.Join(d, swapF))
	}
	writeSwap := wantSwap && haveMemsw
	swap := int64(0)
	if writeSwap {
		swap = *mem.Swap
		if swap < -1 {
			return fmt.Errorf("memory: invalid swap limit %d", swap)
		}
		if writeLimit && swap != -1 && (*mem.Limit == -1 || swap < *mem.Limit) {
			return fmt.Errorf("memory: memory+swap limit %d is lower than the memory limit %d", swap, *mem.Limit)
		}
	} else if writeLimit && *mem.Limit == -1 && haveMemsw {
		// memsw must stay >= limit: an unlimited memory limit needs an
		// unlimited memsw first.
		writeSwap, swap = true, -1
	}
	switch {
	case writeLimit && writeSwap:
		// memory.limit_in_bytes <= memory.memsw.limit_in_bytes must hold
		// after each write, so the order depends on the direction.
		cur, err := readUint(d, limitF)
		if err != nil {
			return err
		}
		if swap == -1 || uint64(swap) >= cur {
			if err := writeFile(d, swapF, fmtInt(swap)); err != nil {
				return err
			}
			if err := writeFile(d, limitF, fmtInt(*mem.Limit)); err != nil {
				return err
			}
		} else {
			if err := writeFile(d, limitF, fmtInt(*mem.Limit)); err != nil {
				return err
			}
			if err := writeFile(d, swapF, fmtInt(swap)); err != nil {
				return err
			}
		}
	case writeLimit:
		if err := writeFile(d, limitF, fmtInt(*mem.Limit)); err != nil {
			return err
		}
	case writeSwap:
		if err := writeFile(d, swapF, fmtInt(swap)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(d, "memory.soft_limit_in_bytes", fmtInt(*mem.Reservation)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness != ^uint64(0) {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("memory: invalid swappiness %d (0-100)", *mem.Swappiness)
		}
		if err := writeFile(d, "memory.swappiness", fmtUint(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := writeFile(d, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	shares := c.Shares != nil && *c.Shares != 0
	quota := c.Quota != nil && *c.Quota != 0
	period := c.Period != nil && *c.Period != 0
	rtRun := c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0
	rtPer := c.RealtimePeriod != nil && *c.RealtimePeriod != 0
	if !shares && !quota && !period && !rtRun && !rtPer && c.Burst == nil && c.Idle == nil {
		return nil
	}
	d, err := m.need("cpu", "cpu limits")
	if err != nil {
		return err
	}
	if shares {
		if err := writeFile(d, "cpu.shares", fmtUint(*c.Shares)); err != nil {
			return err
		}
	}
	// The kernel checks quota against period on each write: if the new
	// period is refused before the quota, write the quota first.
	if period {
		if err := writeFile(d, "cpu.cfs_period_us", fmtUint(*c.Period)); err != nil {
			if !quota || !errors.Is(err, unix.EINVAL) {
				return err
			}
			if err := writeFile(d, "cpu.cfs_quota_us", fmtInt(*c.Quota)); err != nil {
				return err
			}
			quota = false
			if err := writeFile(d, "cpu.cfs_period_us", fmtUint(*c.Period)); err != nil {
				return err
			}
		}
	}
	if quota {
		if err := writeFile(d, "cpu.cfs_quota_us", fmtInt(*c.Quota)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(d, "cpu.cfs_burst_us", fmtUint(*c.Burst)); err != nil {
			return err
		}
	}
	if rtPer {
		if err := writeFile(d, "cpu.rt_period_us", fmtUint(*c.RealtimePeriod)); err != nil {
			return err
		}
	}
	if rtRun {
		if err := writeFile(d, "cpu.rt_runtime_us", fmtInt(*c.RealtimeRuntime)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(d, "cpu.idle", fmtInt(*c.Idle)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCpuset(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	d, err := m.need("cpuset", "cpuset")
	if err != nil {
		return err
	}
	if c.Cpus != "" {
		if err := writeFile(d, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(d, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	d, err := m.need("pids", "pids limit")
	if err != nil {
		return err
	}
	v := "max"
	if *r.Pids.Limit > 0 {
		v = fmtInt(*r.Pids.Limit)
	}
	return writeFile(d, "pids.max", v)
}

func (m *v1) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	hasWeight := (b.Weight != nil && *b.Weight != 0) || len(b.WeightDevice) > 0 || (b.LeafWeight != nil && *b.LeafWeight != 0)
	n := len(b.ThrottleReadBpsDevice) + len(b.ThrottleWriteBpsDevice) + len(b.ThrottleReadIOPSDevice) + len(b.ThrottleWriteIOPSDevice)
	if !hasWeight && n == 0 {
		return nil
	}
	d, err := m.need("blkio", "blockIO limits")
	if err != nil {
		return err
	}
	if hasWeight {
		// CFQ's blkio.weight is gone from current kernels; BFQ has its own.
		wf, df := "blkio.weight", "blkio.weight_device"
		if !fileExists(d, wf) {
			wf, df = "blkio.bfq.weight", "blkio.bfq.weight"
			if !fileExists(d, wf) {
				return fmt.Errorf("blockIO weight requested but neither blkio.weight nor blkio.bfq.weight exist in %s (no CFQ/BFQ I/O scheduler)", d)
			}
		}
		if b.Weight != nil && *b.Weight != 0 {
			if err := writeFile(d, wf, strconv.Itoa(int(*b.Weight))); err != nil {
				return err
			}
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			if !fileExists(d, "blkio.leaf_weight") {
				logrus.Warnf("cgroupfs: blkio.leaf_weight not supported by this kernel, ignored")
			} else if err := writeFile(d, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight))); err != nil {
				return err
			}
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil && *wd.Weight != 0 {
				if err := writeFile(d, df, fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)); err != nil {
					return err
				}
			}
			if wd.LeafWeight != nil && *wd.LeafWeight != 0 && fileExists(d, "blkio.leaf_weight_device") {
				if err := writeFile(d, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)); err != nil {
					return err
				}
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, dev := range t.devs {
			if err := writeFile(d, t.file, fmt.Sprintf("%d:%d %d", dev.Major, dev.Minor, dev.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setHugetlb uses a v1 hugetlb hierarchy if there is one, else the cgroup2
// half of the hybrid layout (where hugetlb lives on the dev machines).
func (m *v1) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	d := m.dir("hugetlb")
	if d == "" {
		if m.unified != nil {
			return m.unified.setHugetlb(r)
		}
		return errors.New("hugepage limits: the hugetlb controller is not mounted")
	}
	for _, h := range r.HugepageLimits {
		if !validPagesize(h.Pagesize) {
			return fmt.Errorf("hugetlb: invalid page size %q", h.Pagesize)
		}
		if err := writeFile(d, "hugetlb."+h.Pagesize+".limit_in_bytes", fmtUint(h.Limit)); err != nil {
			return err
		}
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.limit_in_bytes"; fileExists(d, rsvd) {
			if err := writeFile(d, rsvd, fmtUint(h.Limit)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setDevices(r *specs.LinuxResources) error {
	if r.Devices == nil {
		return nil
	}
	d := m.dir("devices")
	if d == "" {
		// Without a v1 devices hierarchy, a device program on the cgroup2
		// directory is enforced for its members all the same.
		if m.unified != nil {
			return setDevicesBPF(m.unified.dir, r.Devices)
		}
		return errors.New("device rules: the devices controller is not mounted")
	}
	return setDevicesV1(d, r.Devices)
}

func (m *v1) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		d, err := m.need("net_cls", "network classID")
		if err != nil {
			return err
		}
		if err := writeFile(d, "net_cls.classid", fmtUint(uint64(*n.ClassID))); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		d, err := m.need("net_prio", "network priorities")
		if err != nil {
			return err
		}
		for _, p := range n.Priorities {
			if err := writeFile(d, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	if m.dir("rdma") == "" && m.unified != nil {
		return m.unified.setRdma(r.Rdma)
	}
	d, err := m.need("rdma", "rdma limits")
	if err != nil {
		return err
	}
	return (&v2{dir: d, root: d}).writeRdma(r.Rdma)
}

func (m *v1) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	if m.unified == nil {
		return errors.New("unified cgroup resources given but the host has no cgroup2 hierarchy (cgroup v1)")
	}
	return m.unified.setUnified(r)
}

// primary is the directory whose cgroup.procs lists the container's
// processes.
func (m *v1) primary() (string, error) {
	for _, c := range []string{"pids", "freezer", "memory", "cpu", "devices", "cpuset", "cpuacct", "blkio"} {
		if d := m.dir(c); d != "" {
			return d, nil
		}
	}
	for _, mp := range m.hierarchies() {
		return filepath.Join(mp, m.path), nil
	}
	if m.unified != nil {
		return m.unified.dir, nil
	}
	return "", errors.New("cgroupfs: no cgroup hierarchy mounted")
}

// Pids lists the processes of the cgroup and its descendants.
func (m *v1) Pids() ([]int, error) {
	d, err := m.primary()
	if err != nil {
		return nil, err
	}
	return readProcs(d, true)
}

func (m *v1) freezerState() (string, error) {
	d, err := m.need("freezer", "freeze")
	if err != nil {
		return "", err
	}
	return readFile(d, "freezer.state")
}

func (m *v1) setFreezer(state string) error {
	d, err := m.need("freezer", "freeze")
	if err != nil {
		return err
	}
	if err := writeFile(d, "freezer.state", state); err != nil {
		return err
	}
	last := time.Now()
	err = pollUntil(freezeTimeout, func() (bool, error) {
		s, err := readFile(d, "freezer.state")
		if err != nil {
			return false, err
		}
		if s == state {
			return true, nil
		}
		// A task caught in an uninterruptible sleep can keep the cgroup
		// in FREEZING: ask again now and then.
		if time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			if err := writeFile(d, "freezer.state", state); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s/freezer.state %s: %w", d, state, err)
	}
	return nil
}

// Freeze sets freezer.state to FROZEN and waits until it is.
func (m *v1) Freeze() error {
	if err := m.setFreezer("FROZEN"); err != nil {
		if d := m.dir("freezer"); d != "" {
			_ = writeFile(d, "freezer.state", "THAWED")
		}
		return err
	}
	return nil
}

// Thaw sets freezer.state to THAWED and waits until it is.
func (m *v1) Thaw() error { return m.setFreezer("THAWED") }

// Frozen reports whether freezer.state is FROZEN.
func (m *v1) Frozen() (bool, error) {
	s, err := m.freezerState()
	return s == "FROZEN", err
}

// KillAll freezes the cgroup so nothing forks meanwhile, signals every
// process, and thaws it so the signals are delivered.
func (m *v1) KillAll(sig int) error {
	if !m.Exists() {
		return fmt.Errorf("kill cgroup %s: %w", m.path, os.ErrNotExist)
	}
	frozen := false
	if d := m.dir("freezer"); d != "" && fileExists(d, "freezer.state") {
		if err := m.Freeze(); err != nil {
			logrus.Warnf("cgroupfs: kill all: %v; signalling without freezing", err)
		} else {
			frozen = true
		}
	}
	pids, err := m.Pids()
	if err == nil {
		err = signalPids(pids, sig)
	}
	if frozen {
		if terr := m.Thaw(); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	return err
}

// Destroy removes the cgroup (and cgroups below it) from every hierarchy,
// leaving parents alone, but for those of a systemd unit that are empty in
// a controller's hierarchy (pruneUnitParents). It copes with a partially
// created cgroup.
func (m *v1) Destroy() error {
	errs := []error{eachHierarchy(m.hierarchies(), func(mp string) error { return removeCgroup(filepath.Join(mp, m.path)) })}
	m.pruneUnitParents()
	if m.unified != nil {
		if err := m.unified.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pruneUnitParents removes the empty cgroups of systemd units and slices
// above the container's, in each controller's hierarchy. A container
// beside berth in a unit (--cgroups=split) has its cgroup made, parents
// and all, in every v1 hierarchy, also in those where systemd keeps no
// cgroup of the unit (freezer, cpuset, devices ... without their
// accounting): nobody else would remove the unit's there once it stopped.
// Where systemd does keep one, it is not empty while the unit runs (its
// processes are in it), and systemd takes a removed one in its stride.
// The name=systemd hierarchy is systemd's alone; "/" and berth's own
// parents are never touched; the first parent in use ends the walk.
func (m *v1) pruneUnitParents() {
	seen := map[string]bool{}
	for _, mp := range m.mounts {
		if seen[mp] {
			continue
		}
		seen[mp] = true
		for p := path.Dir(m.path); p != "/" && isUnitOrSlice(p); p = path.Dir(p) {
			if err := unix.Rmdir(filepath.Join(mp, p)); err != nil {
				break
			}
			logrus.Debugf("cgroupfs: rmdir %s", filepath.Join(mp, p))
		}
	}
}

// isUnitOrSlice says whether cgroup p is a systemd unit's or a slice's.
func isUnitOrSlice(p string) bool {
	return IsUnitCgroup(p) || strings.HasSuffix(path.Base(p), ".slice")
}

// Stats reads usage from the memory, cpuacct, pids and blkio hierarchies.
// Controllers that are not mounted read as zero.
func (m *v1) Stats() (*Stats, error) {
	if !m.Exists() {
		return nil, fmt.Errorf("cgroup %s: %w", m.path, os.ErrNotExist)
	}
	s := &Stats{}
	var errs []error
	u := func(ctrl, file string, dst *uint64) {
		d := m.dir(ctrl)
		if d == "" {
			return
		}
		v, err := readUint(d, file)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = v
	}
	u("memory", "memory.usage_in_bytes", &s.MemoryUsage)
	u("memory", "memory.max_usage_in_bytes", &s.MemoryMaxUsage)
	u("memory", "memory.limit_in_bytes", &s.MemoryLimit)
	if s.MemoryLimit >= v1Unlimited {
		s.MemoryLimit = 0
	}
	if n, err := m.OOMKills(); err == nil {
		s.OOMKills = n
	} else {
		errs = append(errs, err)
	}
	u("cpuacct", "cpuacct.usage", &s.CPUUsageNanos)
	if d := m.dir("cpuacct"); d != "" {
		st, err := readKeyValues(d, "cpuacct.stat")
		if err != nil {
			errs = append(errs, err)
		} else {
			// USER_HZ is 100 on every Linux architecture's ABI.
			const nsPerTick = 1e9 / 100
			s.CPUUserNanos = st["user"] * nsPerTick
			s.CPUSystemNanos = st["system"] * nsPerTick
		}
	}
	u("pids", "pids.current", &s.PidsCurrent)
	u("pids", "pids.max", &s.PidsLimit)
	if d := m.dir("blkio"); d != "" {
		f := "blkio.throttle.io_service_bytes_recursive"
		if !fileExists(d, f) {
			f = "blkio.throttle.io_service_bytes"
		}
		txt, err := readFile(d, f)
		if err != nil {
			errs = append(errs, err)
		}
		for _, line := range strings.Split(txt, "\n") {
			fl := strings.Fields(line)
			if len(fl) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(fl[2], 10, 64)
			switch fl[1] {
			case "Read":
				s.IOReadBytes += n
			case "Write":
				s.IOWriteBytes += n
			}
		}
	}
	return s, errors.Join(errs...)
}

// OOMKills reads memory.oom_control; without a memory hierarchy it is 0.
func (m *v1) OOMKills() (uint64, error) {
	d := m.dir("memory")
	if d == "" {
		return 0, nil
	}
	// oom_kill is there since Linux 4.13; older kernels read as zero.
	oc, err := readKeyValues(d, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	return oc["oom_kill"], nil
}
