package runconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runtime"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"1": 1e9, "0.5": 5e8, "2.25": 2.25e9, "0.01": 1e7} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "abc", "0.001", "NaN", "Inf"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) should fail", in)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	good := map[string]container.Ulimit{
		"nofile=1024":          {Name: "nofile", Soft: 1024, Hard: 1024},
		"nofile=1024:2048":     {Name: "nofile", Soft: 1024, Hard: 2048},
		"core=-1":              {Name: "core", Soft: -1, Hard: -1},
		"memlock=unlimited":    {Name: "memlock", Soft: -1, Hard: -1},
		"stack=8192:unlimited": {Name: "stack", Soft: 8192, Hard: -1},
		"rtprio=0":             {Name: "rtprio", Soft: 0, Hard: 0},
	}
	for in, want := range good {
		if got, err := ParseUlimit(in); err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"nofile":           "want NAME=SOFT[:HARD]",
		"nofile=":          "want NAME=SOFT[:HARD]",
		"files=1":          `unknown limit "files"`,
		"nofile=x":         `invalid value "x"`,
		"nofile=1:y":       `invalid value "y"`,
		"nofile=-2":        `invalid value "-2"`,
		"nofile=2048:1024": "soft limit must not be above the hard limit",
		"nofile=-1:1024":   "soft limit must not be above the hard limit",
	} {
		_, err := ParseUlimit(in)
		wantErr(t, in, err, want)
	}
}

func TestParseRestart(t *testing.T) {
	good := map[string]container.RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "unless-stopped"},
		"on-failure": {Name: "on-failure"}, "on-failure:5": {Name: "on-failure", MaximumRetryCount: 5},
	}
	for in, want := range good {
		if got, err := ParseRestart(in); err != nil || got != want {
			t.Errorf("ParseRestart(%q) = %+v, %v", in, got, err)
		}
	}
	for in, want := range map[string]string{
		"sometimes":     "want no, always, unless-stopped or on-failure[:N]",
		"on-failure:x":  "invalid maximum retry count",
		"on-failure:-1": "invalid maximum retry count",
		"always:3":      "only on-failure takes a maximum retry count",
	} {
		_, err := ParseRestart(in)
		wantErr(t, in, err, want)
	}
}

func TestParseEnv(t *testing.T) {
	got, err := ParseEnv([]string{"A=1", "B=x=y,z", "C=", "HOME", "UNSET", "D"}, lookup(map[string]string{"HOME": "/root", "D": ""}))
	if want := []string{"A=1", "B=x=y,z", "C=", "HOME=/root", "D="}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnv = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"=x", "", "A B=1"} {
		_, err := ParseEnv([]string{bad}, lookup(nil))
		wantErr(t, "-e "+bad, err, "invalid environment variable")
	}
}

func TestParseEnvFile(t *testing.T) {
	f := writeFile(t, "env", "\xef\xbb\xbf# comment\n\nA=1\n  B=two words \nQUOTED=\"q\"\nHOME\nUNSET\nE=a=b\n   # indented comment\nTRAIL  \n")
	got, err := ParseEnvFile(f, lookup(map[string]string{"HOME": "/root", "TRAIL": "t"}))
	want := []string{"A=1", "B=two words ", `QUOTED="q"`, "HOME=/root", "E=a=b", "TRAIL=t"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnvFile = %q, %v; want %q", got, err, want)
	}
	_, err = ParseEnvFile(writeFile(t, "bad", "A=1\nBAD KEY=2\n"), lookup(nil))
	wantErr(t, "whitespace in a name", err, "the name contains whitespace")
	_, err = ParseEnvFile(writeFile(t, "bad2", "=x\n"), lookup(nil))
	wantErr(t, "no name", err, `invalid environment variable "=x"`)
	_, err = ParseEnvFile(writeFile(t, "bad3", "A=\xff\n"), lookup(nil))
	wantErr(t, "not UTF-8", err, "invalid UTF-8")
	_, err = ParseEnvFile("/nonexistent/env", lookup(nil))
	wantErr(t, "missing file", err, "no such file")
}

