package runopts

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/seccomp"
)

// normCap turns "net_raw" or "CAP_NET_RAW" into "CAP_NET_RAW".
func normCap(c string) string {
	c = strings.ToUpper(c)
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

func security(s *specs.Spec, o *Options) error {
	known := map[string]bool{}
	for _, c := range runtime.KnownCaps() {
		known[c] = true
	}
	caps := append([]string{}, runtime.DefaultCaps...)
	if o.Host.Privileged {
		caps = runtime.BoundedCaps()
	}
	for _, d := range o.Host.CapDrop {
		d = normCap(d)
		if d != "ALL" && !known[d] {
			return fmt.Errorf("--cap-drop: unknown capability %q", d)
		}
		var keep []string
		for _, c := range caps {
			if d != "ALL" && c != d {
				keep = append(keep, c)
			}
		}
		caps = keep
	}
	for _, a := range o.Host.CapAdd {
		a = normCap(a)
		switch {
		case a == "ALL":
			caps = runtime.BoundedCaps()
		case !known[a]:
			return fmt.Errorf("--cap-add: unknown capability %q", a)
		default:
			if !contains(caps, a) {
				caps = append(caps, a)
			}
		}
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	profile := "default"
	for _, opt := range o.Host.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if k == opt {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			s.Process.NoNewPrivileges = v == "" || v == "true"
			if v != "" && v != "true" && v != "false" {
				return fmt.Errorf("--security-opt %q: want no-new-privileges[:true|false]", opt)
			}
		case "seccomp":
			if v == "" {
				return fmt.Errorf("--security-opt %q: want seccomp=unconfined or seccomp=PROFILE.json", opt)
			}
			profile = v
		case "label", "apparmor":
			// No SELinux or AppArmor support: accepted, as Docker does on
			// hosts without them.
		default:
			return fmt.Errorf("--security-opt %q: unsupported option", opt)
		}
	}
	switch {
	case profile == "unconfined" || o.Host.Privileged && profile == "default":
		s.Linux.Seccomp = nil
	case profile == "default":
		s.Linux.Seccomp = seccomp.DefaultProfile(caps)
	default:
		sc, err := loadProfile(profile, caps)
		if err != nil {
			return err
		}
		s.Linux.Seccomp = sc
	}
	if o.Host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = without(s.Mounts[i].Options, "ro")
			}
		}
		devs, err := hostDevices()
		if err != nil {
			return err
		}
		s.Linux.Devices = devs
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func without(l []string, s string) []string {
	var out []string
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// hostDevices lists the host's device nodes for --privileged, as Docker
// gives them all to a privileged container.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/.udev", "/dev/hugepages":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || p == "/dev/ptmx" {
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
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--privileged: list host devices: %w", err)
	}
	return out, nil
}

// dockerProfile is Docker's seccomp profile format; an OCI-format profile
// reads the same way.
type dockerProfile struct {
	specs.LinuxSeccomp
	ArchMap []struct {
		Arch string   `json:"architecture"`
		Sub  []string `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Includes struct {
			Caps []string `json:"caps"`
		} `json:"includes"`
		Excludes struct {
			Caps []string `json:"caps"`
		} `json:"excludes"`
	} `json:"syscalls"`
}

// loadProfile reads a seccomp profile file (Docker's or OCI's format),
// keeping the rules whose capability conditions the container meets.
func loadProfile(file string, caps []string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--security-opt seccomp: %w", err)
	}
	var p dockerProfile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("--security-opt seccomp: %s: %w", file, err)
	}
	out := p.LinuxSeccomp
	out.Syscalls = nil
	if len(out.Architectures) == 0 {
		for _, a := range p.ArchMap {
			out.Architectures = append(out.Architectures, specs.Arch(a.Arch))
			for _, s := range a.Sub {
				out.Architectures = append(out.Architectures, specs.Arch(s))
			}
		}
	}
rules:
	for _, r := range p.Syscalls {
		for _, c := range r.Includes.Caps {
			if !contains(caps, c) {
				continue rules
			}
		}
		for _, c := range r.Excludes.Caps {
			if contains(caps, c) {
				continue rules
			}
		}
		out.Syscalls = append(out.Syscalls, r.LinuxSyscall)
	}
	if _, err := seccomp.Compile(&out); err != nil {
		return nil, fmt.Errorf("--security-opt seccomp: %s: %w", file, err)
	}
	return &out, nil
}

// sdnotify passes systemd's notify socket in for --sdnotify=container.
func sdnotify(s *specs.Spec, o *Options) error {
	switch o.Host.Sdnotify {
	case "", "ignore", "conmon":
		return nil
	case "container":
	default:
		return fmt.Errorf("--sdnotify %q: want container, conmon or ignore", o.Host.Sdnotify)
	}
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if strings.HasPrefix(sock, "@") {
		return fmt.Errorf("--sdnotify=container: the abstract socket %s cannot be passed into a container's network namespace", sock)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run/notify/notify.sock", Type: "bind", Source: sock, Options: []string{"bind", "rprivate"}})
	s.Process.Env = setEnv(s.Process.Env, "NOTIFY_SOCKET=/run/notify/notify.sock")
	return nil
}
