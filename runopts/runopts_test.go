package runopts

import (
	"os"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/container"
)

type fakeVols struct{ made []string }

func (f *fakeVols) Ensure(name string) (string, string, bool, error) {
	if name == "" {
		name = "anon1"
	}
	f.made = append(f.made, name)
	return name, "/vols/" + name, true, nil
}

const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestApplyImage(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"default"}, Env: []string{"PATH=/x", "A=1"},
		WorkingDir: "/w", User: "app", StopSignal: "SIGQUIT", Labels: map[string]string{"a": "img", "b": "img"},
		Volumes: map[string]struct{}{"/data": {}}}
	o := &Options{Config: container.Config{Env: []string{"A=2", "B=3"}, Labels: map[string]string{"b": "user"}}}
	ApplyImage(o, img)
	c := o.Config
	if strings.Join(c.Entrypoint, " ") != "/ep" || strings.Join(c.Cmd, " ") != "default" {
		t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
	}
	if strings.Join(c.Env, ",") != "PATH=/x,A=2,B=3" || c.WorkingDir != "/w" || c.User != "app" || c.StopSignal != "SIGQUIT" {
		t.Errorf("config %+v", c)
	}
	if c.Labels["a"] != "img" || c.Labels["b"] != "user" {
		t.Errorf("labels %v", c.Labels)
	}
	// A user command replaces CMD only; --entrypoint drops the image's CMD.
	o = &Options{Config: container.Config{Cmd: []string{"mine"}}}
	ApplyImage(o, img)
	if strings.Join(append(o.Config.Entrypoint, o.Config.Cmd...), " ") != "/ep mine" {
		t.Errorf("user cmd: %v %v", o.Config.Entrypoint, o.Config.Cmd)
	}
	o = &Options{Config: container.Config{Entrypoint: []string{"sh"}}}
	ApplyImage(o, img)
	if strings.Join(append(o.Config.Entrypoint, o.Config.Cmd...), " ") != "sh" {
		t.Errorf("--entrypoint: %v %v", o.Config.Entrypoint, o.Config.Cmd)
	}
}

func TestSpecMountsAndLimits(t *testing.T) {
	host := t.TempDir()
	o := &Options{
		Config:  container.Config{Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/img": {}, "/named": {}}},
		Volumes: []string{"named:/named", host + ":/h:ro,rshared", "/anon"},
		Mounts:  []string{"type=tmpfs,dst=/t,tmpfs-size=1m"},
		Host: container.HostConfig{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCpus: 5e8, PidsLimit: ptr(int64(100)),
			Ulimits: []container.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}}, CapDrop: []string{"all"}, CapAdd: []string{"net_raw"}},
	}
	vols := &fakeVols{}
	s, mps, err := Spec(id, o, vols)
	if err != nil {
		t.Fatal(err)
	}
	if s.Hostname != id[:12] || s.Linux.CgroupsPath != "/berth/"+id {
		t.Errorf("hostname %q cgroups %q", s.Hostname, s.Linux.CgroupsPath)
	}
	byDst := map[string]container.MountPoint{}
	for _, m := range mps {
		byDst[m.Destination] = m
	}
	if m := byDst["/named"]; m.Type != "volume" || m.Name != "named" || !m.Fill || m.Anonymous {
		t.Errorf("named: %+v", m)
	}
	if m := byDst["/h"]; m.Type != "bind" || m.RW || m.Propagation != "rshared" {
		t.Errorf("bind: %+v", m)
	}
	if m := byDst["/anon"]; !m.Anonymous || m.Source != "/vols/anon1" {
		t.Errorf("anonymous: %+v", m)
	}
	if m := byDst["/img"]; !m.Anonymous {
		t.Errorf("image volume: %+v", m)
	}
	if m := byDst["/t"]; m.Type != "tmpfs" || m.Mode != "size=1m" {
		t.Errorf("tmpfs: %+v", m)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 100 {
		t.Errorf("resources %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if caps := s.Process.Capabilities.Bounding; len(caps) != 1 || caps[0] != "CAP_NET_RAW" {
		t.Errorf("caps %v", caps)
	}
	found := false
	for _, rl := range s.Process.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" && rl.Soft == 10 && rl.Hard == 20 {
			found = true
		}
	}
	if !found {
		t.Errorf("rlimits %v", s.Process.Rlimits)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no command"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Volumes: []string{"/no/such/dir:/x"}}, "does not exist"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Volumes: []string{"a:/x", "b:/x"}}, "duplicate mount point"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Volumes: []string{"a:/x:bogus"}}, "unknown option"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Mounts: []string{"type=nfs,dst=/x"}}, "not bind, volume or tmpfs"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Volumes: []string{"a:relative"}}, "not an absolute path"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{NetworkMode: "bridge"}}, "not supported yet"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{CapAdd: []string{"CAP_BOGUS"}}}, "unknown capability"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{SecurityOpt: []string{"apparmor"}}}, ""},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{SecurityOpt: []string{"bogus=1"}}}, "unsupported option"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{MemorySwap: 10}}, "--memory-swap needs --memory"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{Sdnotify: "bogus"}}, "--sdnotify"},
		{Options{Config: container.Config{Cmd: []string{"x"}}, Publish: []string{"80:80"}}, "bridge networking"},
	} {
		o := tc.o
		_, _, err := Spec(id, &o, &fakeVols{})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestSeccompProfileFile(t *testing.T) {
	p := t.TempDir() + "/profile.json"
	os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
	 "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},{"names":["reboot"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_BOOT"]}}]}`), 0o644)
	o := &Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{SecurityOpt: []string{"seccomp=" + p}}}
	s, _, err := Spec(id, o, &fakeVols{})
	if err != nil {
		t.Fatal(err)
	}
	sc := s.Linux.Seccomp
	if len(sc.Architectures) != 2 || len(sc.Syscalls) != 1 || sc.Syscalls[0].Names[0] != "mkdir" {
		t.Errorf("profile %+v", sc)
	}
	o = &Options{Config: container.Config{Cmd: []string{"x"}}, Host: container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}}
	if s, _, _ = Spec(id, o, &fakeVols{}); s.Linux.Seccomp != nil {
		t.Errorf("unconfined kept a profile")
	}
}
