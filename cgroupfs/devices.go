package cgroupfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Device access bits and types as the kernel's device cgroup uses them
// (include/uapi/linux/bpf.h: BPF_DEVCG_ACC_*, BPF_DEVCG_DEV_*).
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite

	devBlock = 1
	devChar  = 2
)

// devRule is a validated, normalised device cgroup rule.
type devRule struct {
	allow  bool
	typ    byte  // 'a', 'b' or 'c'
	major  int64 // -1: any
	minor  int64 // -1: any
	access uint32
}

// isAll reports whether the rule covers every device with every access.
func (r devRule) isAll() bool {
	return r.typ == 'a' && r.major < 0 && r.minor < 0 && r.access == accAll
}

func parseAccess(s string) (uint32, error) {
	if s == "" {
		return accAll, nil
	}
	var a uint32
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("invalid device access %q", s)
		}
	}
	return a, nil
}

func accessString(a uint32) string {
	var b strings.Builder
	if a&accRead != 0 {
		b.WriteByte('r')
	}
	if a&accWrite != 0 {
		b.WriteByte('w')
	}
	if a&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// normalizeDevices validates the OCI rules. Rules for types the device
// cgroup cannot see (fifos, 'p') are dropped; 'u' (unbuffered char) is 'c'.
func normalizeDevices(in []specs.LinuxDeviceCgroup) ([]devRule, error) {
	var out []devRule
	for i, d := range in {
		r := devRule{allow: d.Allow, major: -1, minor: -1}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "b", "c":
			r.typ = d.Type[0]
		case "u":
			r.typ = 'c'
		case "p":
			logrus.Debugf("cgroupfs: device rule %d for fifos ignored", i)
			continue
		default:
			return nil, fmt.Errorf("device rule %d: invalid type %q", i, d.Type)
		}
		for _, x := range []struct {
			v   *int64
			dst *int64
			nm  string
		}{{d.Major, &r.major, "major"}, {d.Minor, &r.minor, "minor"}} {
			if x.v == nil || *x.v == -1 {
				continue
			}
			if *x.v < 0 || *x.v > math.MaxInt32 {
				return nil, fmt.Errorf("device rule %d: invalid %s %d", i, x.nm, *x.v)
			}
			*x.dst = *x.v
		}
		a, err := parseAccess(d.Access)
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		r.access = a
		out = append(out, r)
	}
	return out, nil
}

// v1String renders the rule for devices.allow / devices.deny. Type 'a'
// with a specific number or partial access has no v1 form (the kernel reads
// any "a ..." as everything), so it becomes a 'b' and a 'c' line.
func (r devRule) v1Strings() []string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return fmtInt(n)
	}
	if r.isAll() {
		return []string{"a"}
	}
	types := []byte{r.typ}
	if r.typ == 'a' {
		types = []byte{'c', 'b'}
	}
	var out []string
	for _, t := range types {
		out = append(out, fmt.Sprintf("%c %s:%s %s", t, num(r.major), num(r.minor), accessString(r.access)))
	}
	return out
}

// devicesProgram compiles the rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program. Semantics: the last rule that matches a request decides; the
// last allow-all/deny-all rule sets the default and hides every rule before
// it; without any, the default is allow (like a fresh v1 device cgroup). An
// allow rule matches when it grants all requested access bits, a deny rule
// when it denies any of them.
func devicesProgram(rules []devRule) asm.Instructions {
	deflt := true
	start := 0
	for i, r := range rules {
		if r.isAll() {
			deflt, start = r.allow, i+1
		}
	}
	verdict := func(allow bool) int32 {
		if allow {
			return 1
		}
		return 0
	}
	// R1 is *struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}.
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // access_type
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xffff),              // R3: device type
		asm.RSh.Imm(asm.R2, 16),                  // R2: access bits
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // R4: major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // R5: minor
	}
	// Walk the live rules from the last one: the first hit is the answer.
	for i := len(rules) - 1; i >= start; i-- {
		r := rules[i]
		next := fmt.Sprintf("rule%d", i-1)
		var block asm.Instructions
		switch r.typ {
		case 'b':
			block = append(block, asm.JNE.Imm(asm.R3, devBlock, next))
		case 'c':
			block = append(block, asm.JNE.Imm(asm.R3, devChar, next))
		}
		if r.access != accAll {
			block = append(block, asm.Mov.Reg(asm.R0, asm.R2))
			if r.allow {
				// Some requested bit is not granted: no match.
				block = append(block,
					asm.And.Imm(asm.R0, int32(^r.access&accAll)),
					asm.JNE.Imm(asm.R0, 0, next))
			} else {
				// No requested bit is denied: no match.
				block = append(block,
					asm.And.Imm(asm.R0, int32(r.access)),
					asm.JEq.Imm(asm.R0, 0, next))
			}
		}
		if r.major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.major), next))
		}
		if r.minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.minor), next))
		}
		block = append(block, asm.Mov.Imm(asm.R0, verdict(r.allow)), asm.Return())
		block[0] = block[0].WithSymbol(fmt.Sprintf("rule%d", i))
		insns = append(insns, block...)
	}
	tail := asm.Mov.Imm(asm.R0, verdict(deflt)).WithSymbol(fmt.Sprintf("rule%d", start-1))
	return append(insns, tail, asm.Return())
}

// setDevicesBPF loads the program for rules and attaches it to the cgroup
// dir, replacing the device programs attached before (by berth or anyone).
func setDevicesBPF(dir string, in []specs.LinuxDeviceCgroup) error {
	rules, err := normalizeDevices(in)
	if err != nil {
		return err
	}
	insns := devicesProgram(rules)
	logrus.Debugf("cgroupfs: device program for %s: %d rules, %d instructions", dir, len(rules), len(insns))
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "berth_devices",
		Type:         ebpf.CGroupDevice,
		License:      "Apache-2.0",
		Instructions: insns,
	})
	if err != nil {
		return fmt.Errorf("load device cgroup program for %s: %w", dir, err)
	}
	defer prog.Close()

	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)

	var old []*ebpf.Program
	defer func() {
		for _, p := range old {
			p.Close()
		}
	}()
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	for _, ap := range q.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("open device program %d of %s: %w", ap.ID, dir, err)
		}
		old = append(old, p)
	}
	// Attach the new program next to the old ones, then remove those: the
	// cgroup is never without a device filter.
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach device program to %s: %w", dir, err)
	}
	logrus.Debugf("cgroupfs: attached device program to %s (replacing %d)", dir, len(old))
	for _, p := range old {
		err := link.RawDetachProgram(link.RawDetachProgramOptions{
			Target:  fd,
			Program: p,
			Attach:  ebpf.AttachCGroupDevice,
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("detach old device program from %s: %w", dir, err)
		}
	}
	return nil
}

// setDevicesV1 writes the rules to devices.deny/devices.allow in order.
// A leading deny-all resets the cgroup to default-deny with no exceptions,
// so that a second Set (update) starts from a clean slate.
func setDevicesV1(dir string, in []specs.LinuxDeviceCgroup) error {
	rules, err := normalizeDevices(in)
	if err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		for _, s := range r.v1Strings() {
			if err := writeFile(dir, file, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// countDevicePrograms returns how many device programs are attached to the
// cgroup2 directory dir.
func countDevicePrograms(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return 0, fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	return len(q.Programs), nil
}
