package runconfig

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/rlimit"
)

// minMemory is Docker's smallest --memory.
const minMemory = 6 << 20

// cpuPeriod is the CFS period --cpus uses, as Docker.
const cpuPeriod = 100000

// numCPU is the CPUs berth may use, replaceable in tests.
var numCPU = goruntime.NumCPU

func ptr[T any](v T) *T { return &v }

// resources translates the limits of o.Host (and Options' own) into
// linux.resources and process.rlimits, with Docker's checks and defaults.
func resources(s *specs.Spec, o *Options) error {
	h := &o.Host
	r := s.Linux.Resources

	// Memory. Docker's --memory-swap is memory plus swap, as the spec's
	// swap; without it, -m allows as much swap as memory (swap = 2 x mem).
	if h.Memory < 0 || h.MemoryReservation < 0 || h.MemorySwap < -1 {
		return errors.New("--memory, --memory-reservation and --memory-swap must not be negative (--memory-swap -1 is unlimited)")
	}
	if h.Memory > 0 && h.Memory < minMemory {
		return fmt.Errorf("--memory: the minimum is 6MB, %d given", h.Memory)
	}
	if h.MemorySwap > 0 && h.Memory == 0 {
		return errors.New("--memory-swap needs --memory")
	}
	if h.MemorySwap > 0 && h.MemorySwap < h.Memory {
		return fmt.Errorf("--memory-swap (%d) must not be smaller than --memory (%d)", h.MemorySwap, h.Memory)
	}
	if h.Memory > 0 && h.MemoryReservation > h.Memory {
		return fmt.Errorf("--memory-reservation (%d) must be smaller than --memory (%d)", h.MemoryReservation, h.Memory)
	}
	if h.Memory > 0 && h.MemorySwap == 0 {
		h.MemorySwap = 2 * h.Memory
	}
	if h.Memory > 0 || h.MemoryReservation > 0 || h.MemorySwap != 0 || o.OOMKillDisable {
		m := &specs.LinuxMemory{}
		if h.Memory > 0 {
			m.Limit = ptr(h.Memory)
		}
		if h.MemoryReservation > 0 {
			m.Reservation = ptr(h.MemoryReservation)
		}
		if h.MemorySwap != 0 {
			m.Swap = ptr(h.MemorySwap)
		}
		if o.OOMKillDisable {
			m.DisableOOMKiller = ptr(true)
		}
		r.Memory = m
	}

	// CPU.
	if h.NanoCpus < 0 {
		return errors.New("--cpus must not be negative")
	}
	if h.NanoCpus > 0 {
		if h.NanoCpus < 1e7 {
			return errors.New("--cpus: the minimum is 0.01")
		}
		if n := numCPU(); h.NanoCpus > int64(n)*1e9 {
			return fmt.Errorf("--cpus: the range is 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
	}
	if h.CpuShares < 0 {
		return fmt.Errorf("--cpu-shares: %d is negative", h.CpuShares)
	}
	if err := checkCPUList("--cpuset-cpus", h.CpusetCpus); err != nil {
		return err
	}
	if err := checkCPUList("--cpuset-mems", o.CpusetMems); err != nil {
		return err
	}
	if h.NanoCpus > 0 || h.CpuShares > 0 || h.CpusetCpus != "" || o.CpusetMems != "" {
		c := &specs.LinuxCPU{Cpus: h.CpusetCpus, Mems: o.CpusetMems}
		if h.NanoCpus > 0 {
			c.Period = ptr(uint64(cpuPeriod))
			c.Quota = ptr(h.NanoCpus * cpuPeriod / 1e9)
		}
		if h.CpuShares > 0 {
			c.Shares = ptr(uint64(h.CpuShares))
		}
		r.CPU = c
	}

	// Pids: 0 or less is unlimited.
	if h.PidsLimit != nil && *h.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(*h.PidsLimit)}
	}

	// Block IO.
	if o.BlkioWeight != 0 && (o.BlkioWeight < 10 || o.BlkioWeight > 1000) {
		return fmt.Errorf("--blkio-weight: %d is not between 10 and 1000", o.BlkioWeight)
	}
	if o.BlkioWeight > 0 || len(h.BlkioDeviceReadBps)+len(h.BlkioDeviceWriteBps)+len(h.BlkioDeviceReadIOps)+len(h.BlkioDeviceWriteIOps) > 0 {
		b := &specs.LinuxBlockIO{}
		if o.BlkioWeight > 0 {
			b.Weight = ptr(o.BlkioWeight)
		}
		var err error
		if b.ThrottleReadBpsDevice, err = throttles(h.BlkioDeviceReadBps, "--device-read-bps"); err != nil {
			return err
		}
		if b.ThrottleWriteBpsDevice, err = throttles(h.BlkioDeviceWriteBps, "--device-write-bps"); err != nil {
			return err
		}
		if b.ThrottleReadIOPSDevice, err = throttles(h.BlkioDeviceReadIOps, "--device-read-iops"); err != nil {
			return err
		}
		if b.ThrottleWriteIOPSDevice, err = throttles(h.BlkioDeviceWriteIOps, "--device-write-iops"); err != nil {
			return err
		}
		r.BlockIO = b
	}

	// Rlimits: a --ulimit replaces berth's default of the same type.
	for _, u := range h.Ulimits {
		t, ok := rlimit.SpecType(u.Name)
		if !ok {
			return fmt.Errorf("--ulimit: unknown limit %q", u.Name)
		}
		soft, hard := rlimitValue(u.Soft), rlimitValue(u.Hard)
		if soft > hard {
			return fmt.Errorf("--ulimit %s: the soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
		}
		rl := specs.POSIXRlimit{Type: t, Soft: soft, Hard: hard}
		replaced := false
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == t {
				s.Process.Rlimits[i], replaced = rl, true
			}
		}
		if !replaced {
			s.Process.Rlimits = append(s.Process.Rlimits, rl)
		}
	}
	return nil
}

// rlimitValue maps -1 (unlimited) to RLIM_INFINITY.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}

// checkCPUList checks a cpuset list: "0-3,5,7-8".
func checkCPUList(flag, v string) error {
	if v == "" {
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return fmt.Errorf("%s: invalid list %q", flag, v)
		}
	}
	return nil
}

// statBlockDevice is the major and minor number of a block device.
func statBlockDevice(p string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, errors.New("not a block device")
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}

// throttles resolves the devices of --device-read-bps and friends.
func throttles(list []container.ThrottleDevice, flag string) ([]specs.LinuxThrottleDevice, error) {
	var out []specs.LinuxThrottleDevice
	for _, t := range list {
		major, minor, err := statBlockDevice(t.Path)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %v", flag, t.Path, err)
		}
		d := specs.LinuxThrottleDevice{Rate: t.Rate}
		d.Major, d.Minor = major, minor
		out = append(out, d)
	}
	return out, nil
}
