package runconfig

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
)

func listenUnix(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "n.sock")
	l, err := net.Listen("unixgram", p)
	if err != nil {
		pc, err := net.ListenPacket("unixgram", p)
		if err != nil {
			t.Skip("unix socket:", err)
		}
		t.Cleanup(func() { pc.Close() })
		return p
	}
	t.Cleanup(func() { l.Close() })
	return p
}

func TestSpecMounts(t *testing.T) {
	host := t.TempDir()
	file := writeFile(t, "f.conf", "x")
	o := opts("sh")
	o.Volumes = []string{
		"data:/data",                   // named, new
		"cache:/var/cache:ro,nocopy",   // named, exists, read-only
		host + ":/mnt/host:ro,rshared", // bind
		file + ":/etc/app.conf",        // bind of a file
		"/anon",                        // anonymous
		"logs:/data/logs:z",            // under /data: mounted after it
	}
	o.Mounts = []string{
		"type=bind,source=" + host + ",target=/srv,readonly,bind-propagation=rslave",
		"type=volume,src=vol2,dst=/vol2,volume-nocopy",
		"type=volume,dst=/anon2",
		"type=tmpfs,destination=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
	}
	o.Host.Tmpfs = map[string]string{"/run": "", "/tmp": "rw,exec,size=64m"}
	o.Config.Volumes = map[string]struct{}{"/data": {}, "/image/vol": {}, "/anon": {}}
	vols := &fakeVols{existing: map[string]bool{"cache": true}}
	s, mps, err := Spec(testID, o, vols)
	if err != nil {
		t.Fatal(err)
	}

	byDst := map[string]container.MountPoint{}
	for _, mp := range mps {
		byDst[mp.Destination] = mp
	}
	want := map[string]container.MountPoint{
		"/data":         {Type: "volume", Name: "data", Source: "/var/lib/berth/volumes/data/_data", Destination: "/data", RW: true, Fill: true},
		"/var/cache":    {Type: "volume", Name: "cache", Source: "/var/lib/berth/volumes/cache/_data", Destination: "/var/cache", Mode: "ro,nocopy"},
		"/mnt/host":     {Type: "bind", Source: host, Destination: "/mnt/host", Mode: "ro,rshared", Propagation: "rshared"},
		"/etc/app.conf": {Type: "bind", Source: file, Destination: "/etc/app.conf", RW: true, Propagation: "rprivate"},
		"/data/logs":    {Type: "volume", Name: "logs", Source: "/var/lib/berth/volumes/logs/_data", Destination: "/data/logs", Mode: "z", RW: true, Fill: true},
		"/srv":          {Type: "bind", Source: host, Destination: "/srv", Propagation: "rslave"},
		"/vol2":         {Type: "volume", Name: "vol2", Source: "/var/lib/berth/volumes/vol2/_data", Destination: "/vol2", RW: true},
		"/scratch":      {Type: "tmpfs", Destination: "/scratch", RW: true, Mode: "size=1048576,mode=1770"},
		"/run":          {Type: "tmpfs", Destination: "/run", RW: true},
		"/tmp":          {Type: "tmpfs", Destination: "/tmp", RW: true, Mode: "rw,exec,size=64m"},
	}
	for dst, w := range want {
		if got := byDst[dst]; !reflect.DeepEqual(got, w) {
			t.Errorf("mount %s:\n got %+v\nwant %+v", dst, got, w)
		}
	}
	// Anonymous volumes: -v /anon (also in Config.Volumes: one volume),
	// --mount without source, the image's /image/vol; /data is covered.
	for _, dst := range []string{"/anon", "/anon2", "/image/vol"} {
		mp := byDst[dst]
		if mp.Type != "volume" || !mp.Anonymous || !mp.Fill || mp.Name == "" || mp.Source == "" || !mp.RW {
			t.Errorf("anonymous %s: %+v", dst, mp)
		}
	}
	if len(mps) != len(want)+3 {
		t.Errorf("%d mount points, want %d: %+v", len(mps), len(want)+3, mps)
	}
	anon := 0
	for _, c := range vols.calls {
		if c == "" {
			anon++
		}
	}
	if anon != 3 {
		t.Errorf("%d anonymous volumes made, want 3 (calls %q)", anon, vols.calls)
	}
	// Created: data, logs, vol2 and the three anonymous ones; not cache.
	created := slices.Sorted(slices.Values(o.CreatedVolumes))
	if want := []string{"anon1", "anon2", "anon3", "data", "logs", "vol2"}; !reflect.DeepEqual(created, want) {
		t.Errorf("created volumes %q, want %q", created, want)
	}
	// Binds: the -v values with a source, as Docker.
	if want := o.Volumes[:4]; !reflect.DeepEqual(o.Host.Binds[:4], want) || len(o.Host.Binds) != 5 || o.Host.Binds[4] != "logs:/data/logs:z" {
		t.Errorf("binds %q", o.Host.Binds)
	}

	// The spec's mounts.
	specWant := map[string]specs.Mount{
		"/data":         {Destination: "/data", Type: "bind", Source: "/var/lib/berth/volumes/data/_data", Options: []string{"rbind", "rprivate"}},
		"/var/cache":    {Destination: "/var/cache", Type: "bind", Source: "/var/lib/berth/volumes/cache/_data", Options: []string{"rbind", "ro", "rprivate"}},
		"/mnt/host":     {Destination: "/mnt/host", Type: "bind", Source: host, Options: []string{"rbind", "ro", "rshared"}},
		"/srv":          {Destination: "/srv", Type: "bind", Source: host, Options: []string{"rbind", "ro", "rslave"}},
		"/scratch":      {Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "size=1048576", "mode=1770"}},
		"/run":          {Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev"}},
		"/tmp":          {Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rw", "exec", "size=64m"}},
		"/etc/app.conf": {Destination: "/etc/app.conf", Type: "bind", Source: file, Options: []string{"rbind", "rprivate"}},
	}
	for dst, w := range specWant {
		if m := findMount(s, dst); m == nil || !reflect.DeepEqual(*m, w) {
			t.Errorf("spec mount %s:\n got %+v\nwant %+v", dst, m, w)
		}
	}
	// Parents first; the defaults (/proc, /dev...) before the user's.
	idx := func(dst string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dst })
	}
	if idx("/data") > idx("/data/logs") || idx("/proc") > idx("/data") || idx("/dev/shm") > idx("/run") {
		t.Errorf("mount order: %v", dests(s))
	}
	for i := 1; i < len(s.Mounts); i++ {
		if i > idx("/sys/fs/cgroup")+1 && depth(s.Mounts[i].Destination) < depth(s.Mounts[i-1].Destination) {
			t.Errorf("user mounts not sorted by depth: %v", dests(s))
			break
		}
	}
}

