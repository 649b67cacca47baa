package runconfig

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/seccomp"
)

// normCap turns "net_raw" or "CAP_NET_RAW" into "CAP_NET_RAW".
func normCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// boundedCaps is runtime.BoundedCaps, replaceable in tests.
var boundedCaps = runtime.BoundedCaps

// capabilities computes the container's capability set as Docker's
// TweakCapabilities: --privileged gives all; --cap-add ALL gives all but
// the dropped ones; --cap-drop ALL gives only the added ones; otherwise
// the default set minus the dropped plus the added.
//
// "All" is every capability berth itself holds (runtime.BoundedCaps), not
// every capability the kernel knows: the runtime cannot grant what it
// lacks, and on some hosts root has no CAP_SYS_RESOURCE.
func capabilities(o *Options) ([]string, error) {
	known := map[string]bool{}
	for _, c := range runtime.KnownCaps() {
		known[c] = true
	}
	norm := func(flag string, l []string) ([]string, error) {
		var out []string
		for _, c := range l {
			n := normCap(c)
			if n != "ALL" && !known[n] {
				return nil, fmt.Errorf("%s: unknown capability %q", flag, c)
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	add, err := norm("--cap-add", o.Host.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := norm("--cap-drop", o.Host.CapDrop)
	if err != nil {
		return nil, err
	}
	all := boundedCaps()
	if o.Host.Privileged {
		return all, nil
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range all {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case slices.Contains(drop, "ALL"):
		caps = []string{}
	default:
		for _, c := range runtime.DefaultCaps {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range add {
		if !slices.Contains(all, c) {
			return nil, fmt.Errorf("--cap-add %s: berth itself does not hold this capability, so it cannot give it", c)
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// security applies capabilities, --security-opt and --privileged.
func security(s *specs.Spec, o *Options) error {
	caps, err := capabilities(o)
	if err != nil {
		return err
	}
	// Bounding, effective and permitted, as Docker: inheritable and
	// ambient stay empty.
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: slices.Clone(caps), Permitted: slices.Clone(caps),
	}
	profile := ""
	systemPaths := false
	for _, opt := range o.Host.SecurityOpt {
		k, v, hasVal := strings.Cut(opt, "=")
		if !hasVal {
			k, v, hasVal = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			// berth's default is true (Docker's is false).
			switch {
			case !hasVal || v == "true":
				s.Process.NoNewPrivileges = true
			case v == "false":
				s.Process.NoNewPrivileges = false
			default:
				return fmt.Errorf("--security-opt %q: want no-new-privileges[=true|false]", opt)
			}
		case "seccomp":
			if v == "" {
				return fmt.Errorf("--security-opt %q: want seccomp=unconfined or seccomp=PROFILE.json", opt)
			}
			profile = v
		case "systempaths":
			if v != "unconfined" {
				return fmt.Errorf("--security-opt %q: want systempaths=unconfined", opt)
			}
			systemPaths = true
		case "label":
			// berth has no SELinux support: only turning labels off means
			// the same without it.
			if v != "disable" {
				return fmt.Errorf("--security-opt %q: berth has no SELinux support (only label=disable is accepted)", opt)
			}
		case "apparmor":
			if v != "unconfined" {
				return fmt.Errorf("--security-opt %q: berth has no AppArmor support (only apparmor=unconfined is accepted)", opt)
			}
		default:
			return fmt.Errorf("--security-opt %q: unsupported option (want no-new-privileges, seccomp=, systempaths=unconfined)", opt)
		}
	}
	switch {
	case profile == "unconfined" || o.Host.Privileged:
		// Docker gives a privileged container no seccomp filter, whatever
		// the profile asked.
		s.Linux.Seccomp = nil
	case profile == "" || profile == "builtin" || profile == "default":
		s.Linux.Seccomp = seccomp.DefaultProfile(caps)
	default:
		sc, err := LoadSeccompProfile(profile, caps)
		if err != nil {
			return fmt.Errorf("--security-opt seccomp: %w", err)
		}
		s.Linux.Seccomp = sc
	}
	if systemPaths || o.Host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if o.Host.Privileged {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(s.Mounts[i].Options), func(o string) bool { return o == "ro" })
			}
		}
		devs, err := hostDevices("/dev")
		if err != nil {
			return err
		}
		s.Linux.Devices = devs
	}
	return nil
}

// hostDevices lists the device nodes under dir for --privileged, as
// Docker (containerd's HostDevices) does: char and block devices, not
// those of /dev/pts, /dev/shm, /dev/mqueue, /dev/fd and the like, nor
// /dev/console (the container's own) and /dev/ptmx (its devpts's).
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a node that vanished or cannot be read
		}
		if d.IsDir() {
			switch d.Name() {
			case "pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev", "hugepages":
				if p != dir {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		if rel == "console" || rel == "ptmx" {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		typ := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
		if typ == "c" && major == 0 && minor == 0 {
			return nil // an overlay whiteout, not a device
		}
		mode := fs.FileMode(st.Mode & 0o7777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: filepath.Join("/dev", rel), Type: typ, Major: int64(major), Minor: int64(minor),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--privileged: list the host's devices: %w", err)
	}
	return out, nil
}

// dockerProfile is Docker's seccomp profile format (an OCI-format
// profile reads the same way).
type dockerProfile struct {
	specs.LinuxSeccomp
	ArchMap []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Name     string `json:"name"` // old Docker profiles: one name per rule
		Includes filter `json:"includes"`
		Excludes filter `json:"excludes"`
	} `json:"syscalls"`
}

type filter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

// nativeArch is the seccomp name of the architecture berth runs on.
var nativeArch = map[string]specs.Arch{
	"amd64": specs.ArchX86_64, "386": specs.ArchX86, "arm64": specs.ArchAARCH64, "arm": specs.ArchARM,
	"ppc64le": specs.ArchPPC64LE, "ppc64": specs.ArchPPC64, "s390x": specs.ArchS390X,
	"riscv64": specs.ArchRISCV64, "mips64": specs.ArchMIPS64, "mips64le": specs.ArchMIPSEL64,
	"loong64": specs.Arch("SCMP_ARCH_LOONGARCH64"),
}

// kernelVersion is the running kernel's major and minor version.
var kernelVersion = func() (int, int, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0, err
	}
	return parseKernelVersion(unix.ByteSliceToString(u.Release[:]))
}

func parseKernelVersion(v string) (int, int, error) {
	majS, rest, _ := strings.Cut(v, ".")
	minS := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minS = rest[:i]
	}
	maj, err1 := strconv.Atoi(majS)
	min, err2 := strconv.Atoi(minS)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid kernel version %q", v)
	}
	return maj, min, nil
}

// LoadSeccompProfile reads a seccomp profile file in Docker's format (or
// the OCI spec's) as Docker does: the archMap entry of the native
// architecture, and the rules whose includes/excludes (caps, arches,
// minKernel) the container meets with capabilities caps. The profile is
// compiled once, so a bad one fails now rather than at start.
func LoadSeccompProfile(file string, caps []string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p dockerProfile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return convertProfile(&p, file, caps)
}

func convertProfile(p *dockerProfile, file string, caps []string) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("%s: no defaultAction", file)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("%s: both architectures and archMap are set", file)
	}
	out := p.LinuxSeccomp
	out.Syscalls = nil
	arch := goruntime.GOARCH
	for _, a := range p.ArchMap {
		if native, ok := nativeArch[arch]; ok && a.Arch == native {
			out.Architectures = append(out.Architectures, a.Arch)
			out.Architectures = append(out.Architectures, a.SubArches...)
		}
	}
	kmaj, kmin, kerr := kernelVersion()
	meets := func(f filter, include bool) (bool, error) {
		for _, c := range f.Caps {
			if slices.Contains(caps, normCap(c)) != include {
				return false, nil
			}
		}
		if len(f.Arches) > 0 && slices.Contains(f.Arches, arch) != include {
			return false, nil
		}
		if f.MinKernel != "" {
			if !include {
				return false, fmt.Errorf("%s: minKernel is only valid in includes", file)
			}
			maj, min, err := parseKernelVersion(f.MinKernel)
			if err != nil {
				return false, fmt.Errorf("%s: %w", file, err)
			}
			if kerr != nil {
				return false, kerr
			}
			if kmaj < maj || kmaj == maj && kmin < min {
				return false, nil
			}
		}
		return true, nil
	}
	for _, r := range p.Syscalls {
		ok, err := meets(r.Includes, true)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		// An exclusion applies when any of its conditions holds.
		excluded := false
		for _, c := range r.Excludes.Caps {
			excluded = excluded || slices.Contains(caps, normCap(c))
		}
		excluded = excluded || slices.Contains(r.Excludes.Arches, arch)
		if r.Excludes.MinKernel != "" {
			return nil, fmt.Errorf("%s: minKernel is only valid in includes", file)
		}
		if excluded {
			continue
		}
		sc := r.LinuxSyscall
		if r.Name != "" {
			if len(sc.Names) > 0 {
				return nil, fmt.Errorf("%s: a rule has both name and names", file)
			}
			sc.Names = []string{r.Name}
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s: a rule has no syscall names", file)
		}
		out.Syscalls = append(out.Syscalls, sc)
	}
	if _, err := seccomp.Compile(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &out, nil
}

// checkSdnotify checks --sdnotify. "container" passes a notify socket
// into the container, but not from the spec: whoever starts it (the
// foreground berth, the monitor) makes a relay of its own for each start
// when systemd listens then (container.StartOpts.NotifySocket); so only a
// mount of the user's where the socket goes is refused here. "conmon"
// (berth sends READY=1 itself), "healthy" (berth sends it once the
// healthcheck passed) and "ignore" pass nothing.
func checkSdnotify(o *Options, seen map[string]bool) error {
	switch o.Host.Sdnotify {
	case "", "ignore", "conmon", "healthy":
		return nil
	case "container":
	default:
		return fmt.Errorf("--sdnotify %q: want container, conmon, healthy or ignore", o.Host.Sdnotify)
	}
	if seen[NotifySocket] {
		return fmt.Errorf("--sdnotify=container: a mount of yours is where the notify socket goes (%s)", NotifySocket)
	}
	return nil
}
