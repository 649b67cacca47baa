package runconfig

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
)

// UpdateFlags are `berth update`'s flags; "" and nil are not given, as are
// zero sizes and CPUs (Docker's update cannot lift a limit but pids).
type UpdateFlags struct {
	Memory, MemorySwap, MemoryReservation, CPUs, CpusetCPUs, Restart string
	CPUShares                                                        *int64
	PidsLimit                                                        *int64
	BlkioWeight                                                      *uint64
}

// Given says whether any flag was.
func (f UpdateFlags) Given() bool {
	return f.Memory != "" || f.MemorySwap != "" || f.MemoryReservation != "" || f.CPUs != "" ||
		f.CpusetCPUs != "" || f.Restart != "" || f.CPUShares != nil || f.PidsLimit != nil || f.BlkioWeight != nil
}

// ApplyUpdate sets what f gives in r's HostConfig, rebuilds the changed
// parts of r's stored spec with run's rules and checks, and returns those
// parts for the live cgroup (nil when only the restart policy changed).
func ApplyUpdate(r *container.Record, f UpdateFlags) (*specs.LinuxResources, error) {
	h := r.HostConfig // a copy: r is changed only when all is well
	var mem, cpu, pids, blkio bool
	var err error
	set := func(dst *int64, flag, v string, unlimited bool) error {
		if v == "" {
			return nil
		}
		n, err := sizeFlag(flag, v, unlimited)
		if err != nil {
			return err
		}
		if n != 0 {
			*dst, mem = n, true
		}
		return nil
	}
	if err := set(&h.Memory, "--memory", f.Memory, false); err != nil {
		return nil, err
	}
	if err := set(&h.MemorySwap, "--memory-swap", f.MemorySwap, true); err != nil {
		return nil, err
	}
	if err := set(&h.MemoryReservation, "--memory-reservation", f.MemoryReservation, false); err != nil {
		return nil, err
	}
	if f.CPUs != "" {
		if h.NanoCpus, err = ParseCPUs(f.CPUs); err != nil {
			return nil, err
		}
		cpu = true
	}
	if f.CPUShares != nil {
		if *f.CPUShares < 0 {
			return nil, fmt.Errorf("--cpu-shares: %d is negative", *f.CPUShares)
		}
		h.CpuShares, cpu = *f.CPUShares, true
	}
	if f.CpusetCPUs != "" {
		h.CpusetCpus, cpu = f.CpusetCPUs, true
	}
	if f.PidsLimit != nil {
		n := *f.PidsLimit
		h.PidsLimit, pids = &n, true
	}
	if f.BlkioWeight != nil {
		if *f.BlkioWeight < 10 || *f.BlkioWeight > 1000 {
			return nil, fmt.Errorf("--blkio-weight: %d is not between 10 and 1000", *f.BlkioWeight)
		}
		h.BlkioWeight, blkio = uint16(*f.BlkioWeight), true
	}
	if f.Restart != "" {
		if h.RestartPolicy, err = ParseRestart(f.Restart); err != nil {
			return nil, err
		}
		if h.AutoRemove && h.RestartPolicy.Name != "no" {
			return nil, errors.New("--restart: the container was started with --rm, which a restart policy conflicts with")
		}
	}
	// Run's rules, on a scratch spec: the limits of the new HostConfig.
	o := &Options{Host: h, BlkioWeight: h.BlkioWeight, CpusetMems: h.CpusetMems,
		OOMKillDisable: h.OomKillDisable != nil && *h.OomKillDisable}
	scratch := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	if err := resources(scratch, o); err != nil {
		return nil, err
	}
	h = o.Host // with run's defaults (swap twice the memory)
	nr := scratch.Linux.Resources
	if r.Spec.Linux.Resources == nil {
		r.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	stored := r.Spec.Linux.Resources
	live := &specs.LinuxResources{}
	changed := false
	if mem {
		stored.Memory, live.Memory, changed = nr.Memory, nr.Memory, true
	}
	if cpu {
		stored.CPU, live.CPU, changed = nr.CPU, nr.CPU, true
	}
	if pids {
		stored.Pids, changed = nr.Pids, true
		// No limit is written as "max", lifting the one the cgroup has.
		live.Pids = &specs.LinuxPids{Limit: ptr(int64(-1))}
		if nr.Pids != nil {
			live.Pids = nr.Pids
		}
	}
	if blkio {
		stored.BlockIO, live.BlockIO, changed = nr.BlockIO, nr.BlockIO, true
	}
	r.HostConfig = h
	if !changed {
		return nil, nil
	}
	return live, nil
}

// Check parses every value f gives, so that bad input is refused before
// any container is touched; the checks that need the container's other
// limits are ApplyUpdate's.
func (f UpdateFlags) Check() error {
	for _, s := range []struct {
		flag, v   string
		unlimited bool
	}{{"--memory", f.Memory, false}, {"--memory-swap", f.MemorySwap, true}, {"--memory-reservation", f.MemoryReservation, false}} {
		if _, err := sizeFlag(s.flag, s.v, s.unlimited); err != nil {
			return err
		}
	}
	if f.CPUs != "" {
		if _, err := ParseCPUs(f.CPUs); err != nil {
			return err
		}
	}
	if f.CPUShares != nil && *f.CPUShares < 0 {
		return fmt.Errorf("--cpu-shares: %d is negative", *f.CPUShares)
	}
	if err := checkCPUList("--cpuset-cpus", f.CpusetCPUs); err != nil {
		return err
	}
	if f.BlkioWeight != nil && (*f.BlkioWeight < 10 || *f.BlkioWeight > 1000) {
		return fmt.Errorf("--blkio-weight: %d is not between 10 and 1000", *f.BlkioWeight)
	}
	if f.Restart != "" {
		if _, err := ParseRestart(f.Restart); err != nil {
			return err
		}
	}
	return nil
}
