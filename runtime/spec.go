package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/passwd"
	"github.com/berth-project/berth/seccomp"
)

// DefaultCaps is Docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths are Docker's masked paths.
var DefaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are Docker's read-only paths.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// DefaultSpec is the hardened configuration `berth oci spec` writes and the
// container layer starts from.
func DefaultSpec() *specs.Spec {
	caps := append([]string(nil), DefaultCaps...)
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "berth",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
			Seccomp:       seccomp.DefaultProfile(caps),
		},
	}
	return s
}

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no config.json in bundle (berth oci spec writes one)", bundle)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseSpec(data, bundle)
}

// parseSpec decodes and validates the config.json of bundle.
func parseSpec(data []byte, bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := Validate(&s, bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Validate checks what berth needs from a spec before anything is created.
func Validate(s *specs.Spec, bundle string) error {
	if s.Version == "" {
		return errors.New("ociVersion is missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return fmt.Errorf("unsupported ociVersion %q (berth supports 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is missing")
	}
	root := RootfsPath(s, bundle)
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", root, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("rootfs %s: not a directory", root)
	}
	if s.Process == nil {
		return errors.New("process is missing")
	}
	if len(s.Process.Args) == 0 && s.Process.CommandLine == "" {
		return errors.New("process.args is empty")
	}
	if s.Process.Cwd == "" || !filepath.IsAbs(s.Process.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", s.Process.Cwd)
	}
	if err := checkUser(s.Process.User); err != nil {
		return err
	}
	if s.Linux == nil {
		return errors.New("linux section is missing")
	}
	for _, rl := range s.Process.Rlimits {
		if _, ok := initproto.RlimitNames[rl.Type]; !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return fmt.Errorf("rlimit %s: soft %d above hard %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q must be absolute", m.Destination)
		}
	}
	return nil
}

// checkUser refuses ids out of berth's range: 4294967295, (uid_t)-1,
// means "no change" to setresuid and would leave the process root.
func checkUser(u specs.User) error {
	if u.UID > passwd.MaxID {
		return fmt.Errorf("process.user.uid %d is out of range (0-%d)", u.UID, passwd.MaxID)
	}
	if u.GID > passwd.MaxID {
		return fmt.Errorf("process.user.gid %d is out of range (0-%d)", u.GID, passwd.MaxID)
	}
	for _, g := range u.AdditionalGids {
		if g > passwd.MaxID {
			return fmt.Errorf("process.user.additionalGids: %d is out of range (0-%d)", g, passwd.MaxID)
		}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// RootfsPath returns the absolute rootfs of a spec in a bundle.
func RootfsPath(s *specs.Spec, bundle string) string {
	if filepath.IsAbs(s.Root.Path) {
		return filepath.Clean(s.Root.Path)
	}
	return filepath.Join(bundle, s.Root.Path)
}