func TestParseLabels(t *testing.T) {
	f := writeFile(t, "labels", "# labels\na=1\nflag\nb=x=y \n")
	lines, err := ParseLabelFile(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseLabels(append(lines, "a=override", "c"))
	if want := map[string]string{"a": "override", "flag": "", "b": "x=y", "c": ""}; err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("labels %v, %v; want %v", m, err, want)
	}
	_, err = ParseLabels([]string{"=v"})
	wantErr(t, "empty label key", err, "empty key")
	if m, err := ParseLabels(nil); m != nil || err != nil {
		t.Errorf("no labels: %v %v", m, err)
	}
	kv, err := ParseKV("--sysctl", []string{"a.b=1", "c=x=y"})
	if want := map[string]string{"a.b": "1", "c": "x=y"}; err != nil || !reflect.DeepEqual(kv, want) {
		t.Errorf("ParseKV = %v, %v", kv, err)
	}
	_, err = ParseKV("--annotation", []string{"novalue"})
	wantErr(t, "ParseKV without =", err, `--annotation "novalue": want KEY=VALUE`)
}

func TestParseTmpfs(t *testing.T) {
	m, err := ParseTmpfs([]string{"/run", "/tmp:rw,size=64m,mode=1777", "/x/:exec"})
	if want := map[string]string{"/run": "", "/tmp": "rw,size=64m,mode=1777", "/x": "exec"}; err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("ParseTmpfs = %v, %v; want %v", m, err, want)
	}
	for in, want := range map[string]string{
		"run":          "is not an absolute path",
		"/":            `the destination can not be "/"`,
		"/run:bogus":   `invalid tmpfs option "bogus"`,
		"/run:size=1q": `invalid tmpfs option "size=1q"`,
		"/run:uid=x":   `invalid tmpfs option "uid=x"`,
	} {
		_, err := ParseTmpfs([]string{in})
		wantErr(t, in, err, want)
	}
	_, err = ParseTmpfs([]string{"/run", "/run/"})
	wantErr(t, "duplicate tmpfs", err, "duplicate mount point: /run")
}

func TestParseThrottle(t *testing.T) {
	for _, tt := range []struct {
		v     string
		bytes bool
		want  string
	}{
		{"/dev/sda", true, "want DEVICE:RATE"},
		{"/dev/sda:", true, "want DEVICE:RATE"},
		{":1mb", true, "want DEVICE:RATE"},
		{"sda:1mb", true, "is not a path under /dev"},
		{"/dev/sda:fast", true, `invalid rate "fast"`},
		{"/dev/sda:0", true, `invalid rate "0"`},
		{"/dev/sda:1mb", false, `invalid rate "1mb"`},
		{"/dev/null:1mb", true, "/dev/null: not a block device"},
		{"/dev/nonexistent:10", false, "no such file"},
	} {
		_, err := ParseThrottle("--device-read-bps", tt.v, tt.bytes)
		wantErr(t, tt.v, err, tt.want)
	}
	dev := blockDevice(t)
	got, err := ParseThrottle("--device-read-bps", dev+":1mb", true)
	if err != nil || got != (container.ThrottleDevice{Path: dev, Rate: 1 << 20}) {
		t.Errorf("bps: %+v, %v", got, err)
	}
	got, err = ParseThrottle("--device-write-iops", dev+":300", false)
	if err != nil || got != (container.ThrottleDevice{Path: dev, Rate: 300}) {
		t.Errorf("iops: %+v, %v", got, err)
	}
}

