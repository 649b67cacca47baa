package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// The init attaches the container's root from a copy of the host's
// overlay mount (the init starts before the root is mounted). Where the
// data root is a shared mount, as under systemd, that copy must be a
// slave: else /proc, /dev and the rest mounted in the container would
// appear on the host, under the container's merged dir.
func TestRootMountsStayInContainerOnSharedDataRoot(t *testing.T) {
	data, err := os.MkdirTemp("/var/tmp", "berth-it-shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(data, data, "", unix.MS_BIND, ""); err != nil {
		os.RemoveAll(data)
		t.Fatalf("bind %s: %v", data, err)
	}
	// Registered first, so it runs last: after the env's cleanup, it
	// takes whatever leaked with the shared mount.
	t.Cleanup(func() {
		if err := unix.Unmount(data, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", data, err)
		}
		os.RemoveAll(data)
	})
	if err := unix.Mount("", data, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", data, err)
	}
	c := rig.NewContainerEnvIn(t, data)
	id := strings.TrimSpace(c.Must("run", "-d", "--network", "none", rig.TestImage, "sleep", "300"))
	// The container is up once exec reaches it: its mounts are made.
	if out := c.Must("exec", id, "cat", "/proc/self/mountinfo"); !strings.Contains(out, " /proc ") {
		t.Fatalf("the container has no /proc:\n%s", out)
	}
	merged := ""
	for _, m := range rig.MountsUnder(data) {
		if strings.HasSuffix(m, "/merged") {
			merged = m
		}
	}
	if merged == "" {
		t.Fatalf("no merged root among the host's mounts under %s: %v", data, rig.MountsUnder(data))
	}
	if leaked := rig.MountsUnder(merged); len(leaked) > 0 {
		t.Errorf("mounts of the container appear on the host: %v", leaked)
	}
	c.Must("rm", "-f", id)
	if left := rig.MountsUnder(data); len(left) > 0 {
		t.Errorf("mounts left after rm: %v", left)
	}
}

// berth creates the mount points of a container's /etc files inside its
// root before the init runs (see container.makeFileTargets). A container
// whose /etc is a symlink to a host directory must not make berth create
// them there.
func TestEtcMountTargetsStayInRoot(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := t.TempDir()
	c.Must("create", "--name", "etclink", "--network", "none", rig.TestImage, "true")
	// The container's own layer replaces the image's /etc with the link.
	upper := filepath.Join(c.Data, "containers", c.Field("etclink", "{{.Id}}"), "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(upper, "etc")); err != nil {
		t.Fatal(err)
	}
	// Whether the init then starts the container is not the point.
	c.Berth("start", "etclink")
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(host, name)); err == nil {
			t.Errorf("berth created %s in the host directory the container's /etc links to", name)
		}
	}
}