func dests(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

// A user mount replaces the default mount of the same destination, and a
// mount on /dev all of the defaults under it.
func TestSpecMountsReplaceDefaults(t *testing.T) {
	o := opts("sh")
	o.Host.Tmpfs = map[string]string{"/dev/shm": "size=1g"}
	o.ShmSize = 1 << 20
	s := specOf(t, o)
	m := findMount(s, "/dev/shm")
	if m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=1g") || m.Source != "tmpfs" {
		t.Errorf("/dev/shm %+v, want the user's tmpfs", m)
	}
	o = opts("sh")
	o.Volumes = []string{"devvol:/dev"}
	s = specOf(t, o)
	for _, d := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue"} {
		if findMount(s, d) != nil {
			t.Errorf("default %s kept under a user /dev", d)
		}
	}
	if m := findMount(s, "/dev"); m == nil || m.Type != "bind" {
		t.Errorf("/dev %+v", m)
	}
	if findMount(s, "/proc") == nil || findMount(s, "/sys") == nil {
		t.Error("defaults outside /dev were dropped")
	}
}

func TestShmSize(t *testing.T) {
	s := specOf(t, opts("sh"))
	if m := findMount(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=65536k") {
		t.Errorf("default /dev/shm %+v, want 64m", m)
	}
	o := opts("sh")
	o.ShmSize = 128 << 20
	s = specOf(t, o)
	m := findMount(s, "/dev/shm")
	sizes := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return len(o) < 5 || o[:5] != "size=" })
	if !reflect.DeepEqual(sizes, []string{"size=134217728"}) || !slices.Contains(m.Options, "mode=1777") {
		t.Errorf("--shm-size 128m: %v", m.Options)
	}
	// The default spec is not changed by Spec.
	if m := findMount(specOf(t, opts("sh")), "/dev/shm"); !slices.Contains(m.Options, "size=65536k") {
		t.Errorf("default /dev/shm changed: %v", m.Options)
	}
}

