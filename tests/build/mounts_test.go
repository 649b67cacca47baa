package build

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// TestBuildBindMountRW: a bind mount with rw takes writes in a scratch
// copy: the step sees them, but neither the context, the stage bound
// nor the image (nor a later step) does.
func TestBuildBindMountRW(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"data/x": "one\n",
		"Dockerfile": `FROM berth-test/busybox AS src
RUN mkdir /tree && echo stage > /tree/s
FROM berth-test/busybox
RUN --mount=type=bind,source=data,target=/in,rw echo changed > /in/x && echo new > /in/y && cat /in/x /in/y > /out
RUN --mount=type=bind,from=src,source=/tree,target=/t,rw echo written > /t/s && touch /t/n && cat /t/s > /out2
RUN --mount=type=bind,from=src,source=/tree,target=/t ls /t > /out3 && cat /t/s >> /out3
RUN --mount=type=bind,source=data,target=/in ls /in > /out4 && cat /in/x >> /out4
`,
	})
	mustBuild(c, "-t", "bindrw:1", dir)
	want := map[string]string{"/out": "changed\nnew\n", "/out2": "written\n", "/out3": "s\nstage\n", "/out4": "x\none\n"}
	for f, w := range want {
		if got := c.Must("run", "--rm", "bindrw:1", "cat", f); got != w {
			t.Errorf("%s is %q, want %q", f, got, w)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "data/x")); string(b) != "one\n" {
		t.Errorf("the context's data/x became %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "data/y")); err == nil {
		t.Errorf("the rw mount wrote data/y into the context")
	}
	for _, p := range []string{"/in", "/t"} {
		if r := c.Berth("run", "--rm", "bindrw:1", "ls", p); r.Code == 0 {
			t.Errorf("%s is in the image: %s", p, r.Stdout)
		}
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestBuildBindMountDockerignore: a bind mount of the context sees it as
// BuildKit sends it, without what .dockerignore excludes (a "!"
// exception kept); an ignored file cannot be bound and its change does
// not invalidate the step.
func TestBuildBindMountDockerignore(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		".dockerignore":   "data/*.log\n!data/keep.log\ndata/secret.txt\n",
		"data/x":          "x\n",
		"data/drop.log":   "dropped\n",
		"data/keep.log":   "kept\n",
		"data/secret.txt": "hidden\n",
		"Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=bind,source=data,target=/in ls /in > /ls\n" +
			"RUN --mount=type=bind,target=/ctx ls /ctx/data > /ls-root\n",
		"file.Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=bind,source=data/secret.txt,target=/s cat /s\n",
	})
	mustBuild(c, "-t", "bindign:1", dir)
	for _, f := range []string{"/ls", "/ls-root"} {
		if got := c.Must("run", "--rm", "bindign:1", "cat", f); got != "keep.log\nx\n" {
			t.Errorf("%s: the bind mount shows %q, want keep.log and x only", f, got)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "data/drop.log"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustBuild(c, "-t", "bindign:2", dir); countLines(out, "CACHED") != 2 {
		t.Errorf("an ignored file's change invalidated the steps:\n%s", out)
	}
	r := c.Berth("build", "-f", filepath.Join(dir, "file.Dockerfile"), dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "secret.txt") || strings.Contains(r.Stderr+r.Stdout, "hidden") {
		t.Errorf("binding an ignored file: exit %d\n%s", r.Code, r.Stderr)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestBuildCacheMountSharing: stages that start together share a
// sharing=shared cache mount (each sees the other's file while both
// run), while with sharing=private the one that finds it in use gets a
// fresh directory of its own (each makes /c/busy, which would fail in a
// shared one), and only the first's files stay in the cache.
func TestBuildCacheMountSharing(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// meet waits, at most 30 s, until both stages are running.
	meet := func(name string) string {
		return "touch /r/" + name + " && i=0 && while [ ! -e /r/a ] || [ ! -e /r/b ]; do [ $i -lt 300 ] || exit 9; sleep 0.1; i=$((i+1)); done"
	}
	shared := func(name string) string {
		return "RUN --mount=type=cache,id=meet-sh,target=/r " + meet(name) + "\n"
	}
	private := func(name string) string {
		return "RUN --mount=type=cache,id=meet-pv,target=/r --mount=type=cache,id=pv,target=/c,sharing=private " +
			"mkdir /c/busy && touch /c/from-" + name + " && " + meet(name) + " && ls /c > /saw && rmdir /c/busy\n"
	}
	dir := writeContext(t, map[string]string{
		"shared.Dockerfile": "FROM berth-test/busybox AS a\n" + shared("a") +
			"FROM berth-test/busybox AS b\n" + shared("b") +
			"FROM b\nCOPY --from=a /etc/passwd /pa\n",
		"private.Dockerfile": "FROM berth-test/busybox AS a\n" + private("a") +
			"FROM berth-test/busybox AS b\n" + private("b") +
			"FROM b\nCOPY --from=a /saw /saw-a\n",
	})
	mustBuild(c, "-t", "share:1", "-f", filepath.Join(dir, "shared.Dockerfile"), dir)
	mustBuild(c, "-t", "share:2", "-f", filepath.Join(dir, "private.Dockerfile"), dir)
	sawA := c.Must("run", "--rm", "share:2", "cat", "/saw-a")
	sawB := c.Must("run", "--rm", "share:2", "cat", "/saw")
	if sawA != "busy\nfrom-a\n" || sawB != "busy\nfrom-b\n" {
		t.Errorf("private cache mounts: a saw %q, b saw %q", sawA, sawB)
	}
	// The fresh one went with its step: the cache keeps one stage's file.
	kept, _ := filepath.Glob(filepath.Join(c.Data, "build", "mounts", "*", "data", "from-*"))
	if len(kept) != 1 {
		t.Errorf("the private cache mount keeps %v, want one stage's file", kept)
	}
}

// TestBuildSecretEnv: --mount=type=secret,env=NAME puts the secret in the
// RUN's environment only (no file unless a target is named), and it is
// nowhere in the image: not its Env, its history, its layers, nor a
// later step's environment.
func TestBuildSecretEnv(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cretvalue"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM berth-test/busybox
RUN --mount=type=secret,id=tok,env=TOKEN [ ! -e /run/secrets/tok ] && printf %s "$TOKEN" | md5sum > /seen
RUN --mount=type=secret,id=tok,env=TOKEN,target=/s/tok [ "$(cat /s/tok)" = "$TOKEN" ] && echo file >> /seen
RUN env > /env.after
`,
	})
	mustBuild(c, "-t", "senv:1", "--secret", "id=tok,src="+secret, dir)
	if got, want := c.Must("run", "--rm", "senv:1", "cat", "/seen"), fmt.Sprintf("%x  -\nfile\n", md5.Sum([]byte("s3cretvalue"))); got != want {
		t.Errorf("the steps saw %q", got)
	}
	if got := c.Must("run", "--rm", "senv:1", "cat", "/env.after"); strings.Contains(got, "TOKEN") {
		t.Errorf("a later step's environment has the secret:\n%s", got)
	}
	for _, e := range inspectImage(c, "senv:1").Config.Env {
		if strings.Contains(e, "TOKEN") || strings.Contains(e, "s3cret") {
			t.Errorf("the image's Env has %q", e)
		}
	}
	hist := c.Must("history", "--no-trunc", "senv:1")
	if strings.Contains(hist, "s3cret") {
		t.Errorf("the history has the secret:\n%s", hist)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	c.Must("save", "-o", archive, "senv:1")
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("s3cretvalue")) {
		t.Errorf("the saved image contains the secret")
	}
	if r := c.Berth("run", "--rm", "senv:1", "ls", "/s"); r.Code == 0 {
		t.Errorf("the secret's mount point /s is in the image")
	}
}