func TestFromFlags(t *testing.T) {
	envFile := writeFile(t, "env", "FROMFILE=1\nSHARED=file\n")
	labelFile := writeFile(t, "labels", "lf=1\nshared=file\n")
	ep := "/bin/sh"
	f := Flags{
		Detach: true, Interactive: true, Tty: true,
		Name: "web-1", DetachKeys: "ctrl-a",
		Env: []string{"SHARED=flag", "A=1,2", "PASSED"}, EnvFile: []string{envFile},
		Workdir: "/srv", User: "app:staff", GroupAdd: []string{"10"}, Entrypoint: &ep,
		Hostname: "h", Domainname: "d.example",
		Label: []string{"shared=flag", "l=1"}, LabelFile: []string{labelFile}, Annotation: []string{"a.b=c"},
		Volume: []string{"/anon", "data:/data"}, Mount: []string{"type=tmpfs,dst=/t"}, Tmpfs: []string{"/run:size=1m"},
		ReadOnly: true,
		Memory:   "64m", MemorySwap: "-1", MemoryReservation: "32mb", ShmSize: "128m",
		OOMKillDisable: true, OOMScoreAdj: ptr(100),
		CPUs: "1.5", CPUShares: 256, CpusetCPUs: "0,1", CpusetMems: "0",
		PidsLimit: ptr(int64(50)), BlkioWeight: 500,
		Ulimit: []string{"nofile=10:20", "nproc=5", "nofile=30:40"},
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"chown"}, Privileged: true,
		SecurityOpt: []string{"no-new-privileges=false"}, Sysctl: []string{"net.ipv4.ip_forward=1"}, Init: true,
		StopSignal: "SIGINT", StopTimeout: ptr(30), Restart: "on-failure:3",
		NetFlags: NetFlags{Network: "host"}, Pid: "host", Ipc: "host", UTS: "host",
		PidFile: "/run/x.pid", CgroupParent: "p", Sdnotify: "conmon",
	}
	o, err := FromFlags("alpine:3", []string{"echo", "--foo"}, f, lookup(map[string]string{"PASSED": "yes"}))
	if err != nil {
		t.Fatal(err)
	}
	c, h := o.Config, o.Host
	if !o.Detach || !o.Interactive || !o.Tty || o.Remove || o.Name != "web-1" || o.DetachKeys != "ctrl-a" {
		t.Errorf("options %+v", o)
	}
	if c.Image != "alpine:3" || !reflect.DeepEqual(c.Cmd, []string{"echo", "--foo"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh"}) {
		t.Errorf("image %q cmd %q entrypoint %q", c.Image, c.Cmd, c.Entrypoint)
	}
	if !c.Tty || !c.OpenStdin || c.AttachStdin || c.AttachStdout || c.AttachStderr {
		t.Errorf("-dit: tty %v openstdin %v attach %v %v %v", c.Tty, c.OpenStdin, c.AttachStdin, c.AttachStdout, c.AttachStderr)
	}
	if want := []string{"FROMFILE=1", "SHARED=file", "SHARED=flag", "A=1,2", "PASSED=yes"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if c.WorkingDir != "/srv" || c.User != "app:staff" || c.Hostname != "h" || c.Domainname != "d.example" {
		t.Errorf("config %+v", c)
	}
	if want := map[string]string{"lf": "1", "shared": "flag", "l": "1"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v", c.Labels)
	}
	if !reflect.DeepEqual(o.Annotations, map[string]string{"a.b": "c"}) || !reflect.DeepEqual(o.Sysctls, map[string]string{"net.ipv4.ip_forward": "1"}) {
		t.Errorf("annotations %v sysctls %v", o.Annotations, o.Sysctls)
	}
	if c.StopSignal != "SIGINT" || c.StopTimeout == nil || *c.StopTimeout != 30 {
		t.Errorf("stop %q %v", c.StopSignal, c.StopTimeout)
	}
	if !reflect.DeepEqual(c.Volumes, map[string]struct{}{"/anon": {}}) {
		t.Errorf("config volumes %v", c.Volumes)
	}
	if !reflect.DeepEqual(o.Volumes, f.Volume) || !reflect.DeepEqual(o.Mounts, f.Mount) || !reflect.DeepEqual(h.Tmpfs, map[string]string{"/run": "size=1m"}) {
		t.Errorf("volumes %q mounts %q tmpfs %v", o.Volumes, o.Mounts, h.Tmpfs)
	}
	if !h.ReadonlyRootfs || !h.Privileged || !h.Init || h.AutoRemove || h.NetworkMode != "host" || h.CgroupParent != "p" || h.PidFile != "/run/x.pid" || h.Sdnotify != "conmon" {
		t.Errorf("host %+v", h)
	}
	if h.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}) {
		t.Errorf("restart %+v", h.RestartPolicy)
	}
	if h.Memory != 64<<20 || h.MemorySwap != -1 || h.MemoryReservation != 32<<20 || o.ShmSize != 128<<20 {
		t.Errorf("memory %d swap %d reservation %d shm %d", h.Memory, h.MemorySwap, h.MemoryReservation, o.ShmSize)
	}
	if h.NanoCpus != 1.5e9 || h.CpuShares != 256 || h.CpusetCpus != "0,1" || o.CpusetMems != "0" || *h.PidsLimit != 50 || o.BlkioWeight != 500 {
		t.Errorf("cpu %d %d %q %q pids %d blkio %d", h.NanoCpus, h.CpuShares, h.CpusetCpus, o.CpusetMems, *h.PidsLimit, o.BlkioWeight)
	}
	if !o.OOMKillDisable || *o.OOMScoreAdj != 100 {
		t.Errorf("oom %v %v", o.OOMKillDisable, *o.OOMScoreAdj)
	}
	if want := []container.Ulimit{{Name: "nproc", Soft: 5, Hard: 5}, {Name: "nofile", Soft: 30, Hard: 40}}; !reflect.DeepEqual(h.Ulimits, want) {
		t.Errorf("ulimits %+v, want the last nofile", h.Ulimits)
	}
	if !reflect.DeepEqual(h.CapAdd, []string{"NET_ADMIN"}) || !reflect.DeepEqual(h.CapDrop, []string{"chown"}) || !reflect.DeepEqual(h.SecurityOpt, f.SecurityOpt) {
		t.Errorf("caps %q %q secopt %q", h.CapAdd, h.CapDrop, h.SecurityOpt)
	}
	if o.PidMode != "host" || o.IpcMode != "host" || o.UTSMode != "host" || !reflect.DeepEqual(o.GroupAdd, []string{"10"}) {
		t.Errorf("modes %q %q %q groups %q", o.PidMode, o.IpcMode, o.UTSMode, o.GroupAdd)
	}

	// Defaults: attached, no entrypoint override, restart no.
	o, err = FromFlags("busybox", nil, Flags{Interactive: true, Remove: true}, lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	c = o.Config
	if !c.AttachStdin || !c.AttachStdout || !c.AttachStderr || c.Entrypoint != nil || c.Cmd != nil || c.StopTimeout != nil || !o.Host.AutoRemove {
		t.Errorf("defaults: %+v", o)
	}
	if o.Host.RestartPolicy.Name != "no" || o.Host.PidsLimit != nil || o.OOMScoreAdj != nil || o.Host.Tmpfs != nil || c.Labels != nil {
		t.Errorf("defaults: %+v", o.Host)
	}
	// --entrypoint "" is an empty, not a missing, entrypoint.
	empty := ""
	o, _ = FromFlags("busybox", nil, Flags{Entrypoint: &empty}, lookup(nil))
	if o.Config.Entrypoint == nil || len(o.Config.Entrypoint) != 0 {
		t.Errorf("--entrypoint \"\": %#v", o.Config.Entrypoint)
	}
}

func TestFromFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Flags
		want string
	}{
		{"name", Flags{Name: "bad name"}, "invalid container name"},
		{"workdir", Flags{Workdir: "srv"}, `-w: the working directory "srv" is invalid`},
		{"env", Flags{Env: []string{"=1"}}, "invalid environment variable"},
		{"env-file", Flags{EnvFile: []string{"/nonexistent"}}, "--env-file: open /nonexistent"},
		{"label-file", Flags{LabelFile: []string{"/nonexistent"}}, "--label-file: open /nonexistent"},
		{"label", Flags{Label: []string{"=x"}}, "--label"},
		{"annotation", Flags{Annotation: []string{"x"}}, `--annotation "x": want KEY=VALUE`},
		{"sysctl", Flags{Sysctl: []string{"x"}}, `--sysctl "x": want KEY=VALUE`},
		{"stop-signal", Flags{StopSignal: "SIGNOPE"}, "--stop-signal"},
		{"stop-timeout", Flags{StopTimeout: ptr(-2)}, "--stop-timeout: -2 is invalid"},
		{"restart", Flags{Restart: "sometimes"}, `--restart "sometimes"`},
		{"restart and rm", Flags{Restart: "always", Remove: true}, "conflicting options: --restart and --rm"},
		{"memory", Flags{Memory: "lots"}, `--memory: invalid size "lots"`},
		{"memory -1", Flags{Memory: "-1"}, `--memory: invalid size "-1"`},
		{"memory-swap", Flags{MemorySwap: "1x"}, `--memory-swap: invalid size "1x"`},
		{"memory-reservation", Flags{MemoryReservation: "x"}, "--memory-reservation: invalid size"},
		{"shm-size", Flags{ShmSize: "0"}, `--shm-size: invalid size "0"`},
		{"cpus", Flags{CPUs: "half"}, `--cpus: invalid number "half"`},
		{"cpu-shares", Flags{CPUShares: -2}, "--cpu-shares: -2 is negative"},
		{"oom-score-adj", Flags{OOMScoreAdj: ptr(-1001)}, "--oom-score-adj: -1001 is not between -1000 and 1000"},
		{"blkio-weight", Flags{BlkioWeight: 1001}, "--blkio-weight: 1001 is not between 10 and 1000"},
		{"device-read-bps", Flags{DeviceReadBps: []string{"/dev/null:1m"}}, "--device-read-bps"},
		{"device-write-bps", Flags{DeviceWriteBps: []string{"x"}}, "--device-write-bps"},
		{"device-read-iops", Flags{DeviceReadIOps: []string{"/dev/null:x"}}, "--device-read-iops"},
		{"device-write-iops", Flags{DeviceWriteIOps: []string{"/dev/null:1"}}, "--device-write-iops"},
		{"ulimit", Flags{Ulimit: []string{"bogus=1"}}, "--ulimit"},
		{"tmpfs", Flags{Tmpfs: []string{"tmp"}}, "--tmpfs"},
	}
	for _, tt := range tests {
		_, err := FromFlags("busybox", nil, tt.f, lookup(nil))
		wantErr(t, tt.name, err, tt.want)
	}
	_, err := FromFlags("", nil, Flags{}, lookup(nil))
	wantErr(t, "no image", err, "no image")
}

// The whole path: flags, the image's config, the spec.
func TestFlagsToSpec(t *testing.T) {
	o, err := FromFlags("busybox", []string{"top"}, Flags{Volume: []string{"/data"}, Tty: true, Env: []string{"X=1"}, Init: true, Ulimit: []string{"core=-1"}, Memory: "64m", Tmpfs: []string{"/run"}}, lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	ApplyImage(o, imageConfig())
	vols := &fakeVols{}
	s, mps, err := Spec(testID, o, vols)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{InitPath, "--", "/entry", "top"}) {
		t.Errorf("args %q", s.Process.Args)
	}
	if len(mps) != 3 || len(vols.calls) != 2 {
		t.Errorf("mounts %+v calls %q: want /data once, /run and the image's /logs", mps, vols.calls)
	}
	if v, _ := env(s, "X"); v != "1" {
		t.Errorf("env %q", s.Process.Env)
	}
	if v, _ := env(s, "PATH"); v != "/img/bin" {
		t.Errorf("PATH=%q", v)
	}
	bundle := t.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runtime.Validate(s, bundle); err != nil {
		t.Errorf("runtime.Validate: %v", err)
	}
}
