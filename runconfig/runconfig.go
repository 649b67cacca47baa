// Package runconfig turns Docker's run/create options into a container's
// configuration: Docker-shaped records (container.Config and HostConfig),
// the image's config merged in as Docker merges it, and the OCI runtime
// spec, built on berth's hardened default (runtime.DefaultSpec).
//
// The flow is FromFlags (or an Options built by hand), ApplyImage with the
// image's config, then Spec. Everything is validated with one-line errors
// before any volume is created.
package runconfig

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	nsutil "github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/sdnotify"
)

// Options is a parsed run/create command line.
type Options struct {
	// Config is Docker's Config; Image is the image reference the user gave.
	Config container.Config
	Host   container.HostConfig

	Volumes []string // raw -v values
	Mounts  []string // raw --mount values

	Detach, Interactive, Tty, Remove bool
	Name                             string
	DetachKeys                       string
	// Networking is the endpoint --network, --ip, --ip6, --network-alias
	// and --mac-address ask for (bridge and user networks only).
	Networking  *container.NetworkingConfig
	Annotations map[string]string

	// Options container.HostConfig has no field for (yet).

	// GroupAdd is --group-add: group names or ids. Spec puts numeric ids
	// in process.user.additionalGids, which the start resolves with the
	// user; names are refused until HostConfig can carry them.
	GroupAdd []string
	// Sysctls is --sysctl.
	Sysctls map[string]string
	// ShmSize is --shm-size in bytes; 0 is Docker's 64 MiB.
	ShmSize int64
	// OOMScoreAdj is --oom-score-adj.
	OOMScoreAdj *int
	// OOMKillDisable is --oom-kill-disable (cgroup v1 only).
	OOMKillDisable bool
	// CpusetMems is --cpuset-mems.
	CpusetMems string
	// BlkioWeight is --blkio-weight (10-1000, 0 unset).
	BlkioWeight uint16
	// PidMode, IpcMode and UTSMode are --pid, --ipc and --uts: "" (or
	// "private") or "host".
	PidMode, IpcMode, UTSMode string

	// Pull is --pull: missing (""), always or never; Platform is
	// --platform, checked to be the host's.
	Pull, Platform string
	// InheritedVolumes are -v values for the mounts of --volumes-from's
	// containers (the caller resolves them); the container's own mounts
	// of the same destination win.
	InheritedVolumes []string
	// NoSigProxy is --sig-proxy=false: a foreground run passes the
	// signals it gets to the container no more.
	NoSigProxy bool
	// UIDMappings, GIDMappings are --uidmap/--gidmap: the container gets
	// a user namespace of its own with them.
	UIDMappings, GIDMappings []specs.LinuxIDMapping

	// CreatedVolumes is set by Spec: the names of the volumes it created
	// (named volumes that did not exist and anonymous volumes), also when
	// it fails, so the caller can remove them if anything fails later.
	CreatedVolumes []string
}

// InitPath is where --init mounts berth as the container's pid 1 (package
// reaper runs when argv[0] is InitPath).
const InitPath = "/dev/init"

// DefaultPath is Docker's PATH for images that set none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NotifySocket is where --sdnotify=container puts the notify relay's
// socket.
const NotifySocket = sdnotify.ContainerPath

// ApplyImage merges the image's config into o.Config as Docker does:
//
//   - a user --entrypoint (even "") replaces the image's ENTRYPOINT and
//     drops the image's CMD; otherwise the image's ENTRYPOINT stays and a
//     user command replaces the image's CMD;
//   - Env: the image's first, then the user's, replacing by key;
//   - WorkingDir, User, StopSignal: the user's, else the image's;
//   - Labels: the image's, then the user's;
//   - Volumes: the image's VOLUMEs are added; Spec makes them anonymous
//     volumes unless a mount covers the path.
func ApplyImage(o *Options, img ocispec.ImageConfig) {
	c := &o.Config
	if c.Entrypoint == nil {
		c.Entrypoint = cloneStrings(img.Entrypoint)
		if len(c.Cmd) == 0 {
			c.Cmd = cloneStrings(img.Cmd)
		}
	}
	env := cloneStrings(img.Env)
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
		labels := make(map[string]string, len(img.Labels)+len(c.Labels))
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	applyExposed(c, img.ExposedPorts)
	if len(img.Volumes) > 0 {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			c.Volumes[v] = struct{}{}
		}
	}
}

