package containers

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// execEvents is the journal of container name's execs: for each execID,
// its actions as "action|exitCode", in order.
func execEvents(c *rig.ContainerEnv, name string) map[string][]string {
	c.T.Helper()
	ev := c.Must("events", "--since", "1", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "container="+name, "--format", "{{.Actor.Attributes.execID}}|{{.Action}}|{{.Actor.Attributes.exitCode}}")
	byExec := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
		id, rest, ok := strings.Cut(l, "|")
		if ok && id != "" && id != "<no value>" {
			byExec[id] = append(byExec[id], rest)
		}
	}
	return byExec
}

// execDied waits until the exec whose exec_create action is create has
// been journalled in full, and returns its events.
func execDied(c *rig.ContainerEnv, name, create string) []string {
	c.T.Helper()
	var got []string
	rig.WaitFor(c.T, "exec_die of "+create, 20*time.Second, func() bool {
		for _, evs := range execEvents(c, name) {
			if len(evs) > 0 && evs[0] == "exec_create: "+create+"|<no value>" {
				got = evs
				return len(evs) >= 3
			}
		}
		return false
	})
	return got
}

// A detached exec (-d, or -it detached by the keys) journals exec_die with
// its status when it ends, as Docker does; one that berth waits for
// journals it once.
func TestDetachedExecDie(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")

	c.Must("exec", "-d", "box", "sh", "-c", "sleep 1; exit 7")
	want := []string{"exec_create: sh -c sleep 1; exit 7|<no value>", "exec_start: sh -c sleep 1; exit 7|<no value>", "exec_die|7"}
	if got := execDied(c, "box", "sh -c sleep 1; exit 7"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("exec -d events: %q, want %q", got, want)
	}
	// The keeper that waits for it keeps -e values off command lines,
	// which every user can read.
	c.Must("exec", "-d", "-e", "KEPT=s3cr3t-value", "box", "sleep", "30")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("s3cr3t-value")) {
			t.Errorf("%s shows the exec's environment: %q", p, b)
		}
	}
	// A failed detached exec is still an error, with Docker's status.
	if r := c.Berth("exec", "-d", "box", "/no/such/program"); r.Code != 127 {
		t.Errorf("exec -d of a missing program: %+v, want status 127", r)
	}

	c.Must("rm", "-f", "box")
}

// exec -it: detached by the keys, its exec_die comes when its shell ends;
// waited for, its status is berth's and journalled once.
func TestDetachedTTYExecDie(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")
	p := rig.OpenPty(t)
	cmd := c.Cmd("exec", "-it", "box", "sh")
	p.Start(t, cmd)
	_, _ = p.Master.Write([]byte("echo started; sleep 2; exit 5\n"))
	waitOutput(t, p, "started\r\n")
	_, _ = p.Master.Write([]byte("\x10\x11"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("detach: berth exited %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the keys did not detach")
	}
	if got := execDied(c, "box", "sh"); len(got) != 3 || got[2] != "exec_die|5" {
		t.Errorf("exec -it detached: events %q, want exec_die|5 last", got)
	}

	// -it that berth waits for to the end: its status, journalled once.
	p2 := rig.OpenPty(t)
	cmd = c.Cmd("exec", "-it", "box", "sh", "-c", "echo ran; exit 4")
	p2.Start(t, cmd)
	err := cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 4 {
		t.Errorf("exec -it exit 4: berth ended %v (%q)", err, p2.Output())
	}
	waitOutput(t, p2, "ran")
	want := []string{"exec_create: sh -c echo ran; exit 4|<no value>", "exec_start: sh -c echo ran; exit 4|<no value>", "exec_die|4"}
	if got := execDied(c, "box", "sh -c echo ran; exit 4"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("exec -it events: %q, want %q", got, want)
	}
	c.Must("rm", "-f", "box")
}

// inspect shows a container's id maps as podman does: HostConfig.UsernsMode
// "private" and HostConfig.IDMappings; a container without shows neither.
func TestInspectIDMaps(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "m", "--uidmap", "0:200000:65536", "--gidmap", "0:300000:1000", "--gidmap", "1000:400000:10", rig.TestImage, "true")
	if got := c.Field("m", "{{.HostConfig.UsernsMode}}|{{.HostConfig.IDMappings.UidMap}}|{{.HostConfig.IDMappings.GidMap}}"); got != "private|[0:200000:65536]|[0:300000:1000 1000:400000:10]" {
		t.Errorf("inspect of a container with id maps: %s", got)
	}
	c.Must("create", "--name", "one", "--userns", "0:100000:65536", rig.TestImage, "true")
	if got := c.Field("one", "{{.HostConfig.UsernsMode}}|{{.HostConfig.IDMappings.UidMap}}|{{.HostConfig.IDMappings.GidMap}}"); got != "private|[0:100000:65536]|[0:100000:65536]" {
		t.Errorf("inspect of --userns with maps: %s", got)
	}
	c.Must("create", "--name", "plain", rig.TestImage, "true")
	c.Must("create", "--name", "host", "--userns", "host", rig.TestImage, "true")
	for name, mode := range map[string]string{"plain": "", "host": "host"} {
		if got := c.Field(name, "{{.HostConfig.UsernsMode}}"); got != mode {
			t.Errorf("%s: UsernsMode %q, want %q", name, got, mode)
		}
		if out := c.Must("inspect", name); strings.Contains(out, "IDMappings") {
			t.Errorf("%s: inspect shows IDMappings:\n%s", name, out)
		}
	}
	c.Must("rm", "m", "one", "plain", "host")
}

