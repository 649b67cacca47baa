package build

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// TestBuildWorkdirCreates: WORKDIR of a missing directory makes it in a
// layer of its own, owned by the USER in effect, as BuildKit does; a
// WORKDIR that exists adds no layer.
func TestBuildWorkdirCreates(t *testing.T) {
	c := rig.NewContainerEnv(t)
	base := len(inspectImage(c, rig.TestImage).RootFS.Layers)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM berth-test/busybox
WORKDIR /srv/new/deep
USER app
WORKDIR mine
WORKDIR /tmp
CMD ["sh", "-c", "pwd; stat -c '%u:%g %a' /srv/new /srv/new/deep /srv/new/deep/mine"]
`,
	})
	mustBuild(c, "-t", "wd:1", dir)
	img := inspectImage(c, "wd:1")
	if got := len(img.RootFS.Layers) - base; got != 2 {
		t.Errorf("the WORKDIRs added %d layers, want 2 (an existing /tmp adds none)", got)
	}
	want := "/tmp\n0:0 755\n0:0 755\n1000:1000 755\n"
	if got := c.Must("run", "--rm", "wd:1"); got != want {
		t.Errorf("the image has\n%s\nwant\n%s", got, want)
	}
	// The rebuild takes both layers from the cache.
	if out := mustBuild(c, "-t", "wd:2", dir); countLines(out, "CACHED") != 2 {
		t.Errorf("rebuild: want 2 cached WORKDIR layers:\n%s", out)
	}
	if got := inspectImage(c, "wd:2").ID; got != img.ID {
		t.Errorf("the rebuild made %s, not %s", got, img.ID)
	}
}

// buildSeen is what a RUN step wrote into its cache mount (id=seen):
// found by the test while or after the build runs.
func buildSeen(c *rig.ContainerEnv, name string) string {
	m, _ := filepath.Glob(filepath.Join(c.Data, "build", "mounts", "*", "data", name))
	if len(m) != 1 {
		return ""
	}
	b, _ := os.ReadFile(m[0])
	return string(b)
}

// stepCgroup is the cgroup path of the build container that wrote its
// hostname (its id's first 12 digits) as "host" into the cache mount
// (its /proc/self/cgroup says "/" in its cgroup namespace): /berth/<id>
// with the prefix as a glob.
func stepCgroup(t *testing.T, c *rig.ContainerEnv) string {
	t.Helper()
	h := strings.TrimSpace(buildSeen(c, "host"))
	if len(h) != 12 {
		t.Fatalf("the RUN step wrote no hostname: %q", h)
	}
	return "/berth/" + h + "*"
}

// assertNoBuildLeft fails unless the build left no container (in ps -a
// or on disk), mount, runtime state or cgroup.
func assertNoBuildLeft(t *testing.T, c *rig.ContainerEnv, cg string) {
	t.Helper()
	if ps := c.Must("ps", "-aq"); ps != "" {
		t.Errorf("ps -a lists %q after the build", ps)
	}
	for _, m := range append(rig.MountsUnder(c.Data), rig.MountsUnder(c.Root)...) {
		t.Errorf("mount %s left", m)
	}
	for _, d := range []string{filepath.Join(c.Data, "containers"), filepath.Join(c.Data, "build", "engine", "containers"), filepath.Join(c.Root, "build")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s left in %s", e.Name(), d)
			}
		}
	}
	for _, d := range rig.CgroupDirs(cg) {
		m, _ := filepath.Glob(d)
		for _, d := range m {
			t.Errorf("cgroup %s left", d)
		}
	}
}

// TestBuildContainersHidden: the container of a RUN step is not in ps -a
// while it runs, and after a build that succeeds, fails or is
// interrupted (SIGINT) nothing of it is left.
func TestBuildContainersHidden(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"ok.Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=cache,id=seen,target=/seen hostname > /seen/host\n",
		"fail.Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=cache,id=seen,target=/seen hostname > /seen/host && exit 3\n",
		// Runs until the test interrupts it.
		"wait.Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=cache,id=seen,target=/seen hostname > /seen/host.tmp && mv /seen/host.tmp /seen/host && sleep 120\n",
	})
	mustBuild(c, "--no-cache", "-f", filepath.Join(dir, "ok.Dockerfile"), dir)
	assertNoBuildLeft(t, c, stepCgroup(t, c))

	if r := c.Berth("build", "--no-cache", "-f", filepath.Join(dir, "fail.Dockerfile"), dir); r.Code != 1 {
		t.Errorf("failing RUN: exit %d\n%s", r.Code, r.Stderr)
	}
	assertNoBuildLeft(t, c, stepCgroup(t, c))

	cg := waitingBuild(t, c, dir, os.Interrupt)
	assertNoBuildLeft(t, c, cg)

	// A build killed outright leaves its container; the next build
	// removes it.
	cg = waitingBuild(t, c, dir, unix.SIGKILL)
	mustBuild(c, "--no-cache", "-f", filepath.Join(dir, "ok.Dockerfile"), dir)
	assertNoBuildLeft(t, c, cg)
	assertNoBuildLeft(t, c, stepCgroup(t, c))
}

// waitingBuild starts a build of wait.Dockerfile, checks ps -a while its
// RUN step runs, sends sig to berth build and waits for it to end. It
// returns the step's cgroup.
func waitingBuild(t *testing.T, c *rig.ContainerEnv, dir string, sig os.Signal) string {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(c.Data, "build", "mounts", "*", "data", "host"))
	for _, p := range old {
		os.Remove(p)
	}
	cmd := c.Cmd("build", "--no-cache", "-f", filepath.Join(dir, "wait.Dockerfile"), dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	rig.WaitFor(t, "the RUN step to start", 30*time.Second, func() bool {
		return len(strings.TrimSpace(buildSeen(c, "host"))) == 12
	})
	cg := stepCgroup(t, c)
	t.Cleanup(func() { killCgroups(cg) })
	if m, _ := filepath.Glob(rig.CgroupDirs(cg)[0]); len(m) != 1 {
		t.Fatalf("the running step's cgroup %s: found %v", cg, m)
	}
	if ps := c.Must("ps", "-a"); c.Must("ps", "-aq") != "" {
		t.Errorf("ps -a lists a container during the build:\n%s", ps)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the build exited 0 after %v", sig)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("berth build did not stop 30s after %v\n%s", sig, stderr.String())
	}
	return cg
}

// killCgroups kills the processes of the step's cgroups (a build
// container the build under test failed to remove) and removes them.
func killCgroups(cg string) {
	for _, pat := range rig.CgroupDirs(cg) {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, pat := range rig.CgroupDirs(cg) {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			_ = unix.Rmdir(d)
		}
	}
}

// TestBuildRunOnScratch: as with Docker, a shell-form RUN on FROM scratch
// fails because there is no /bin/sh, and an exec-form RUN of a static
// binary copied in works.
func TestBuildRunOnScratch(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"shell.Dockerfile": "FROM scratch\nRUN echo hi\n",
		"copied.Dockerfile": "FROM scratch\nCOPY --from=berth-test/busybox /bin/busybox /busybox\n" +
			"RUN echo hi\n",
		"exec.Dockerfile": "FROM scratch\nCOPY --from=berth-test/busybox /bin/busybox /busybox\n" +
			`RUN ["/busybox", "sh", "-c", "/busybox mkdir /out && echo made > /out/f"]` + "\n" +
			`CMD ["/busybox", "cat", "/out/f"]` + "\n",
	})
	for _, df := range []string{"shell.Dockerfile", "copied.Dockerfile"} {
		r := c.Berth("build", "-t", "scratch:bad", "-f", filepath.Join(dir, df), dir)
		if r.Code != 1 || !strings.Contains(r.Stderr, "/bin/sh") || !strings.Contains(r.Stderr, "no such file") {
			t.Errorf("%s: exit %d, want 1 and a missing /bin/sh\n%s", df, r.Code, r.Stderr)
		}
		if r := c.Berth("image", "inspect", "scratch:bad"); r.Code == 0 {
			t.Errorf("%s: the failed build tagged an image", df)
		}
	}
	mustBuild(c, "-t", "scratch:ok", "-f", filepath.Join(dir, "exec.Dockerfile"), dir)
	if got := c.Must("run", "--rm", "scratch:ok"); got != "made\n" {
		t.Errorf("the image built on scratch has %q", got)
	}
	if n := len(inspectImage(c, "scratch:ok").RootFS.Layers); n != 2 {
		t.Errorf("%d layers, want 2 (COPY, RUN)", n)
	}
}

// TestBuildOnbuildChain: a base image's ONBUILD COPY and RUN run, in
// order, when a child is built FROM it (with the child's context), are
// not inherited by the child, and do not run for the base itself.
func TestBuildOnbuildChain(t *testing.T) {
	c := rig.NewContainerEnv(t)
	base := writeContext(t, map[string]string{
		"marker.txt": "base\n",
		"Dockerfile": "FROM berth-test/busybox\n" +
			"ONBUILD COPY marker.txt /from-child/\n" +
			"ONBUILD RUN cat /from-child/marker.txt > /trig.txt && echo ran >> /trig.txt\n",
	})
	mustBuild(c, "-t", "onb:base", base)
	if r := c.Berth("run", "--rm", "onb:base", "ls", "/trig.txt", "/from-child"); r.Code == 0 {
		t.Errorf("the triggers ran in the base's own build")
	}
	if got := inspectImage(c, "onb:base").Config.OnBuild; len(got) != 2 {
		t.Errorf("the base records OnBuild %q", got)
	}
	child := writeContext(t, map[string]string{
		"marker.txt": "child\n",
		"Dockerfile": "FROM onb:base\nRUN cat /trig.txt > /seen.txt\n",
	})
	out := mustBuild(c, "-t", "onb:child", child)
	if got := c.Must("run", "--rm", "onb:child", "cat", "/seen.txt"); got != "child\nran\n" {
		t.Errorf("the child saw %q, want the child's marker and the RUN trigger's line\n%s", got, out)
	}
	if got := inspectImage(c, "onb:child").Config.OnBuild; len(got) != 0 {
		t.Errorf("the child inherited OnBuild %q", got)
	}
	// A grandchild does not run them again.
	grand := writeContext(t, map[string]string{
		"Dockerfile": "FROM onb:child\nRUN ! ls /from-child/again 2>/dev/null\n",
	})
	if out := mustBuild(c, "-t", "onb:grand", grand); strings.Contains(out, "ONBUILD") {
		t.Errorf("the grandchild ran triggers:\n%s", out)
	}
}

// TestBuildDirectives: "# syntax=" is accepted and does not change the
// build (berth has one frontend), "# escape=`" makes the backtick the
// escape and line continuation character and leaves backslashes as they
// are; a directive below a comment is a comment.
func TestBuildDirectives(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "# syntax=docker/dockerfile:1.7\n# escape=`\n\n" +
			"FROM berth-test/busybox\n" +
			"ENV WINPATH=C:\\dir\\sub LIT=`$HOME\n" +
			"RUN echo one `\n    two > /e.txt && echo \"$WINPATH\" >> /e.txt && echo \"$LIT\" >> /e.txt\n",
		"late.Dockerfile": "# a comment first\n# escape=`\nFROM berth-test/busybox\n" +
			"RUN echo a \\\n  b > /e.txt\n",
	})
	mustBuild(c, "-t", "dir:1", dir)
	if got := c.Must("run", "--rm", "dir:1", "cat", "/e.txt"); got != "one two\nC:\\dir\\sub\n$HOME\n" {
		t.Errorf("with escape=` the RUN wrote %q", got)
	}
	mustBuild(c, "-t", "dir:2", "-f", filepath.Join(dir, "late.Dockerfile"), dir)
	if got := c.Must("run", "--rm", "dir:2", "cat", "/e.txt"); got != "a b\n" {
		t.Errorf("a late escape directive changed the escape: %q", got)
	}
}