func cloneStrings(l []string) []string {
	if l == nil {
		return nil
	}
	return append([]string{}, l...)
}

// setEnv replaces the variable of kv (KEY=VALUE) in env or appends it.
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

// Volumes creates or finds named volumes; implemented by package volume.
type Volumes interface {
	// Ensure returns the mountpoint of the named volume, creating it when
	// missing; name "" makes a new anonymous volume and returns its
	// generated name.
	Ensure(name string) (vname, path string, created bool, err error)
}

// Spec builds the OCI spec of container id from o (after ApplyImage).
// root.path is left as "rootfs"; the caller mounts the overlay there.
// It returns the mount points for inspect; o.CreatedVolumes lists the
// volumes it created. Nothing is created on disk but through vols.Ensure,
// and only after everything else was validated.
//
// Spec also completes o as Docker shows it in inspect: Config.Hostname,
// HostConfig.NetworkMode, Binds, Tmpfs, MemorySwap and the fields Options
// keeps of its own (see showHost).
//
// process.user is left as uid 0, gid 0 (plus numeric --group-add ids in
// additionalGids): the start resolves Config.User inside the mounted root
// with package passwd.
//
// Unlike Docker, noNewPrivileges is true unless --security-opt
// no-new-privileges=false: berth's default spec is hardened that way.
func Spec(id string, o *Options, vols Volumes) (*specs.Spec, []container.MountPoint, error) {
	o.CreatedVolumes = nil
	if len(id) < 12 {
		return nil, nil, fmt.Errorf("invalid container id %q", id)
	}
	s := runtime.DefaultSpec()
	c := &o.Config
	p := s.Process

	args := append(cloneStrings(c.Entrypoint), c.Cmd...)
	if len(args) == 0 {
		return nil, nil, errors.New("no command specified")
	}
	p.Args = args
	p.Terminal = o.Tty
	p.Cwd = "/"
	if c.WorkingDir != "" {
		if !path.IsAbs(c.WorkingDir) {
			return nil, nil, fmt.Errorf("the working directory %q is invalid: it needs to be an absolute path", c.WorkingDir)
		}
		p.Cwd = path.Clean(c.WorkingDir)
	}

	if err := namespaces(s, o, id); err != nil {
		return nil, nil, err
	}
	showHost(o)
	// Docker's environment: PATH, HOSTNAME, TERM, then the container's
	// (the image's and the user's), which override by key.
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + c.Hostname}
	if o.Tty {
		env = append(env, "TERM=xterm")
	}
	for _, e := range c.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return nil, nil, fmt.Errorf("invalid environment variable %q", e)
		}
		env = setEnv(env, e)
	}
	p.Env = env

	if err := security(s, o); err != nil {
		return nil, nil, err
	}
	if err := devices(s, o); err != nil {
		return nil, nil, err
	}
	namespaces19(s, o)
	if err := resources(s, o); err != nil {
		return nil, nil, err
	}
	if err := resources19(s, o); err != nil {
		return nil, nil, err
	}
	if err := sysctls(s, o); err != nil {
		return nil, nil, err
	}
	if o.OOMScoreAdj != nil {
		if *o.OOMScoreAdj < -1000 || *o.OOMScoreAdj > 1000 {
			return nil, nil, fmt.Errorf("--oom-score-adj: %d is not between -1000 and 1000", *o.OOMScoreAdj)
		}
		v := *o.OOMScoreAdj
		p.OOMScoreAdj = &v
	}
	for _, g := range o.GroupAdd {
		gid, err := parseGroupID(g)
		if err != nil {
			return nil, nil, err
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, gid)
	}
	if len(o.Annotations) > 0 {
		s.Annotations = make(map[string]string, len(o.Annotations))
		for k, v := range o.Annotations {
			if k == "" {
				return nil, nil, errors.New("--annotation: empty key")
			}
			s.Annotations[k] = v
		}
	}
	s.Root.Readonly = o.Host.ReadonlyRootfs
	cg, err := cgroupsPath(o.Host.CgroupParent, id)
	if err != nil {
		return nil, nil, err
	}
	s.Linux.CgroupsPath = cg

	plan, err := planMounts(o)
	if err != nil {
		return nil, nil, err
	}
	var extra []specs.Mount
	if o.Host.Init {
		self, err := initBinary()
		if err != nil {
			return nil, nil, err
		}
		extra = append(extra, specs.Mount{Destination: InitPath, Type: "bind", Source: self, Options: []string{"bind", "ro", "nosuid", "nodev"}})
		p.Args = append([]string{InitPath, "--"}, p.Args...)
	}
	if err := checkSdnotify(o, plan.seen); err != nil {
		return nil, nil, err
	}
	for _, m := range extra {
		if plan.seen[m.Destination] {
			return nil, nil, fmt.Errorf("duplicate mount point: %s", m.Destination)
		}
		plan.seen[m.Destination] = true
	}
	if err := shm(s, o, plan.seen); err != nil {
		return nil, nil, err
	}

	// Everything is valid: create the volumes, the only thing Spec leaves
	// on disk.
	mps, err := plan.ensure(o, vols)
	if err != nil {
		return nil, nil, err
	}
	s.Mounts = mergeMounts(s.Mounts, mps, plan, extra)
	return s, mps, nil
}

