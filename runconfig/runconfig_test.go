package runconfig

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
)

func TestApplyImage(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"img-cmd", "arg"},
		Env:        []string{"PATH=/img/bin", "A=image", "B=image"},
		WorkingDir: "/srv", User: "app", StopSignal: "SIGQUIT",
		Labels:  map[string]string{"x": "image", "y": "image"},
		Volumes: map[string]struct{}{"/data": {}, "/logs": {}},
	}
	tests := []struct {
		name           string
		user           container.Config
		img            ocispec.ImageConfig
		wantEntrypoint []string
		wantCmd        []string
	}{
		{"image's entrypoint and cmd", container.Config{}, img, []string{"/entry"}, []string{"img-cmd", "arg"}},
		{"user cmd replaces image cmd", container.Config{Cmd: []string{"ls"}}, img, []string{"/entry"}, []string{"ls"}},
		{"--entrypoint drops image cmd", container.Config{Entrypoint: []string{"/bin/sh"}}, img, []string{"/bin/sh"}, nil},
		{"--entrypoint with cmd", container.Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "x"}}, img, []string{"/bin/sh"}, []string{"-c", "x"}},
		{"--entrypoint \"\" clears both", container.Config{Entrypoint: []string{}}, img, []string{}, nil},
		{"--entrypoint \"\" with cmd", container.Config{Entrypoint: []string{}, Cmd: []string{"ls"}}, img, []string{}, []string{"ls"}},
		{"image without entrypoint", container.Config{}, ocispec.ImageConfig{Cmd: []string{"sh"}}, nil, []string{"sh"}},
	}
	for _, tt := range tests {
		o := &Options{Config: tt.user}
		ApplyImage(o, tt.img)
		if !reflect.DeepEqual(o.Config.Entrypoint, tt.wantEntrypoint) || !reflect.DeepEqual(o.Config.Cmd, tt.wantCmd) {
			t.Errorf("%s: entrypoint %q cmd %q, want %q %q", tt.name, o.Config.Entrypoint, o.Config.Cmd, tt.wantEntrypoint, tt.wantCmd)
		}
	}

	// Env, labels, volumes, workdir, user, stop signal.
	o := &Options{Config: container.Config{
		Env:    []string{"B=user", "C=user"},
		Labels: map[string]string{"y": "user", "z": "user"},
	}}
	ApplyImage(o, img)
	c := o.Config
	if want := []string{"PATH=/img/bin", "A=image", "B=user", "C=user"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if want := map[string]string{"x": "image", "y": "user", "z": "user"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v, want %v", c.Labels, want)
	}
	if want := map[string]struct{}{"/data": {}, "/logs": {}}; !reflect.DeepEqual(c.Volumes, want) {
		t.Errorf("volumes %v, want %v", c.Volumes, want)
	}
	if c.WorkingDir != "/srv" || c.User != "app" || c.StopSignal != "SIGQUIT" {
		t.Errorf("workdir %q user %q stop signal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	// The image's slices are not shared with the config.
	c.Env[0] = "CHANGED=1"
	if img.Env[0] != "PATH=/img/bin" {
		t.Error("ApplyImage aliases the image's env")
	}

	// The user's values win.
	o = &Options{Config: container.Config{WorkingDir: "/w", User: "0:0", StopSignal: "SIGINT"}}
	ApplyImage(o, img)
	if o.Config.WorkingDir != "/w" || o.Config.User != "0:0" || o.Config.StopSignal != "SIGINT" {
		t.Errorf("user values lost: %+v", o.Config)
	}
	// No image labels: the user's map stays as is (nil too).
	o = &Options{}
	ApplyImage(o, ocispec.ImageConfig{Cmd: []string{"sh"}})
	if o.Config.Labels != nil || o.Config.Volumes != nil {
		t.Errorf("labels %v volumes %v, want nil", o.Config.Labels, o.Config.Volumes)
	}
}

func TestSpecProcess(t *testing.T) {
	o := opts("echo", "hi")
	o.Config.Entrypoint = []string{"/entry"}
	o.Config.Env = []string{"A=1", "HOSTNAME=mine"}
	o.Config.WorkingDir = "/srv/./app/"
	s := specOf(t, o)
	p := s.Process
	if want := []string{"/entry", "echo", "hi"}; !reflect.DeepEqual(p.Args, want) {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	if p.Cwd != "/srv/app" || p.Terminal {
		t.Errorf("cwd %q terminal %v", p.Cwd, p.Terminal)
	}
	if want := []string{"PATH=" + DefaultPath, "HOSTNAME=mine", "A=1"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if p.User.UID != 0 || p.User.GID != 0 || len(p.User.AdditionalGids) != 0 || p.User.Username != "" {
		t.Errorf("user %+v, want uid 0 gid 0 and nothing else", p.User)
	}
	if s.Hostname != testID[:12] || o.Config.Hostname != testID[:12] {
		t.Errorf("hostname %q, config %q, want %q", s.Hostname, o.Config.Hostname, testID[:12])
	}
	if !p.NoNewPrivileges {
		t.Error("noNewPrivileges should be berth's default true")
	}
	if s.Linux.CgroupsPath != "/berth/"+testID {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	if s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	if o.Host.NetworkMode != "none" || !hasNS(s, specs.NetworkNamespace) || !hasNS(s, specs.UTSNamespace) {
		t.Errorf("network mode %q, namespaces %v", o.Host.NetworkMode, s.Linux.Namespaces)
	}
	if v, _ := env(s, "TERM"); v != "" {
		t.Errorf("TERM=%q without -t", v)
	}

	// -t, an image PATH, -h, --read-only, --cgroup-parent, annotations.
	o = opts("sh")
	o.Tty = true
	o.Config.Env = []string{"PATH=/img"}
	o.Config.Hostname = "web"
	o.Config.Domainname = "example.com"
	o.Host.ReadonlyRootfs = true
	o.Host.CgroupParent = "mygroup/sub"
	o.Annotations = map[string]string{"org.example": "1"}
	s = specOf(t, o)
	if want := []string{"PATH=/img", "HOSTNAME=web", "TERM=xterm"}; !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env %q, want %q", s.Process.Env, want)
	}
	if !s.Process.Terminal || s.Hostname != "web" || s.Domainname != "example.com" || !s.Root.Readonly {
		t.Errorf("terminal %v hostname %q domain %q readonly %v", s.Process.Terminal, s.Hostname, s.Domainname, s.Root.Readonly)
	}
	if s.Linux.CgroupsPath != "/mygroup/sub/berth-"+testID {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	if s.Annotations["org.example"] != "1" {
		t.Errorf("annotations %v", s.Annotations)
	}
	// A user TERM wins over -t's.
	o = opts("sh")
	o.Tty = true
	o.Config.Env = []string{"TERM=vt100"}
	if v, _ := env(specOf(t, o), "TERM"); v != "vt100" {
		t.Errorf("TERM=%q, want the user's vt100", v)
	}
	// Numeric --group-add ends in additionalGids for the start to merge.
	o = opts("sh")
	o.GroupAdd = []string{"10", "20"}
	if g := specOf(t, o).Process.User.AdditionalGids; !reflect.DeepEqual(g, []uint32{10, 20}) {
		t.Errorf("additionalGids %v", g)
	}
}

func TestSpecInit(t *testing.T) {
	o := opts("sleep", "1")
	o.Host.Init = true
	s := specOf(t, o)
	if want := []string{InitPath, "--", "sleep", "1"}; !reflect.DeepEqual(s.Process.Args, want) {
		t.Errorf("args %q, want %q", s.Process.Args, want)
	}
	m := findMount(s, InitPath)
	self, _ := os.Executable()
	self, _ = resolveSymlinks(self)
	if m == nil || m.Type != "bind" || m.Source != self || !slices.Contains(m.Options, "ro") {
		t.Fatalf("init mount %+v, want a read-only bind of %s", m, self)
	}
	// /dev (tmpfs) comes before /dev/init.
	if slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev" }) >
		slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == InitPath }) {
		t.Error("/dev/init is mounted before /dev")
	}
	o = opts("sh")
	o.Host.Init = true
	o.Volumes = []string{InitPath}
	_, _, err := Spec(testID, o, &fakeVols{})
	wantErr(t, "-v /dev/init with --init", err, "duplicate mount point: /dev/init")
}

func TestSpecNamespaces(t *testing.T) {
	o := opts("sh")
	o.Host.NetworkMode = "host"
	s := specOf(t, o)
	host, _ := os.Hostname()
	if hasNS(s, specs.NetworkNamespace) || hasNS(s, specs.UTSNamespace) || s.Hostname != "" {
		t.Errorf("--network host: namespaces %v hostname %q", s.Linux.Namespaces, s.Hostname)
	}
	if v, _ := env(s, "HOSTNAME"); v != host || o.Config.Hostname != host {
		t.Errorf("--network host: HOSTNAME=%q config %q, want the host's %q", v, o.Config.Hostname, host)
	}
	if !hasNS(s, specs.PIDNamespace) || !hasNS(s, specs.IPCNamespace) || !hasNS(s, specs.MountNamespace) {
		t.Errorf("--network host dropped other namespaces: %v", s.Linux.Namespaces)
	}
	// Spec again on the same options (which now hold the host's name).
	if _, _, err := Spec(testID, o, &fakeVols{}); err != nil {
		t.Errorf("a second Spec of --network host: %v", err)
	}

	o = opts("sh")
	o.PidMode, o.IpcMode, o.UTSMode = "host", "host", "host"
	s = specOf(t, o)
	if hasNS(s, specs.PIDNamespace) || hasNS(s, specs.IPCNamespace) || hasNS(s, specs.UTSNamespace) || !hasNS(s, specs.NetworkNamespace) {
		t.Errorf("--pid/--ipc/--uts host: %v", s.Linux.Namespaces)
	}
	if m := findMount(s, "/dev/shm"); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("--ipc host: /dev/shm %+v, want the host's", m)
	}
	o = opts("sh")
	o.PidMode = "private"
	if s := specOf(t, o); !hasNS(s, specs.PIDNamespace) {
		t.Error("--pid private lost the pid namespace")
	}

	bad := []badSpec{
		{"bad network", func(o *Options) { o.Host.NetworkMode = "a b" }, `invalid network mode "a b"`},
		{"--pid", func(o *Options) { o.PidMode = "container:x" }, `--pid "container:x": want host or private`},
		{"--ipc", func(o *Options) { o.IpcMode = "shareable" }, `--ipc "shareable"`},
		{"--uts", func(o *Options) { o.UTSMode = "x" }, `--uts "x"`},
		{"-h with host net", func(o *Options) { o.Host.NetworkMode = "host"; o.Config.Hostname = "x" }, "conflicting options: --hostname"},
		{"--domainname with --uts host", func(o *Options) { o.UTSMode = "host"; o.Config.Domainname = "x" }, "conflicting options: --domainname"},
		{"bad hostname", func(o *Options) { o.Config.Hostname = "a b" }, `--hostname "a b"`},
		{"long hostname", func(o *Options) { o.Config.Hostname = strings.Repeat("a", 65) }, "longer than 64"},
	}
	specRefuses(t, bad)
}

func TestSpecSysctls(t *testing.T) {
	o := opts("sh")
	o.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"}
	s := specOf(t, o)
	if !reflect.DeepEqual(s.Linux.Sysctl, o.Sysctls) {
		t.Errorf("sysctl %v", s.Linux.Sysctl)
	}
	bad := []badSpec{
		{"not namespaced", func(o *Options) { o.Sysctls = map[string]string{"vm.swappiness": "1"} }, `--sysctl "vm.swappiness": not a namespaced sysctl`},
		{"kernel.*", func(o *Options) { o.Sysctls = map[string]string{"kernel.pid_max": "1"} }, "not a namespaced sysctl"},
		{"net with host net", func(o *Options) {
			o.Host.NetworkMode = "host"
			o.Sysctls = map[string]string{"net.core.somaxconn": "1"}
		}, "not allowed with the host's network namespace"},
		{"ipc with host ipc", func(o *Options) { o.IpcMode = "host"; o.Sysctls = map[string]string{"kernel.msgmax": "1"} }, "host's ipc namespace"},
		{"hostname", func(o *Options) { o.Sysctls = map[string]string{"kernel.hostname": "x"} }, "use --hostname"},
		{"path", func(o *Options) { o.Sysctls = map[string]string{"net/../../x": "1"} }, "invalid name"},
	}
	specRefuses(t, bad)
}

func TestSpecErrors(t *testing.T) {
	bad := []badSpec{
		{"no command", func(o *Options) { o.Config.Cmd = nil }, "no command specified"},
		{"relative workdir", func(o *Options) { o.Config.WorkingDir = "srv" }, `the working directory "srv" is invalid`},
		{"empty env name", func(o *Options) { o.Config.Env = []string{"=x"} }, `invalid environment variable "=x"`},
		{"group name", func(o *Options) { o.GroupAdd = []string{"audio"} }, `--group-add "audio": only numeric group ids`},
		{"group range", func(o *Options) { o.GroupAdd = []string{"99999999999"} }, "out of range"},
		{"oom score", func(o *Options) { o.OOMScoreAdj = ptr(1001) }, "--oom-score-adj: 1001 is not between"},
		{"cgroup parent ..", func(o *Options) { o.Host.CgroupParent = "../../x" }, `--cgroup-parent: invalid cgroup "../../x"`},
		{"cgroup parent colon", func(o *Options) { o.Host.CgroupParent = "a:b:c" }, "--cgroup-parent: invalid cgroup"},
		{"sdnotify", func(o *Options) { o.Host.Sdnotify = "always" }, `--sdnotify "always": want container, conmon, healthy or ignore`},
		{"annotation", func(o *Options) { o.Annotations = map[string]string{"": "x"} }, "--annotation: empty key"},
		{"shm", func(o *Options) { o.ShmSize = -1 }, "--shm-size"},
	}
	specRefuses(t, bad)
	if _, _, err := Spec("short", opts("sh"), &fakeVols{}); err == nil {
		t.Error("a short id should fail")
	}
}

// TestSpecSdnotify: no --sdnotify mode puts a socket in the stored spec
// (the starter mounts a relay of its own for each start), a mount of the
// user's where the relay goes is refused with container, and an unknown
// mode is refused.
func TestSpecSdnotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", listenUnix(t))
	for _, mode := range []string{"", "conmon", "ignore", "container"} {
		o := opts("sh")
		o.Host.Sdnotify = mode
		s := specOf(t, o)
		if findMount(s, NotifySocket) != nil {
			t.Errorf("--sdnotify %q mounted a socket in the spec", mode)
		}
		if _, ok := env(s, "NOTIFY_SOCKET"); ok {
			t.Errorf("--sdnotify %q set NOTIFY_SOCKET in the spec", mode)
		}
	}
	o := opts("sh")
	o.Host.Sdnotify = "container"
	o.Host.Tmpfs = map[string]string{NotifySocket: ""}
	_, _, err := Spec(testID, o, &fakeVols{})
	wantErr(t, "a tmpfs at the notify socket", err, "where the notify socket goes")
	o = opts("sh")
	o.Host.Sdnotify = "always"
	_, _, err = Spec(testID, o, &fakeVols{})
	wantErr(t, "--sdnotify always", err, "want container, conmon, healthy or ignore")
}