func TestSpecMountErrors(t *testing.T) {
	host := t.TempDir()
	missing := filepath.Join(host, "missing")
	tests := []badSpec{
		{"-v relative dst", func(o *Options) { o.Volumes = []string{"data:rel"} }, `-v "data:rel": the destination "rel" is not an absolute path`},
		{"-v /", func(o *Options) { o.Volumes = []string{"data:/"} }, `the destination can not be "/"`},
		{"-v /.", func(o *Options) { o.Volumes = []string{"data:/."} }, `the destination can not be "/"`},
		{"-v too many", func(o *Options) { o.Volumes = []string{"a:/b:ro:x"} }, "want [SOURCE:]DESTINATION[:OPTIONS]"},
		{"-v empty source", func(o *Options) { o.Volumes = []string{":/x"} }, "empty source"},
		{"-v empty options", func(o *Options) { o.Volumes = []string{"a:/x:"} }, "empty options"},
		{"-v bad option", func(o *Options) { o.Volumes = []string{"a:/x:rx"} }, `unknown option "rx"`},
		{"-v nocopy bind", func(o *Options) { o.Volumes = []string{host + ":/x:nocopy"} }, "nocopy is for volumes"},
		{"-v bad name", func(o *Options) { o.Volumes = []string{"my/vol:/x"} }, "invalid volume name"},
		{"-v propagation on volume", func(o *Options) { o.Volumes = []string{"vol:/x:rshared"} }, "propagation is for bind mounts"},
		{"-v duplicate", func(o *Options) { o.Volumes = []string{"a:/x", "b:/x/"} }, "duplicate mount point: /x"},
		{"-v and --mount", func(o *Options) {
			o.Volumes = []string{"a:/x"}
			o.Mounts = []string{"type=volume,dst=/x"}
		}, "duplicate mount point: /x"},
		{"-v and --tmpfs", func(o *Options) {
			o.Volumes = []string{"a:/x"}
			o.Host.Tmpfs = map[string]string{"/x": ""}
		}, "duplicate mount point: /x"},
		{"--mount type", func(o *Options) { o.Mounts = []string{"type=npipe,dst=/x"} }, `type "npipe" is not bind, volume or tmpfs`},
		{"--mount no dst", func(o *Options) { o.Mounts = []string{"type=volume,src=a"} }, "no destination"},
		{"--mount empty dst", func(o *Options) { o.Mounts = []string{"type=volume,dst="} }, "dst needs a value"},
		{"--mount unknown", func(o *Options) { o.Mounts = []string{"type=volume,dst=/x,foo=bar"} }, `unknown option "foo"`},
		{"--mount readonly", func(o *Options) { o.Mounts = []string{"type=volume,dst=/x,readonly=maybe"} }, "invalid value for readonly"},
		{"--mount bind no src", func(o *Options) { o.Mounts = []string{"type=bind,dst=/x"} }, "a bind mount needs a source"},
		{"--mount bind missing", func(o *Options) { o.Mounts = []string{"type=bind,src=" + missing + ",dst=/x"} }, "bind source path does not exist"},
		{"--mount propagation", func(o *Options) { o.Mounts = []string{"type=bind,src=/,dst=/x,bind-propagation=up"} }, `invalid bind-propagation "up"`},
		{"--mount propagation on volume", func(o *Options) { o.Mounts = []string{"type=volume,dst=/x,bind-propagation=shared"} }, "bind-propagation is not valid for type=volume"},
		{"--mount nocopy on bind", func(o *Options) { o.Mounts = []string{"type=bind,src=/,dst=/x,volume-nocopy"} }, "volume-nocopy is not valid for type=bind"},
		{"--mount tmpfs-size on volume", func(o *Options) { o.Mounts = []string{"type=volume,dst=/x,tmpfs-size=1m"} }, "tmpfs-size is not valid for type=volume"},
		{"--mount tmpfs source", func(o *Options) { o.Mounts = []string{"type=tmpfs,src=x,dst=/x"} }, "a tmpfs takes no source"},
		{"--mount tmpfs size", func(o *Options) { o.Mounts = []string{"type=tmpfs,dst=/x,tmpfs-size=lots"} }, `invalid tmpfs-size "lots"`},
		{"--mount tmpfs mode", func(o *Options) { o.Mounts = []string{"type=tmpfs,dst=/x,tmpfs-mode=999"} }, `invalid tmpfs-mode "999"`},
		{"--mount volume name", func(o *Options) { o.Mounts = []string{"type=volume,src=../x,dst=/x"} }, "invalid volume name"},
		{"--tmpfs relative", func(o *Options) { o.Host.Tmpfs = map[string]string{"run": ""} }, `--tmpfs "run": the destination "run" is not an absolute path`},
		{"--tmpfs option", func(o *Options) { o.Host.Tmpfs = map[string]string{"/run": "size=1m,bogus"} }, `invalid tmpfs option "bogus"`},
		{"--tmpfs data key", func(o *Options) { o.Host.Tmpfs = map[string]string{"/run": "foo=1"} }, `invalid tmpfs option "foo=1"`},
		{"--tmpfs size", func(o *Options) { o.Host.Tmpfs = map[string]string{"/run": "size=big"} }, `invalid tmpfs option "size=big"`},
		{"--tmpfs mode", func(o *Options) { o.Host.Tmpfs = map[string]string{"/run": "mode=rwx"} }, `invalid tmpfs option "mode=rwx"`},
		{"image volume relative", func(o *Options) { o.Config.Volumes = map[string]struct{}{"data": {}} }, `VOLUME "data"`},
	}
	specRefuses(t, tests)
}