// initBinary is berth's own binary for --init, symlinks resolved.
func initBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("--init: find berth's binary: %w", err)
	}
	return resolveSymlinks(self)
}

// cgroupsPath is /berth/<id>, or <parent>/berth-<id> with --cgroup-parent.
func cgroupsPath(parent, id string) (string, error) {
	if parent == "" {
		return cgroupfs.DefaultPath(id), nil
	}
	if strings.ContainsAny(parent, ":\n\x00") {
		return "", fmt.Errorf("--cgroup-parent: invalid cgroup %q", parent)
	}
	for _, e := range strings.Split(parent, "/") {
		if e == ".." {
			return "", fmt.Errorf("--cgroup-parent: invalid cgroup %q: \"..\" is not allowed", parent)
		}
	}
	return cgroupfs.ChildPath(parent, id), nil
}

// parseGroupID accepts a numeric --group-add.
func parseGroupID(g string) (uint32, error) {
	var n uint64
	if g == "" || strings.TrimLeft(g, "0123456789") != "" {
		return 0, fmt.Errorf("--group-add %q: only numeric group ids are supported", g)
	}
	if _, err := fmt.Sscan(g, &n); err != nil || n > 1<<31-1 {
		return 0, fmt.Errorf("--group-add %q: group id out of range", g)
	}
	return uint32(n), nil
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

// namespaces applies --network, --pid, --ipc and --uts, and sets the
// hostname.
func namespaces(s *specs.Spec, o *Options, id string) error {
	c := &o.Config
	utsHost := false
	switch o.Host.NetworkMode {
	case "", "none":
		o.Host.NetworkMode = "none"
	case "host":
		dropNamespace(s, specs.NetworkNamespace)
		utsHost = true
	case "default":
		o.Host.NetworkMode = "bridge"
	default:
		// bridge, a user network or container:NAME: a network namespace
		// of its own, or the other container's, which the start joins by
		// path (package network makes it).
		if strings.ContainsAny(o.Host.NetworkMode, " \t\n/\x00") {
			return fmt.Errorf("invalid network mode %q", o.Host.NetworkMode)
		}
	}
	for _, m := range []struct {
		mode *string
		ns   specs.LinuxNamespaceType
		flag string
	}{{&o.PidMode, specs.PIDNamespace, "--pid"}, {&o.IpcMode, specs.IPCNamespace, "--ipc"}, {&o.UTSMode, specs.UTSNamespace, "--uts"}} {
		switch *m.mode {
		case "", "private":
			*m.mode = ""
		case "host":
			dropNamespace(s, m.ns)
		default:
			return fmt.Errorf("%s %q: want host or private", m.flag, *m.mode)
		}
	}
	if o.UTSMode == "host" {
		utsHost = true
	}
	if utsHost {
		// The host's UTS namespace, as Docker with --network host: the
		// host's hostname, which the container must not change.
		dropNamespace(s, specs.UTSNamespace)
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("host name: %w", err)
		}
		// The host's name is what an earlier Spec of the same options set.
		if c.Hostname != "" && c.Hostname != h {
			return errors.New("conflicting options: --hostname and --network host or --uts host")
		}
		if c.Domainname != "" {
			return errors.New("conflicting options: --domainname and --network host or --uts host")
		}
		s.Hostname = ""
		c.Hostname = h
		return nil
	}
	if c.Hostname == "" {
		c.Hostname = id[:12]
	}
	if err := validHostname(c.Hostname); err != nil {
		return fmt.Errorf("--hostname %q: %w", c.Hostname, err)
	}
	s.Hostname = c.Hostname
	if c.Domainname != "" {
		if err := validHostname(c.Domainname); err != nil {
			return fmt.Errorf("--domainname %q: %w", c.Domainname, err)
		}
		s.Domainname = c.Domainname
	}
	return nil
}

