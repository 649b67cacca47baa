package runconfig

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
)

func TestResources(t *testing.T) {
	old := numCPU
	numCPU = func() int { return 4 }
	t.Cleanup(func() { numCPU = old })

	o := opts("sh")
	h := &o.Host
	h.Memory, h.MemoryReservation = 64<<20, 32<<20
	h.NanoCpus, h.CpuShares, h.CpusetCpus = 1.5e9, 512, "0-1,3"
	o.CpusetMems = "0"
	h.PidsLimit = ptr(int64(100))
	o.BlkioWeight = 300
	o.OOMKillDisable = true
	o.OOMScoreAdj = ptr(-500)
	h.Ulimits = []container.Ulimit{{Name: "nofile", Soft: 2048, Hard: 4096}, {Name: "core", Soft: -1, Hard: -1}, {Name: "nproc", Soft: 10, Hard: 20}}
	s := specOf(t, o)
	r := s.Linux.Resources
	if m := r.Memory; m == nil || *m.Limit != 64<<20 || *m.Reservation != 32<<20 || *m.Swap != 128<<20 || !*m.DisableOOMKiller {
		t.Errorf("memory %+v", m)
	}
	if h.MemorySwap != 128<<20 {
		t.Errorf("HostConfig.MemorySwap %d, want Docker's default of twice --memory", h.MemorySwap)
	}
	if c := r.CPU; c == nil || *c.Quota != 150000 || *c.Period != 100000 || *c.Shares != 512 || c.Cpus != "0-1,3" || c.Mems != "0" {
		t.Errorf("cpu %+v", c)
	}
	if r.Pids == nil || *r.Pids.Limit != 100 {
		t.Errorf("pids %+v", r.Pids)
	}
	if r.BlockIO == nil || *r.BlockIO.Weight != 300 {
		t.Errorf("blkio %+v", r.BlockIO)
	}
	if *s.Process.OOMScoreAdj != -500 {
		t.Errorf("oom score adj %v", *s.Process.OOMScoreAdj)
	}
	want := []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 4096},
		{Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY},
		{Type: "RLIMIT_NPROC", Soft: 10, Hard: 20},
	}
	if !reflect.DeepEqual(s.Process.Rlimits, want) {
		t.Errorf("rlimits %+v, want %+v", s.Process.Rlimits, want)
	}
	// Device cgroup stays deny-all.
	if d := r.Devices; len(d) != 1 || d[0].Allow {
		t.Errorf("devices %+v", d)
	}

	// Swap: explicit, unlimited; nothing set: no memory section.
	for _, tt := range []struct {
		mem, swap, want int64
	}{{64 << 20, 100 << 20, 100 << 20}, {64 << 20, -1, -1}, {0, -1, -1}, {64 << 20, 64 << 20, 64 << 20}} {
		o := opts("sh")
		o.Host.Memory, o.Host.MemorySwap = tt.mem, tt.swap
		if m := specOf(t, o).Linux.Resources.Memory; m == nil || *m.Swap != tt.want {
			t.Errorf("memory %d swap %d: %+v", tt.mem, tt.swap, m)
		}
	}
	s = specOf(t, opts("sh"))
	if r := s.Linux.Resources; r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
		t.Errorf("default resources %+v", r)
	}
	if !reflect.DeepEqual(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}) {
		t.Errorf("default rlimits %+v", s.Process.Rlimits)
	}
	// Unlimited pids.
	for _, n := range []int64{0, -1} {
		o := opts("sh")
		o.Host.PidsLimit = ptr(n)
		if p := specOf(t, o).Linux.Resources.Pids; p != nil {
			t.Errorf("--pids-limit %d: %+v", n, p)
		}
	}

	bad := []badSpec{
		{"tiny memory", func(o *Options) { o.Host.Memory = 1 << 20 }, "--memory: the minimum is 6MB"},
		{"swap without memory", func(o *Options) { o.Host.MemorySwap = 1 << 30 }, "--memory-swap needs --memory"},
		{"swap below memory", func(o *Options) { o.Host.Memory, o.Host.MemorySwap = 64<<20, 32<<20 }, "must not be smaller than --memory"},
		{"reservation above memory", func(o *Options) { o.Host.Memory, o.Host.MemoryReservation = 64<<20, 128<<20 }, "--memory-reservation"},
		{"negative memory", func(o *Options) { o.Host.Memory = -5 }, "must not be negative"},
		{"too many cpus", func(o *Options) { o.Host.NanoCpus = 5e9 }, "--cpus: the range is 0.01 to 4.00"},
		{"too few cpus", func(o *Options) { o.Host.NanoCpus = 1e6 }, "--cpus: the minimum is 0.01"},
		{"negative shares", func(o *Options) { o.Host.CpuShares = -1 }, "--cpu-shares"},
		{"cpuset", func(o *Options) { o.Host.CpusetCpus = "0-" }, `--cpuset-cpus: invalid list "0-"`},
		{"cpuset reversed", func(o *Options) { o.Host.CpusetCpus = "3-1" }, "--cpuset-cpus"},
		{"cpuset mems", func(o *Options) { o.CpusetMems = "a" }, "--cpuset-mems"},
		{"blkio weight", func(o *Options) { o.BlkioWeight = 5 }, "--blkio-weight: 5 is not between 10 and 1000"},
		{"ulimit name", func(o *Options) { o.Host.Ulimits = []container.Ulimit{{Name: "files", Soft: 1, Hard: 1}} }, `--ulimit: unknown limit "files"`},
		{"ulimit order", func(o *Options) { o.Host.Ulimits = []container.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}} }, "soft limit 10 is above the hard limit 5"},
		{"throttle device", func(o *Options) {
			o.Host.BlkioDeviceReadBps = []container.ThrottleDevice{{Path: "/dev/null", Rate: 1}}
		}, "--device-read-bps /dev/null: not a block device"},
		{"throttle missing", func(o *Options) {
			o.Host.BlkioDeviceWriteIOps = []container.ThrottleDevice{{Path: "/dev/nonexistent", Rate: 1}}
		}, "--device-write-iops /dev/nonexistent: no such file"},
	}
	specRefuses(t, bad)
}

func TestThrottleDevices(t *testing.T) {
	dev := blockDevice(t)
	major, minor, _ := statBlockDevice(dev)
	o := opts("sh")
	o.Host.BlkioDeviceReadBps = []container.ThrottleDevice{{Path: dev, Rate: 1 << 20}}
	o.Host.BlkioDeviceWriteBps = []container.ThrottleDevice{{Path: dev, Rate: 2 << 20}}
	o.Host.BlkioDeviceReadIOps = []container.ThrottleDevice{{Path: dev, Rate: 100}}
	o.Host.BlkioDeviceWriteIOps = []container.ThrottleDevice{{Path: dev, Rate: 200}}
	b := specOf(t, o).Linux.Resources.BlockIO
	td := func(rate uint64) []specs.LinuxThrottleDevice {
		d := specs.LinuxThrottleDevice{Rate: rate}
		d.Major, d.Minor = major, minor
		return []specs.LinuxThrottleDevice{d}
	}
	if b == nil || b.Weight != nil || !reflect.DeepEqual(b.ThrottleReadBpsDevice, td(1<<20)) || !reflect.DeepEqual(b.ThrottleWriteBpsDevice, td(2<<20)) ||
		!reflect.DeepEqual(b.ThrottleReadIOPSDevice, td(100)) || !reflect.DeepEqual(b.ThrottleWriteIOPSDevice, td(200)) {
		t.Errorf("blkio %+v", b)
	}
}