// tarOwners is name -> "uid:gid" of each entry of a tar stream.
func tarOwners(t *testing.T, stream string) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(strings.NewReader(stream))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid)
	}
}

func hostOwner(t *testing.T, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
}

// Host-side tools on a container with id maps work in the container's ids,
// as podman's: cp in gives the host ids that map to the intended owners;
// cp out, export and commit shift them back, so a committed image holds
// root's files; diff lists only what the container changed.
func TestIDMappedContainerFiles(t *testing.T) {
	// The data root where TestRunUserNamespaceIDMaps keeps it, for the same
	// reason.
	data, err := os.MkdirTemp("/tmp", "berth-it-userns")
	if err != nil {
		t.Fatal(err)
	}
	c := rig.NewContainerEnvIn(t, data)
	if r := c.Berth("run", "--rm", "--uidmap", "0:100000:65536", rig.TestImage, "true"); r.Code != 0 && strings.Contains(r.Stderr, "cannot be id-mapped on this kernel") {
		t.Skipf("the data root's filesystem has no id-mapped mounts on this kernel, so id maps cannot work here: %s", r.Stderr)
	}
	c.Must("run", "-d", "--name", "um", "--uidmap", "0:200000:65536", "--gidmap", "0:300000:65536", rig.TestImage, "sleep", "300")
	c.Must("exec", "um", "sh", "-c", "mkdir /d && echo hi > /d/f && chown 5:6 /d/f")

	// cp out: -a keeps the container's owners, shifted back.
	host := t.TempDir()
	c.Must("cp", "-a", "um:/d", host)
	for p, want := range map[string]string{"d": "0:0", "d/f": "5:6"} {
		if got := hostOwner(t, filepath.Join(host, p)); got != want {
			t.Errorf("cp -a out: %s is %s, want %s", p, got, want)
		}
	}
	if got := tarOwners(t, c.Must("cp", "um:/d", "-")); got["d"] != "0:0" || got["d/f"] != "5:6" {
		t.Errorf("cp out as a tar: owners %v, want d 0:0, d/f 5:6", got)
	}

	// cp in: root's file is the container root's; -a keeps owners.
	src := filepath.Join(host, "in")
	if err := os.WriteFile(src, []byte("in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", src, "um:/in")
	if err := os.Chown(src, 7, 8); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", "-a", src, "um:/in-a")
	// A tar stream whose directories are not listed: those made on the way
	// are the container root's too.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "x/y/z", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg, Uid: 9, Gid: 10})
	_, _ = tw.Write([]byte("z\n"))
	_ = tw.Close()
	if r := c.BerthIn(buf.Bytes(), "cp", "-a", "-", "um:/tmp"); r.Code != 0 {
		t.Fatalf("cp - into the container: %+v", r)
	}
	if out := c.Must("exec", "um", "stat", "-c", "%n %u:%g", "/in", "/in-a", "/tmp/x", "/tmp/x/y", "/tmp/x/y/z"); out != "/in 0:0\n/in-a 7:8\n/tmp/x 0:0\n/tmp/x/y 0:0\n/tmp/x/y/z 9:10\n" {
		t.Errorf("owners inside after cp in:\n%s", out)
	}
	// An owner the container has no id for is refused, and nothing is left.
	if err := os.Chown(src, 70000, 70000); err != nil {
		t.Fatal(err)
	}
	if r := c.Berth("cp", "-a", src, "um:/unmapped"); r.Code == 0 || !strings.Contains(r.Stderr, "not mapped") {
		t.Errorf("cp -a of a file owned by an unmapped id: %+v", r)
	}
	if r := c.Berth("exec", "um", "test", "-e", "/unmapped"); r.Code == 0 {
		t.Errorf("the refused copy left /unmapped behind")
	}

	// diff: the container's changes, not the image's files.
	diff := c.Must("diff", "um")
	for _, want := range []string{"A /d/f", "A /in"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff has no %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/bin") {
		t.Errorf("diff lists the image's files:\n%s", diff)
	}

	// export: the container's owners.
	exp := c.Berth("export", "um")
	if exp.Code != 0 {
		t.Fatalf("export: %+v", exp)
	}
	owners := tarOwners(t, exp.Stdout)
	for p, want := range map[string]string{"bin/busybox": "0:0", "d/f": "5:6", "in": "0:0", "in-a": "7:8"} {
		if owners[p] != want {
			t.Errorf("export: %s is %q, want %s", p, owners[p], want)
		}
	}

	// commit: an image with the container's owners, seen by a container
	// without maps.
	c.Must("commit", "um", "mapped-commit")
	if out := c.Must("run", "--rm", "mapped-commit", "stat", "-c", "%n %u:%g", "/d", "/d/f", "/in", "/in-a"); out != "/d 0:0\n/d/f 5:6\n/in 0:0\n/in-a 7:8\n" {
		t.Errorf("the committed image's owners:\n%s", out)
	}
	// The same with the container stopped: berth mounts its root itself.
	c.Must("stop", "-t", "0", "um")
	if err := os.Chown(src, 0, 0); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", src, "um:/stopped-in")
	stopped := t.TempDir()
	c.Must("cp", "-a", "um:/d/f", stopped)
	if got := hostOwner(t, filepath.Join(stopped, "f")); got != "5:6" {
		t.Errorf("cp -a out of the stopped container: %s, want 5:6", got)
	}
	c.Must("start", "um")
	if out := c.Must("exec", "um", "stat", "-c", "%u:%g", "/stopped-in"); out != "0:0\n" {
		t.Errorf("copied into the stopped container: owner %q inside, want 0:0", out)
	}
	c.Must("rm", "-f", "um")
	c.Must("rmi", "mapped-commit")
}