// validHostname checks a hostname: what sethostname takes (64 bytes) in
// RFC 1123's characters.
func validHostname(h string) error {
	if len(h) > 64 {
		return errors.New("longer than 64 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not a valid host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return errors.New("not a valid host name")
			}
		}
	}
	return nil
}

// sysctls applies --sysctl, refusing what would change the host.
func sysctls(s *specs.Spec, o *Options) error {
	if len(o.Sysctls) == 0 {
		return nil
	}
	has := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		has[ns.Type] = true
	}
	s.Linux.Sysctl = map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(o.Sysctls)) {
		if strings.Contains(k, "/") || strings.Contains(k, "..") {
			return fmt.Errorf("--sysctl %q: invalid name", k)
		}
		ns := nsutil.SysctlNamespace(k)
		switch {
		case ns == "":
			return fmt.Errorf("--sysctl %q: not a namespaced sysctl, so not allowed in a container", k)
		case !has[ns]:
			return fmt.Errorf("--sysctl %q: not allowed with the host's %s namespace", k, ns)
		case k == "kernel.hostname" || k == "kernel.domainname":
			return fmt.Errorf("--sysctl %q: use --hostname or --domainname", k)
		}
		s.Linux.Sysctl[k] = o.Sysctls[k]
	}
	return nil
}

// DefaultShmSize is Docker's /dev/shm size.
const DefaultShmSize = 64 << 20

// showHost copies into o.Host what inspect shows of the options Options
// keeps of its own, with Docker's defaults.
func showHost(o *Options) {
	h := &o.Host
	h.ShmSize = o.ShmSize
	if h.ShmSize == 0 {
		h.ShmSize = DefaultShmSize
	}
	h.Sysctls = o.Sysctls
	h.PidMode, h.IpcMode, h.UTSMode = o.PidMode, o.IpcMode, o.UTSMode
	if h.IpcMode == "" {
		h.IpcMode = "private"
	}
	h.GroupAdd = o.GroupAdd
	if o.OOMScoreAdj != nil {
		h.OomScoreAdj = *o.OOMScoreAdj
	}
	kill := o.OOMKillDisable
	h.OomKillDisable = &kill
	h.CpusetMems, h.BlkioWeight = o.CpusetMems, o.BlkioWeight
	if h.LogConfig.Type == "" {
		h.LogConfig = container.DefaultLogConfig()
	}
	h.Runtime = "berth"
}
