package runconfig

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/mountopt"
	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/volume"
)

// mountReq is one -v, --mount, --tmpfs or image VOLUME, parsed.
type mountReq struct {
	mp        container.MountPoint
	nocopy    bool     // volume: do not fill it from the image
	mkdir     bool     // -v bind: create the missing host directory
	tmpfsOpts []string // tmpfs: mount options (merged with the defaults)
}

// bindPropagation tells whether o is a propagation a bind mount may ask
// for: the runtime's, but as Docker not (r)unbindable.
func bindPropagation(o string) bool {
	return mountopt.IsPropagation(o) && !strings.HasSuffix(o, "unbindable")
}

// mountPlan is every user mount, validated, before any volume exists.
type mountPlan struct {
	reqs []mountReq
	seen map[string]bool // destinations, cleaned
}

// resolveSymlinks makes p absolute and resolves its symlinks.
func resolveSymlinks(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// checkDest validates a mount destination and returns it cleaned.
func checkDest(flag, v, dst string) (string, error) {
	if dst == "" {
		return "", fmt.Errorf("%s %q: no destination", flag, v)
	}
	if !path.IsAbs(dst) {
		return "", fmt.Errorf("%s %q: the destination %q is not an absolute path", flag, v, dst)
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return "", fmt.Errorf("%s %q: the destination can not be \"/\"", flag, v)
	}
	return dst, nil
}

// bindSource resolves a bind mount's source, which must exist for
// --mount. For -v (mayCreate) a missing source is a directory Spec
// creates, as Docker does; missing reports that.
func bindSource(flag, v, src string, mayCreate bool) (abs string, missing bool, err error) {
	abs, err = filepath.Abs(src)
	if err != nil {
		return "", false, fmt.Errorf("%s %q: %w", flag, v, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if mayCreate && os.IsNotExist(err) {
			return abs, true, nil
		}
		return "", false, fmt.Errorf("bind source path does not exist: %s", abs)
	}
	return abs, false, nil
}

// planMounts parses and checks -v, --mount, --tmpfs and the image's
// VOLUMEs. It creates nothing.
func planMounts(o *Options) (*mountPlan, error) {
	pl := &mountPlan{seen: map[string]bool{}}
	add := func(r mountReq) error {
		if pl.seen[r.mp.Destination] {
			return fmt.Errorf("duplicate mount point: %s", r.mp.Destination)
		}
		pl.seen[r.mp.Destination] = true
		pl.reqs = append(pl.reqs, r)
		return nil
	}
	var binds []string
	for _, v := range o.Volumes {
		r, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		if r.mp.Type == "bind" || r.mp.Name != "" {
			binds = append(binds, v)
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, v := range o.Mounts {
		r, err := parseMount(v)
		if err != nil {
			return nil, err
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(o.Host.Tmpfs)) {
		r, err := tmpfsReq(dst, o.Host.Tmpfs[dst])
		if err != nil {
			return nil, err
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, v := range o.InheritedVolumes {
		r, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("--volumes-from: %w", err)
		}
		if !pl.seen[r.mp.Destination] {
			r.nocopy = true
			if err := add(r); err != nil {
				return nil, err
			}
		}
	}
	// The image's VOLUMEs (and -v /path, which Docker also lists in
	// Config.Volumes) that no mount covers become anonymous volumes.
	for _, v := range slices.Sorted(maps.Keys(o.Config.Volumes)) {
		dst, err := checkDest("VOLUME", v, v)
		if err != nil {
			return nil, err
		}
		if !pl.seen[dst] {
			if err := add(mountReq{mp: container.MountPoint{Type: "volume", Destination: dst, RW: true, Anonymous: true}}); err != nil {
				return nil, err
			}
		}
	}
	o.Host.Binds = binds
	return pl, nil
}

// ensure creates or finds the plan's volumes and returns the mount points
// in mount order (parents first).
func (pl *mountPlan) ensure(o *Options, vols Volumes) ([]container.MountPoint, error) {
	sort.SliceStable(pl.reqs, func(i, j int) bool {
		return depth(pl.reqs[i].mp.Destination) < depth(pl.reqs[j].mp.Destination)
	})
	mps := make([]container.MountPoint, 0, len(pl.reqs))
	for i := range pl.reqs {
		r := &pl.reqs[i]
		if r.mkdir {
			// Docker's -v makes a missing host directory (root's, 0755)
			// and leaves it there.
			if err := os.MkdirAll(r.mp.Source, 0o755); err != nil {
				return nil, fmt.Errorf("create bind source %s: %w", r.mp.Source, err)
			}
		}
		if r.mp.Type == "volume" {
			if vols == nil {
				return nil, fmt.Errorf("volume for %s: no volume store", r.mp.Destination)
			}
			name, p, created, err := vols.Ensure(r.mp.Name)
			if err != nil {
				if r.mp.Name == "" {
					return nil, fmt.Errorf("anonymous volume for %s: %w", r.mp.Destination, err)
				}
				return nil, fmt.Errorf("volume %s: %w", r.mp.Name, err)
			}
			if created {
				o.CreatedVolumes = append(o.CreatedVolumes, name)
			}
			if r.mp.Name == "" {
				r.mp.Anonymous = true
			}
			r.mp.Name, r.mp.Source = name, p
			r.mp.Fill = created && !r.nocopy
		}
		mps = append(mps, r.mp)
	}
	return mps, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// mergeMounts is the spec's mounts: the defaults that no user mount
// replaces (a mount on /dev replaces everything under it, as Docker),
// then the user's mounts and berth's own (--init, --sdnotify), parents
// first.
func mergeMounts(defaults []specs.Mount, mps []container.MountPoint, pl *mountPlan, extra []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range defaults {
		if pl.seen[m.Destination] || pl.seen["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		out = append(out, m)
	}
	var user []specs.Mount
	for i, mp := range mps {
		user = append(user, specMount(mp, pl.reqs[i]))
	}
	user = append(user, extra...)
	sort.SliceStable(user, func(i, j int) bool { return depth(user[i].Destination) < depth(user[j].Destination) })
	return append(out, user...)
}

func specMount(mp container.MountPoint, r mountReq) specs.Mount {
	if mp.Type == "tmpfs" {
		return specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: r.tmpfsOpts}
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

// parseVolume parses -v: NAME:DST[:OPTS] (named volume),
// /HOST/PATH:DST[:OPTS] (bind; ./relative too) or DST (anonymous volume).
func parseVolume(v string) (mountReq, error) {
	const flag = "-v"
	r := mountReq{mp: container.MountPoint{RW: true}}
	parts := strings.Split(v, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return r, fmt.Errorf("%s %q: want [SOURCE:]DESTINATION[:OPTIONS]", flag, v)
	}
	d, err := checkDest(flag, v, dst)
	if err != nil {
		return r, err
	}
	r.mp.Destination, r.mp.Mode = d, mode
	if len(parts) == 3 && mode == "" {
		return r, fmt.Errorf("%s %q: empty options", flag, v)
	}
	if mode != "" {
		for _, opt := range strings.Split(mode, ",") {
			switch {
			case opt == "ro":
				r.mp.RW = false
			case opt == "rw":
				r.mp.RW = true
			case bindPropagation(opt):
				r.mp.Propagation = opt
			case opt == "nocopy":
				r.nocopy = true
			case opt == "z" || opt == "Z":
				// SELinux relabelling: berth has no SELinux support and
				// leaves labels alone, as Docker on a host without SELinux.
			default:
				return r, fmt.Errorf("%s %q: unknown option %q", flag, v, opt)
			}
		}
	}
	switch {
	case len(parts) == 1:
		r.mp.Type, r.mp.Anonymous = "volume", true
	case src == "":
		return r, fmt.Errorf("%s %q: empty source", flag, v)
	case strings.HasPrefix(src, "/") || strings.HasPrefix(src, "."):
		if r.nocopy {
			return r, fmt.Errorf("%s %q: nocopy is for volumes, not bind mounts", flag, v)
		}
		abs, missing, err := bindSource(flag, v, src, true)
		if err != nil {
			return r, err
		}
		r.mp.Type, r.mp.Source, r.mkdir = "bind", abs, missing
		if r.mp.Propagation == "" {
			r.mp.Propagation = "rprivate"
		}
	default:
		if err := volume.ValidateName(src); err != nil {
			return r, fmt.Errorf("%s %q: %v (for a host directory, use an absolute path)", flag, v, err)
		}
		if r.mp.Propagation != "" {
			return r, fmt.Errorf("%s %q: propagation is for bind mounts, not volumes", flag, v)
		}
		r.mp.Type, r.mp.Name = "volume", src
	}
	return r, nil
}

// parseBool is a --mount boolean: absent value, true/1 or false/0.
func parseBool(val string, hasVal bool) (bool, bool) {
	if !hasVal {
		return true, true
	}
	switch strings.ToLower(val) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// parseMount parses --mount type=bind|volume|tmpfs,source=,destination=,...
func parseMount(v string) (mountReq, error) {
	const flag = "--mount"
	r := mountReq{mp: container.MountPoint{RW: true, Type: "volume"}}
	var src, dst string
	var tmpfsOpts []string
	var sawBindOpt, sawVolumeOpt, sawTmpfsOpt string
	for _, kv := range strings.Split(v, ",") {
		k, val, hasVal := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		needVal := func() error {
			if !hasVal || val == "" {
				return fmt.Errorf("%s %q: %s needs a value", flag, v, k)
			}
			return nil
		}
		switch k {
		case "type":
			if val != "bind" && val != "volume" && val != "tmpfs" {
				return r, fmt.Errorf("%s %q: type %q is not bind, volume or tmpfs", flag, v, val)
			}
			r.mp.Type = val
		case "source", "src":
			if err := needVal(); err != nil {
				return r, err
			}
			src = val
		case "destination", "dst", "target":
			if err := needVal(); err != nil {
				return r, err
			}
			dst = val
		case "readonly", "ro":
			b, ok := parseBool(val, hasVal)
			if !ok {
				return r, fmt.Errorf("%s %q: invalid value for %s: %q", flag, v, k, val)
			}
			r.mp.RW = !b
		case "bind-propagation":
			if !bindPropagation(val) {
				return r, fmt.Errorf("%s %q: invalid bind-propagation %q", flag, v, val)
			}
			r.mp.Propagation, sawBindOpt = val, k
		case "volume-nocopy":
			b, ok := parseBool(val, hasVal)
			if !ok {
				return r, fmt.Errorf("%s %q: invalid value for %s: %q", flag, v, k, val)
			}
			r.nocopy, sawVolumeOpt = b, k
		case "tmpfs-size":
			n, err := units.ParseSize(val)
			if err != nil || n <= 0 {
				return r, fmt.Errorf("%s %q: invalid tmpfs-size %q", flag, v, val)
			}
			tmpfsOpts, sawTmpfsOpt = append(tmpfsOpts, "size="+strconv.FormatInt(n, 10)), k
		case "tmpfs-mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > 0o7777 {
				return r, fmt.Errorf("%s %q: invalid tmpfs-mode %q", flag, v, val)
			}
			tmpfsOpts, sawTmpfsOpt = append(tmpfsOpts, "mode="+strconv.FormatUint(m, 8)), k
		case "consistency":
			// macOS only; Docker ignores it on Linux.
		default:
			return r, fmt.Errorf("%s %q: unknown option %q", flag, v, k)
		}
	}
	d, err := checkDest(flag, v, dst)
	if err != nil {
		return r, err
	}
	r.mp.Destination = d
	wrong := func(opt string) error {
		return fmt.Errorf("%s %q: %s is not valid for type=%s", flag, v, opt, r.mp.Type)
	}
	switch r.mp.Type {
	case "bind":
		if sawVolumeOpt != "" {
			return r, wrong(sawVolumeOpt)
		}
		if sawTmpfsOpt != "" {
			return r, wrong(sawTmpfsOpt)
		}
		if src == "" {
			return r, fmt.Errorf("%s %q: a bind mount needs a source", flag, v)
		}
		abs, _, err := bindSource(flag, v, src, false)
		if err != nil {
			return r, err
		}
		r.mp.Source = abs
		if r.mp.Propagation == "" {
			r.mp.Propagation = "rprivate"
		}
	case "volume":
		if sawBindOpt != "" {
			return r, wrong(sawBindOpt)
		}
		if sawTmpfsOpt != "" {
			return r, wrong(sawTmpfsOpt)
		}
		if src != "" {
			if err := volume.ValidateName(src); err != nil {
				return r, fmt.Errorf("%s %q: %v", flag, v, err)
			}
		} else {
			r.mp.Anonymous = true
		}
		r.mp.Name = src
	case "tmpfs":
		if sawBindOpt != "" {
			return r, wrong(sawBindOpt)
		}
		if sawVolumeOpt != "" {
			return r, wrong(sawVolumeOpt)
		}
		if src != "" {
			return r, fmt.Errorf("%s %q: a tmpfs takes no source", flag, v)
		}
		if !r.mp.RW {
			tmpfsOpts = append(tmpfsOpts, "ro")
		}
		r.tmpfsOpts = mergeTmpfsOptions(append([]string{"noexec", "nosuid", "nodev"}, tmpfsOpts...))
		r.mp.Mode = strings.Join(tmpfsOpts, ",")
	}
	return r, nil
}

// tmpfsFlags are the mount flags a tmpfs option may be, by group: of two
// options of one group, the later wins.
var tmpfsFlags = map[string]string{
	"ro": "ro", "rw": "ro",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"exec": "exec", "noexec": "exec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"atime":   "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
}

// tmpfsData are the tmpfs options that take a value, as Docker allows.
var tmpfsData = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true}

// tmpfsReq parses --tmpfs DST[:OPTIONS] (what Host.Tmpfs holds).
func tmpfsReq(dst, opts string) (mountReq, error) {
	const flag = "--tmpfs"
	v := dst
	if opts != "" {
		v += ":" + opts
	}
	r := mountReq{mp: container.MountPoint{Type: "tmpfs", RW: true, Mode: opts}}
	d, err := checkDest(flag, v, dst)
	if err != nil {
		return r, err
	}
	r.mp.Destination = d
	list := []string{"noexec", "nosuid", "nodev"}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			if err := checkTmpfsOption(o); err != nil {
				return r, fmt.Errorf("%s %q: %v", flag, v, err)
			}
			list = append(list, o)
			if o == "ro" {
				r.mp.RW = false
			} else if o == "rw" {
				r.mp.RW = true
			}
		}
	}
	r.tmpfsOpts = mergeTmpfsOptions(list)
	return r, nil
}

func checkTmpfsOption(o string) error {
	if _, ok := tmpfsFlags[o]; ok {
		return nil
	}
	k, val, ok := strings.Cut(o, "=")
	if !ok || !tmpfsData[k] {
		return fmt.Errorf("invalid tmpfs option %q", o)
	}
	bad := fmt.Errorf("invalid tmpfs option %q", o)
	switch k {
	case "size":
		t := strings.TrimRight(val, "kKmMgG%")
		if len(val)-len(t) > 1 || t == "" || strings.TrimLeft(t, "0123456789") != "" {
			return bad
		}
	case "mode":
		if m, err := strconv.ParseUint(val, 8, 32); err != nil || m > 0o7777 {
			return bad
		}
	case "uid", "gid", "nr_inodes", "nr_blocks":
		t := strings.TrimRight(val, "kKmMgG")
		if t == "" || strings.TrimLeft(t, "0123456789") != "" {
			return bad
		}
	default:
		if val == "" {
			return bad
		}
	}
	return nil
}

// mergeTmpfsOptions keeps the last option of each flag group and each
// data key, in the order of their last appearance.
func mergeTmpfsOptions(opts []string) []string {
	last := map[string]int{}
	key := func(o string) string {
		if g, ok := tmpfsFlags[o]; ok {
			return "flag:" + g
		}
		k, _, _ := strings.Cut(o, "=")
		return "data:" + k
	}
	for i, o := range opts {
		last[key(o)] = i
	}
	var out []string
	for i, o := range opts {
		if last[key(o)] == i {
			out = append(out, o)
		}
	}
	return out
}

// shm sizes /dev/shm (--shm-size, default 64 MiB as Docker) and, with
// --ipc host, gives the host's /dev/shm instead.
func shm(s *specs.Spec, o *Options, userMounts map[string]bool) error {
	if o.ShmSize < 0 {
		return fmt.Errorf("--shm-size: %d is negative", o.ShmSize)
	}
	if userMounts["/dev/shm"] || userMounts["/dev"] {
		return nil
	}
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if m.Destination != "/dev/shm" {
			continue
		}
		if o.IpcMode == "host" {
			*m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev", "rprivate"}}
			return nil
		}
		if o.ShmSize > 0 {
			var opts []string
			for _, opt := range m.Options {
				if !strings.HasPrefix(opt, "size=") {
					opts = append(opts, opt)
				}
			}
			m.Options = append(opts, "size="+strconv.FormatInt(o.ShmSize, 10))
		}
	}
	return nil
}
