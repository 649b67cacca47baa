// Package runopts turns Docker's run/create options into a container's
// configuration: the image's config merged as Docker merges it, and the
// OCI spec the runtime gets, built on berth's hardened default.
package runopts

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runtime"
)

// Options is a parsed run/create command line.
type Options struct {
	Config                    container.Config
	Host                      container.HostConfig
	Volumes                   []string // -v
	Mounts                    []string // --mount
	Detach                    bool
	Interactive               bool
	Tty                       bool
	Remove                    bool
	Name                      string
	DetachKeys                string
	Publish                   []string
	GroupAdd                  []string
	Sysctls                   map[string]string
	ShmSize                   int64
	OOMScoreAdj               *int
	OOMKillDisable            bool
	CpusetMems                string
	BlkioWeight               uint16
	PidMode, IpcMode, UTSMode string
	Annotations               map[string]string
}

// InitPath is where --init mounts berth as the container's pid 1.
const InitPath = "/dev/init"

// DefaultPath is Docker's PATH for images without one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ApplyImage merges the image's config into o.Config as Docker does.
func ApplyImage(o *Options, img ocispec.ImageConfig) {
	c := &o.Config
	userEntrypoint := c.Entrypoint != nil
	if !userEntrypoint {
		c.Entrypoint = img.Entrypoint
		if len(c.Cmd) == 0 {
			c.Cmd = img.Cmd
		}
	}
	// Image env first; the user's override by key.
	env := append([]string{}, img.Env...)
	for _, e := range c.Env {
		env = setEnv(env, e)
	}
	c.Env = env
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if c.User == "" {
		c.User = img.User
	}
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}
	if len(img.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	if len(img.Volumes) > 0 {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			c.Volumes[v] = struct{}{}
		}
	}
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// Volumes creates or finds named volumes (package volume).
type Volumes interface {
	// Ensure returns the mountpoint of the named volume, creating it when
	// missing; name "" makes a new anonymous volume.
	Ensure(name string) (vname, path string, created bool, err error)
}

// Spec builds the OCI spec of container id. root.path is left for the
// caller, who mounts the overlay at start.
func Spec(id string, o *Options, vols Volumes) (*specs.Spec, []container.MountPoint, error) {
	if len(o.Publish) > 0 {
		return nil, nil, errors.New("-p/--publish needs bridge networking, which berth does not have yet")
	}
	s := runtime.DefaultSpec()
	c := &o.Config
	args := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(args) == 0 {
		return nil, nil, errors.New("no command specified")
	}
	p := s.Process
	p.Args = args
	p.Terminal = o.Tty
	p.Cwd = "/"
	if c.WorkingDir != "" {
		if !path.IsAbs(c.WorkingDir) {
			return nil, nil, fmt.Errorf("-w: the working directory %q is not an absolute path", c.WorkingDir)
		}
		p.Cwd = path.Clean(c.WorkingDir)
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = id[:12]
	}
	env := append([]string{}, c.Env...)
	if !hasEnv(env, "PATH") {
		env = append([]string{DefaultPath}, env...)
	}
	env = setEnv(env, "HOSTNAME="+hostname)
	if o.Tty && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	p.Env = env
	if err := network(s, o, hostname); err != nil {
		return nil, nil, err
	}
	if err := security(s, o); err != nil {
		return nil, nil, err
	}
	if err := resources(s, o); err != nil {
		return nil, nil, err
	}
	if o.ShmSize > 0 {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				s.Mounts[i].Options = append(s.Mounts[i].Options[:len(s.Mounts[i].Options)-1], fmt.Sprintf("size=%dk", o.ShmSize/1024))
			}
		}
	}
	for k, v := range o.Sysctls {
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		s.Linux.Sysctl[k] = v
	}
	if o.OOMScoreAdj != nil {
		p.OOMScoreAdj = o.OOMScoreAdj
	}
	for _, g := range o.GroupAdd {
		var id uint32
		if _, err := fmt.Sscan(g, &id); err != nil {
			return nil, nil, fmt.Errorf("--group-add %q: only numeric group ids are supported", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, id)
	}
	if len(o.Annotations) > 0 {
		s.Annotations = o.Annotations
	}
	s.Root.Readonly = o.Host.ReadonlyRootfs
	if o.Host.CgroupParent != "" {
		s.Linux.CgroupsPath = filepath.Join("/", o.Host.CgroupParent, "berth-"+id)
	} else {
		s.Linux.CgroupsPath = "/berth/" + id
	}
	mounts, err := buildMounts(s, o, vols)
	if err != nil {
		return nil, nil, err
	}
	if o.Host.Init {
		self, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("--init: %w", err)
		}
		if self, err = filepath.EvalSymlinks(self); err != nil {
			return nil, nil, fmt.Errorf("--init: %w", err)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: self, Options: []string{"bind", "ro", "nosuid", "nodev"}})
		p.Args = append([]string{InitPath, "--"}, p.Args...)
	}
	if err := sdnotify(s, o); err != nil {
		return nil, nil, err
	}
	return s, mounts, nil
}

func dropNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != t {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

func network(s *specs.Spec, o *Options, hostname string) error {
	mode := o.Host.NetworkMode
	switch mode {
	case "", "none", "default":
		o.Host.NetworkMode = "none"
	case "host":
		dropNamespace(s, specs.NetworkNamespace)
		// /sys of the host's network namespace: Docker mounts it rw-less too.
	default:
		return fmt.Errorf("network mode %q is not supported yet (use none or host)", mode)
	}
	for _, m := range []struct {
		mode string
		ns   specs.LinuxNamespaceType
		flag string
	}{{o.PidMode, specs.PIDNamespace, "--pid"}, {o.IpcMode, specs.IPCNamespace, "--ipc"}, {o.UTSMode, specs.UTSNamespace, "--uts"}} {
		switch m.mode {
		case "", "private":
		case "host":
			dropNamespace(s, m.ns)
		default:
			return fmt.Errorf("%s %q: want host or private", m.flag, m.mode)
		}
	}
	if o.UTSMode == "host" {
		s.Hostname = ""
	} else {
		s.Hostname = hostname
	}
	if o.Config.Domainname != "" {
		s.Domainname = o.Config.Domainname
	}
	return nil
}

func buildMounts(s *specs.Spec, o *Options, vols Volumes) ([]container.MountPoint, error) {
	var mps []container.MountPoint
	seen := map[string]bool{}
	add := func(mp container.MountPoint) error {
		if !path.IsAbs(mp.Destination) {
			return fmt.Errorf("invalid mount destination %q: not an absolute path", mp.Destination)
		}
		mp.Destination = path.Clean(mp.Destination)
		if mp.Destination == "/" {
			return errors.New("invalid mount destination \"/\"")
		}
		if seen[mp.Destination] {
			return fmt.Errorf("duplicate mount point: %s", mp.Destination)
		}
		seen[mp.Destination] = true
		mps = append(mps, mp)
		return nil
	}
	for _, v := range o.Volumes {
		mp, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range o.Mounts {
		mp, err := parseMount(m)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for dst, opts := range o.Host.Tmpfs {
		if err := add(container.MountPoint{Type: "tmpfs", Destination: dst, Mode: opts, RW: true}); err != nil {
			return nil, err
		}
	}
	// The image's VOLUMEs not covered by a mount become anonymous volumes.
	var imgVols []string
	for v := range o.Config.Volumes {
		imgVols = append(imgVols, v)
	}
	sort.Strings(imgVols)
	for _, v := range imgVols {
		if !seen[path.Clean(v)] {
			if err := add(container.MountPoint{Type: "volume", Destination: v, RW: true, Anonymous: true}); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(mps, func(i, j int) bool {
		return strings.Count(mps[i].Destination, "/") < strings.Count(mps[j].Destination, "/")
	})
	for i := range mps {
		mp := &mps[i]
		if mp.Type == "volume" {
			name, p, created, err := vols.Ensure(mp.Name)
			if err != nil {
				return nil, err
			}
			if mp.Name == "" {
				mp.Anonymous = true
			}
			mp.Name, mp.Source = name, p
			mp.Fill = created && !strings.Contains(mp.Mode, "nocopy")
		}
		s.Mounts = append(s.Mounts, specMount(*mp))
		o.Host.Binds = append(o.Host.Binds, bindText(*mp))
	}
	return mps, nil
}

func bindText(mp container.MountPoint) string {
	src := mp.Source
	if mp.Type == "volume" {
		src = mp.Name
	}
	if mp.Type == "tmpfs" {
		return "tmpfs:" + mp.Destination
	}
	mode := "rw"
	if !mp.RW {
		mode = "ro"
	}
	return src + ":" + mp.Destination + ":" + mode
}

func specMount(mp container.MountPoint) specs.Mount {
	if mp.Type == "tmpfs" {
		opts := []string{"nosuid", "nodev", "noexec"}
		if mp.Mode != "" {
			opts = append(opts, strings.Split(mp.Mode, ",")...)
		}
		return specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts}
	}
	opts := []string{"rbind"}
	if !mp.RW {
		opts = append(opts, "ro")
	}
	prop := mp.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	opts = append(opts, prop)
	return specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: opts}
}

var propagations = map[string]bool{"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true}

// parseVolume parses -v SRC:DST[:OPTS] or -v DST.
func parseVolume(v string) (container.MountPoint, error) {
	parts := strings.Split(v, ":")
	mp := container.MountPoint{RW: true}
	switch len(parts) {
	case 1:
		mp.Type, mp.Destination = "volume", parts[0]
		return mp, nil
	case 2, 3:
	default:
		return mp, fmt.Errorf("-v %q: want SRC:DST[:OPTIONS]", v)
	}
	src, dst := parts[0], parts[1]
	mp.Destination = dst
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch {
			case o == "ro":
				mp.RW = false
			case o == "rw":
				mp.RW = true
			case propagations[o]:
				mp.Propagation = o
			case o == "nocopy":
				mp.Mode = "nocopy"
			case o == "z" || o == "Z" || o == "delegated" || o == "cached" || o == "consistent":
				// SELinux relabel and macOS hints: nothing to do here.
			default:
				return mp, fmt.Errorf("-v %q: unknown option %q", v, o)
			}
		}
	}
	if src == "" {
		return mp, fmt.Errorf("-v %q: empty source", v)
	}
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return mp, fmt.Errorf("-v %q: %w", v, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return mp, fmt.Errorf("bind source path does not exist: %s", abs)
		}
		mp.Type, mp.Source = "bind", abs
		return mp, nil
	}
	mp.Type, mp.Name = "volume", src
	return mp, nil
}

// parseMount parses --mount type=bind|volume|tmpfs,src=,dst=,...
func parseMount(v string) (container.MountPoint, error) {
	mp := container.MountPoint{RW: true, Type: "volume"}
	var tmpfsOpts []string
	for _, kv := range strings.Split(v, ",") {
		k, val, hasVal := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			if val != "bind" && val != "volume" && val != "tmpfs" {
				return mp, fmt.Errorf("--mount %q: type %q is not bind, volume or tmpfs", v, val)
			}
			mp.Type = val
		case "source", "src":
			mp.Source = val
		case "destination", "dst", "target":
			mp.Destination = val
		case "readonly", "ro":
			mp.RW = hasVal && (val == "false" || val == "0")
		case "bind-propagation":
			if !propagations[val] {
				return mp, fmt.Errorf("--mount %q: bad bind-propagation %q", v, val)
			}
			mp.Propagation = val
		case "volume-nocopy":
			if !hasVal || val == "true" || val == "1" {
				mp.Mode = "nocopy"
			}
		case "tmpfs-size":
			tmpfsOpts = append(tmpfsOpts, "size="+val)
		case "tmpfs-mode":
			tmpfsOpts = append(tmpfsOpts, "mode="+val)
		case "consistency", "bind-nonrecursive":
		default:
			return mp, fmt.Errorf("--mount %q: unknown key %q", v, k)
		}
	}
	if mp.Destination == "" {
		return mp, fmt.Errorf("--mount %q: no destination", v)
	}
	switch mp.Type {
	case "bind":
		if mp.Source == "" {
			return mp, fmt.Errorf("--mount %q: a bind mount needs a source", v)
		}
		abs, err := filepath.Abs(mp.Source)
		if err != nil {
			return mp, err
		}
		if _, err := os.Stat(abs); err != nil {
			return mp, fmt.Errorf("bind source path does not exist: %s", abs)
		}
		mp.Source = abs
	case "volume":
		mp.Name, mp.Source = mp.Source, ""
	case "tmpfs":
		if mp.Source != "" {
			return mp, fmt.Errorf("--mount %q: tmpfs takes no source", v)
		}
		mp.Mode = strings.Join(tmpfsOpts, ",")
	}
	return mp, nil
}
