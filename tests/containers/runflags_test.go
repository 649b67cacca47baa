package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// -v with a missing host path creates the directory, as Docker does;
// --mount type=bind does not; a run refused for a bad flag creates none.
func TestRunVolumeCreatesHostDir(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := filepath.Join(t.TempDir(), "made", "here")
	c.Must("run", "--rm", "-v", host+":/data", rig.TestImage, "sh", "-c", "echo hi > /data/f")
	if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "hi\n" {
		t.Errorf("-v with a missing host dir: %q %v", b, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	r := c.Berth("run", "--rm", "--mount", "type=bind,src="+missing+",dst=/data", rig.TestImage, "true")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("--mount with a missing source: %+v", r)
	}
	r = c.Berth("run", "--rm", "-v", missing+":/data", "--memory", "lots", rig.TestImage, "true")
	if !rig.UsageError(r) {
		t.Errorf("-v with a bad --memory: %+v", r)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused run left %s (%v)", missing, err)
	}
}

// --device makes the node in the container and lets the device cgroup
// (v1 devices.allow, v2 the eBPF program) allow only the access asked
// for; --device-cgroup-rule allows a node the container makes itself.
// /dev/kmsg (c 1:11) is not among the devices every container may use;
// opening it write-only for no write is harmless.
func TestRunDevice(t *testing.T) {
	c := rig.NewContainerEnv(t)
	open := `stat -c '%F %t:%T' /dev/k && : > /dev/k && echo open-ok`
	out := c.Must("run", "--rm", "--device", "/dev/kmsg:/dev/k:rw", rig.TestImage, "sh", "-c", open)
	if out != "character special file 1:b\nopen-ok\n" {
		t.Errorf("--device /dev/kmsg:/dev/k:rw: %q", out)
	}
	r := c.Berth("run", "--rm", "--device", "/dev/kmsg:/dev/k:r", rig.TestImage, "sh", "-c", open)
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "not permitted") {
		t.Errorf("--device ...:r allowed a write open: %+v", r)
	}
	c.Must("create", "--name", "dev", "--device", "/dev/kmsg:/dev/k:r", "--device-cgroup-rule", "c 1:11 w", rig.TestImage, "true")
	if got := c.Field("dev", "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}"); got != `[{"CgroupPermissions":"r","PathInContainer":"/dev/k","PathOnHost":"/dev/kmsg"}] ["c 1:11 w"]` {
		t.Errorf("inspect: %s", got)
	}
	c.Must("rm", "dev")
	mk := `mknod /dev/k2 c 1 11 && : > /dev/k2 && echo open-ok`
	if out := c.Must("run", "--rm", "--device-cgroup-rule", "c 1:11 w", rig.TestImage, "sh", "-c", mk); out != "open-ok\n" {
		t.Errorf("--device-cgroup-rule 'c 1:11 w': %q", out)
	}
	if r := c.Berth("run", "--rm", rig.TestImage, "sh", "-c", mk); r.Code == 0 {
		t.Errorf("a node made without a rule could be opened: %+v", r)
	}
	for _, bad := range [][]string{
		{"--device", "/etc/passwd"}, {"--device", "/dev/nonexistent"}, {"--device", "dev/kmsg"},
		{"--device", "/dev/kmsg:/dev/k:rx"}, {"--device-cgroup-rule", "c 1:11"}, {"--device-cgroup-rule", "x 1:11 r"},
		{"--device-cgroup-rule", "c one:11 r"},
	} {
		r := c.Berth(append(append([]string{"run", "--name", "bad"}, bad...), rig.TestImage, "true")...)
		if !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
		if c.Berth("inspect", "bad").Code == 0 {
			t.Errorf("run %v left a container", bad)
			c.Berth("rm", "bad")
		}
	}
}

// --cidfile gets the id; an existing file is refused, as Docker does; a
// run that fails removes the file it made. --pidfile (podman's spelling
// of --pid-file) holds the container's pid and goes with rm.
func TestRunCIDFileAndPidFile(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := t.TempDir()
	cid, pidf := filepath.Join(dir, "cid"), filepath.Join(dir, "pid")
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "ids", "--cidfile", cid, "--pidfile", pidf, rig.TestImage, "sleep", "300"))
	if got := rig.ReadFile(t, cid); got != id {
		t.Errorf("--cidfile holds %q, want %q", got, id)
	}
	if got, want := strings.TrimSpace(rig.ReadFile(t, pidf)), c.Field("ids", "{{.State.Pid}}"); got != want {
		t.Errorf("--pidfile holds %q, inspect says %s", got, want)
	}
	r := c.Berth("run", "-d", "--name", "again", "--cidfile", cid, rig.TestImage, "sleep", "300")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "container ID file found") {
		t.Errorf("--cidfile of an existing file: %+v", r)
	}
	if c.Berth("inspect", "again").Code == 0 || rig.ReadFile(t, cid) != id {
		t.Errorf("the refused run made a container or changed %s", cid)
	}
	c.Must("rm", "-f", "ids")
	if _, err := os.Stat(pidf); !os.IsNotExist(err) {
		t.Errorf("rm left the pid file (%v)", err)
	}
	// A run that fails after the file was made (the device is looked
	// for once the image is found) removes it.
	cid2 := filepath.Join(dir, "cid2")
	if r := c.Berth("create", "--cidfile", cid2, "--device", "/dev/nonexistent", rig.TestImage, "true"); !rig.UsageError(r) {
		t.Errorf("create with a missing device: %+v", r)
	}
	if _, err := os.Stat(cid2); !os.IsNotExist(err) {
		t.Errorf("a failed create left %s (%v)", cid2, err)
	}
}