// Nothing is made before everything is valid, and what was made before a
// failing Ensure is reported.
func TestSpecVolumesMadeLast(t *testing.T) {
	o := opts("sh")
	o.Volumes = []string{"a:/a", "b:/b"}
	o.Host.Memory = 1 // invalid, checked after the mounts were parsed
	vols := &fakeVols{}
	if _, _, err := Spec(testID, o, vols); err == nil || len(vols.calls) != 0 {
		t.Errorf("err %v, calls %q: want an error and no volume", err, vols.calls)
	}
	o = opts("sh")
	o.Volumes = []string{"a:/a", "b:/b/c", "c:/c/d/e"}
	vols = &fakeVols{failOn: "c"}
	_, _, err := Spec(testID, o, vols)
	wantErr(t, "failing Ensure", err, "volume c: disk full")
	if !reflect.DeepEqual(o.CreatedVolumes, []string{"a", "b"}) {
		t.Errorf("created %q, want a and b", o.CreatedVolumes)
	}
	o = opts("sh")
	o.Volumes = []string{"/anon"}
	_, _, err = Spec(testID, o, &fakeVols{failOn: "<anon>"})
	wantErr(t, "failing anonymous Ensure", err, "anonymous volume for /anon: disk full")
}

func TestRelativeBindSource(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	o := opts("sh")
	o.Volumes = []string{"./sub:/x"}
	_, mps, err := Spec(testID, o, &fakeVols{})
	if err != nil {
		t.Fatal(err)
	}
	if mps[0].Source != filepath.Join(dir, "sub") || mps[0].Type != "bind" {
		t.Errorf("relative bind: %+v", mps[0])
	}
}

func TestMergeTmpfsOptions(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"noexec", "nosuid", "nodev"}, []string{"noexec", "nosuid", "nodev"}},
		{[]string{"noexec", "nosuid", "nodev", "exec"}, []string{"nosuid", "nodev", "exec"}},
		{[]string{"noexec", "size=1m", "size=2m", "ro", "rw"}, []string{"noexec", "size=2m", "rw"}},
		{[]string{"mode=700", "uid=1", "mode=755"}, []string{"uid=1", "mode=755"}},
	}
	for _, tt := range tests {
		if got := mergeTmpfsOptions(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("mergeTmpfsOptions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
