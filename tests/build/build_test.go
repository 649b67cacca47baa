package build

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-project/berth/tests/rig"
)

// TestBuildInstructions builds one image with every metadata instruction,
// COPY with --chown/--chmod, ADD of a tar and of a URL (a server on
// 127.0.0.1), a shell-form RUN with --network=none and a heredoc RUN, and checks
// what inspect shows and what a container of the image sees.
func TestBuildInstructions(t *testing.T) {
	c := rig.NewContainerEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/f.txt" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("fetched\n"))
	}))
	defer srv.Close()
	dir := writeContext(t, map[string]string{
		"a.txt":            "alpha\n",
		"sub/b.txt":        "beta\n",
		"tree/keep/k.txt":  "kept\n",
		"tree/keep/x.skip": "skipped\n",
		"Dockerfile": `# syntax=docker/dockerfile:1
ARG BASE=berth-test/busybox
FROM ${BASE}
ARG GREETING=hello
ARG TARGETARCH
ENV APP_HOME=/srv/app GREETING_ENV=${GREETING}
WORKDIR $APP_HOME
COPY --chown=1000:2000 --chmod=640 a.txt ./
COPY sub/ sub/
RUN --network=none echo "$GREETING from $(pwd) arch=$TARGETARCH" > made.txt && rm /data/from-image.txt && [ "$(ls /sys/class/net)" = lo ]
ADD arch.tar /srv/unpacked/
ADD URL /srv/fetched.txt
COPY --exclude=*.skip --parents ./tree/./keep/ /srv/
COPY <<EOT /srv/inline.txt
inline $GREETING_ENV
EOT
RUN <<EOT
echo heredoc > /srv/app/heredoc.txt
EOT
LABEL org.example.name="built" org.example.v=2
EXPOSE 8080 53/udp
VOLUME /srv/data
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --retries=4 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered > /tmp/trig.txt
USER app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["id -u; id -g; pwd; cat made.txt heredoc.txt a.txt sub/b.txt; echo $GREETING_ENV; ls /data"]
`,
	})
	df := filepath.Join(dir, "Dockerfile")
	b, _ := os.ReadFile(df)
	os.WriteFile(df, []byte(strings.Replace(string(b), "ADD URL", "ADD "+srv.URL+"/f.txt", 1)), 0o644)
	writeTar(t, filepath.Join(dir, "arch.tar"), map[string]string{"in/tar.txt": "from-tar\n"})
	out := mustBuild(c, "-t", "inst:1", "--build-arg", "GREETING=howdy", "--label", "org.cli=yes", "--iidfile", filepath.Join(dir, "iid"), dir)
	for _, want := range []string{"#1 [1/23] FROM berth-test/busybox", "RUN --network=none echo \"$GREETING", "DONE"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	img := inspectImage(c, "inst:1")
	iid, err := os.ReadFile(filepath.Join(dir, "iid"))
	if err != nil || string(iid) != img.ID {
		t.Errorf("iidfile %q (%v), image %s", iid, err, img.ID)
	}
	cfg := img.Config
	if cfg.User != "app" || cfg.WorkingDir != "/srv/app" || cfg.StopSignal != "SIGUSR1" {
		t.Errorf("User %q WorkingDir %q StopSignal %q", cfg.User, cfg.WorkingDir, cfg.StopSignal)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/bin/sh -c" || len(cfg.Cmd) != 1 {
		t.Errorf("Entrypoint %q Cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	env := strings.Join(cfg.Env, " ")
	if !strings.Contains(env, "APP_HOME=/srv/app") || !strings.Contains(env, "GREETING_ENV=howdy") || strings.Contains(env, "GREETING=") && !strings.Contains(env, "GREETING_ENV=") {
		t.Errorf("Env %q", cfg.Env)
	}
	for _, e := range cfg.Env {
		if strings.HasPrefix(e, "GREETING=") || strings.HasPrefix(e, "TARGETARCH=") {
			t.Errorf("an ARG leaked into the image's Env: %q", e)
		}
	}
	if cfg.Labels["org.example.name"] != "built" || cfg.Labels["org.example.v"] != "2" || cfg.Labels["org.cli"] != "yes" {
		t.Errorf("Labels %v", cfg.Labels)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 2 {
		t.Errorf("ExposedPorts %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ExposedPorts %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.Volumes["/srv/data"]; !ok {
		t.Errorf("Volumes %v", cfg.Volumes)
	}
	if h := cfg.Healthcheck; h == nil || strings.Join(h.Test, " ") != "CMD true" || h.Interval != 5e9 || h.Retries != 4 {
		t.Errorf("Healthcheck %+v", cfg.Healthcheck)
	}
	if strings.Join(cfg.Shell, " ") != "/bin/sh -ec" || len(cfg.OnBuild) != 1 {
		t.Errorf("Shell %q OnBuild %q", cfg.Shell, cfg.OnBuild)
	}
	// The busybox image has 2 layers; WORKDIR (of a missing directory),
	// COPY, COPY, RUN, ADD, ADD, COPY, COPY, RUN add one each.
	if n := len(img.RootFS.Layers); n != 11 {
		t.Errorf("%d layers, want 11", n)
	}
	// History: one entry per instruction but ARG, empty_layer on the
	// metadata ones.
	hist := c.Must("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "inst:1")
	if n := countLines(hist, "RUN |2 GREETING=howdy TARGETARCH=amd64 /bin/sh -c echo \"$GREETING"); n != 1 {
		t.Errorf("history has %d RUN lines:\n%s", n, hist)
	}
	for _, want := range []string{"ARG GREETING=howdy|0B", "ENV APP_HOME=/srv/app GREETING_ENV=howdy|0B", "WORKDIR /srv/app|0B",
		"COPY --chown=1000:2000 --chmod=640 a.txt ./ # buildkit|6B", "EXPOSE 53/udp 8080/tcp|0B", `CMD ["id -u; id -g;`} {
		if countLines(hist, want) != 1 {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	if n := countLines(hist, "LABEL org.example.name"); n != 1 {
		t.Errorf("history lacks the LABEL:\n%s", hist)
	}

	got := c.Must("run", "--rm", "inst:1")
	want := "1000\n1000\n/srv/app\nhowdy from /srv/app arch=amd64\nheredoc\nalpha\nbeta\nhowdy\n"
	if got != want {
		t.Errorf("container saw\n%s\nwant\n%s", got, want)
	}
	// COPY --chown/--chmod as the container sees them.
	ls := c.Must("run", "--rm", "--entrypoint", "stat", "inst:1", "-c", "%u:%g %a", "/srv/app/a.txt")
	if strings.TrimSpace(ls) != "1000:2000 640" {
		t.Errorf("a.txt is %q, want 1000:2000 640", ls)
	}

	// ADD extracts a local archive and fetches a URL (0600, as Docker).
	got = c.Must("run", "--rm", "--user", "0", "--entrypoint", "cat", "inst:1", "/srv/unpacked/in/tar.txt", "/srv/fetched.txt")
	if got != "from-tar\nfetched\n" {
		t.Errorf("ADD made %q", got)
	}
	// COPY --parents with a /./ pivot and --exclude; a heredoc source,
	// expanded.
	got = c.Must("run", "--rm", "--entrypoint", "sh", "inst:1", "-c", "cat /srv/keep/k.txt /srv/inline.txt; ls /srv/keep")
	if got != "kept\ninline howdy\nk.txt\n" {
		t.Errorf("COPY --parents/--exclude/heredoc made %q", got)
	}

	// ONBUILD runs in a build FROM this image, and is not inherited.
	child := writeContext(t, map[string]string{"Dockerfile": "FROM inst:1\nUSER root\n"})
	out = mustBuild(c, "-t", "child:1", child)
	if !strings.Contains(out, "ONBUILD RUN echo triggered") {
		t.Errorf("no ONBUILD step in:\n%s", out)
	}
	if got := c.Must("run", "--rm", "--entrypoint", "cat", "child:1", "/tmp/trig.txt"); got != "triggered\n" {
		t.Errorf("ONBUILD trigger made %q", got)
	}
	if cc := inspectImage(c, "child:1").Config; len(cc.OnBuild) != 0 {
		t.Errorf("child inherited OnBuild %q", cc.OnBuild)
	}
}

// TestBuildCache: a rebuild takes every step from the cache and makes the
// same image; changing one copied file invalidates that step and the later
// ones only; an unchanged file is not read again; --no-cache and
// --no-cache-filter take nothing from it; builder prune empties it.
func TestBuildCache(t *testing.T) {
	c := rig.NewContainerEnv(t)
	files := map[string]string{
		"Dockerfile": "FROM berth-test/busybox\nCOPY one/ /one/\nRUN cat /one/* > /all.txt\nCOPY two/ /two/\nRUN cat /two/* > /all2.txt\n",
	}
	for i := 0; i < 40; i++ {
		files[filepath.Join("one", "f"+rig.Itoa(i))] = "one " + rig.Itoa(i) + "\n"
	}
	files["two/x"] = "x1\n"
	dir := writeContext(t, files)
	// Old times: a file written this very second is always re-read.
	old := mustTime(t, "2024-01-01T00:00:00Z")
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
	// A file changed in the last moments is always read (its metadata
	// could miss a change within the same tick): let the ctimes age.
	time.Sleep(200 * time.Millisecond)

	out := mustBuild(c, "-t", "cache:1", dir)
	if n := countLines(out, "CACHED"); n != 0 {
		t.Fatalf("first build had %d cached steps:\n%s", n, out)
	}
	if !strings.Contains(out, "#0 context: 41 files read") {
		t.Errorf("first build should read all 41 files:\n%s", out)
	}
	id1 := inspectImage(c, "cache:1").ID

	out = mustBuild(c, "-t", "cache:2", dir)
	if n := countLines(out, "CACHED"); n != 4 {
		t.Errorf("rebuild: %d cached steps, want 4:\n%s", n, out)
	}
	if !strings.Contains(out, "#0 context: 0 files read") {
		t.Errorf("rebuild re-read unchanged files:\n%s", out)
	}
	if id2 := inspectImage(c, "cache:2").ID; id2 != id1 {
		t.Errorf("rebuild made %s, first %s", id2, id1)
	}

	// Change the second COPY's file: steps 2-3 cached, 4-5 not.
	if err := os.WriteFile(filepath.Join(dir, "two/x"), []byte("x2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "two/x"), old.Add(time.Hour), old.Add(time.Hour))
	time.Sleep(200 * time.Millisecond)
	out = mustBuild(c, "-t", "cache:3", dir)
	if !strings.Contains(out, "#2 CACHED") || !strings.Contains(out, "#3 CACHED") || strings.Contains(out, "#4 CACHED") || strings.Contains(out, "#5 CACHED") {
		t.Errorf("after changing two/x:\n%s", out)
	}
	if !strings.Contains(out, "#0 context: 1 files read") {
		t.Errorf("only two/x should be read again:\n%s", out)
	}
	if got := c.Must("run", "--rm", "cache:3", "cat", "/all2.txt"); got != "x2\n" {
		t.Errorf("all2.txt %q", got)
	}

	out = mustBuild(c, "--no-cache", "-t", "cache:4", dir)
	if n := countLines(out, "CACHED"); n != 0 {
		t.Errorf("--no-cache took %d steps from the cache:\n%s", n, out)
	}
	out = mustBuild(c, "--no-cache-filter", "stage-0", "-q", dir)
	if strings.Contains(out, "CACHED") {
		t.Errorf("--no-cache-filter stage-0 took steps from the cache:\n%s", out)
	}

	df := c.Must("system", "df")
	if !strings.Contains(df, "Build Cache") {
		t.Errorf("system df lacks the build cache:\n%s", df)
	}
	// Every cached layer is in some image: builder prune keeps it, -a
	// drops it all, and a rebuild then runs every step.
	c.Must("rmi", "cache:1", "cache:2", "cache:3")
	c.Must("builder", "prune", "-a", "-f")
	out = mustBuild(c, "-t", "cache:5", dir)
	if n := countLines(out, "CACHED"); n != 0 {
		t.Errorf("after builder prune -a: %d cached steps:\n%s", n, out)
	}
}

// TestBuildMultiStage: stages the target does not need are skipped, and
// independent stages run at the same time: stage a writes into a fifo
// that stage b reads, so neither finishes unless both run at once.
func TestBuildMultiStage(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM berth-test/busybox AS a
RUN --mount=type=cache,id=meet,target=/meet timeout 20 sh -c 'mkfifo /meet/ab 2>/dev/null; echo from-a > /meet/ab' && echo a > /a.txt

FROM berth-test/busybox AS b
RUN --mount=type=cache,id=meet,target=/meet timeout 20 sh -c 'while [ ! -p /meet/ab ]; do sleep 0.1; done; cat /meet/ab > /got.txt'

FROM berth-test/busybox AS unused
RUN exit 7

FROM b AS final
COPY --from=a /a.txt /a.txt
COPY --from=berth-test/busybox /data/from-image.txt /img.txt
`,
	})
	out := mustBuild(c, "-t", "multi:1", "--target", "final", dir)
	if strings.Contains(out, "exit 7") {
		t.Errorf("the unused stage ran:\n%s", out)
	}
	got := c.Must("run", "--rm", "multi:1", "cat", "/got.txt", "/a.txt", "/img.txt")
	if !strings.HasPrefix(got, "from-a\na\n") {
		t.Errorf("final stage has %q", got)
	}
	// Only the target's layers: busybox 2 + b's RUN + 2 COPY.
	if n := len(inspectImage(c, "multi:1").RootFS.Layers); n != 5 {
		t.Errorf("%d layers, want 5", n)
	}
	// --target a builds only a.
	out = mustBuild(c, "-t", "multi:a", "--target", "a", dir)
	if strings.Contains(out, "[b ") {
		t.Errorf("--target a built b:\n%s", out)
	}
}

// TestBuildMounts: a cache mount keeps its files between builds and can
// be listed, exported, pruned and imported; secret and tmpfs mounts are
// there while the step runs and leave nothing in the layer.
func TestBuildMounts(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM berth-test/busybox
RUN --mount=type=cache,target=/var/cache/app --mount=type=secret,id=tok,required --mount=type=tmpfs,target=/scratch \
    echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /runs && cat /run/secrets/tok > /seen && grep -q ' /scratch tmpfs' /proc/mounts && touch /scratch/x
`,
	})
	mustBuild(c, "-t", "mnt:1", "--secret", "id=tok,src="+secret, dir)
	mustBuild(c, "--no-cache", "-t", "mnt:2", "--secret", "id=tok,src="+secret, dir)
	if got := strings.TrimSpace(c.Must("run", "--rm", "mnt:2", "cat", "/runs", "/seen")); got != "2\ns3cret" {
		t.Errorf("second build saw %q, want 2 runs and the secret", got)
	}
	// Neither the mount points nor their content are in the layer.
	for _, p := range []string{"/run/secrets", "/var/cache/app", "/scratch"} {
		r := c.Berth("run", "--rm", "mnt:2", "ls", "-d", p)
		if r.Code == 0 {
			t.Errorf("%s is in the image", p)
		}
	}
	ls := c.Must("builder", "cache", "ls")
	if !strings.Contains(ls, "/var/cache/app") {
		t.Fatalf("builder cache ls:\n%s", ls)
	}
	archive := filepath.Join(t.TempDir(), "cache.tar")
	c.Must("builder", "cache", "export", "-o", archive)
	c.Must("builder", "cache", "prune")
	if ls := c.Must("builder", "cache", "ls"); strings.Contains(ls, "/var/cache/app") {
		t.Fatalf("prune left:\n%s", ls)
	}
	if got := c.Must("builder", "cache", "import", archive); strings.TrimSpace(got) != "/var/cache/app" {
		t.Errorf("import said %q", got)
	}
	mustBuild(c, "--no-cache", "-t", "mnt:3", "--secret", "id=tok,src="+secret, dir)
	if got := c.Must("run", "--rm", "mnt:3", "cat", "/runs"); strings.TrimSpace(got) != "3" {
		t.Errorf("after export/prune/import the cache mount had %q runs, want 3", got)
	}
	// A required secret that was not given.
	r := c.Berth("build", "--no-cache", dir)
	if r.Code != 125 || !strings.Contains(r.Stderr, "secret tok") {
		t.Errorf("missing secret: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestBuildFailingRun: the RUN's exit status and last lines are shown, no
// image is tagged, no build container or mount is left.
func TestBuildFailingRun(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM berth-test/busybox\nRUN echo first-line; echo last-line >&2; exit 3\n",
	})
	r := c.Berth("build", "-t", "fail:1", dir)
	if r.Code != 1 {
		t.Errorf("exit %d, want 1", r.Code)
	}
	if !strings.Contains(r.Stderr, "exit code: 3") || !strings.Contains(r.Stderr, "last-line") || !strings.Contains(r.Stderr, "dockerfile line 2") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if r := c.Berth("image", "inspect", "fail:1"); r.Code == 0 {
		t.Error("fail:1 was tagged")
	}
	if ps := c.Must("ps", "-aq"); strings.TrimSpace(ps) != "" {
		t.Errorf("containers left: %s", ps)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if m := rig.MountsUnder(c.Root); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}

	// A stage that fails stops the stage running beside it: its RUN is
	// killed, not waited for.
	dir = writeContext(t, map[string]string{
		"Dockerfile": "FROM berth-test/busybox AS slow\nRUN echo b-started; sleep 30; echo b-fin\"\"ished\n" +
			"FROM berth-test/busybox AS fast\nRUN sleep 1; exit 5\n" +
			"FROM fast\nCOPY --from=slow /etc/passwd /x\n",
	})
	r = c.Berth("build", dir)
	if r.Code != 1 || !strings.Contains(r.Stderr, "exit code: 5") || strings.Contains(r.Stderr, "b-finished") {
		t.Errorf("exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	if ps := c.Must("ps", "-aq"); strings.TrimSpace(ps) != "" {
		t.Errorf("containers left: %s", ps)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestBuildBadInput: each is a one-line error, exit 125, nothing tagged.
func TestBuildBadInput(t *testing.T) {
	c := rig.NewContainerEnv(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644)
	cases := []struct {
		name, dockerfile, want string
		args                   []string
	}{
		{"unknown instruction", "FROM berth-test/busybox\nFROBNICATE x\n", "line 2: unknown instruction: FROBNICATE", nil},
		{"missing file", "FROM berth-test/busybox\nCOPY nope.txt /\n", "file not found in build context: nope.txt", nil},
		{"dotdot escape", "FROM berth-test/busybox\nCOPY ../x /\n", "outside the build context", nil},
		{"symlink escape", "FROM berth-test/busybox\nCOPY link/secret /\n", "outside the build context", nil},
		{"missing target", "FROM berth-test/busybox AS a\n", `target stage "b" could not be found`, []string{"--target", "b"}},
		{"unset ARG in FROM", "ARG IMG\nFROM $IMG\n", "ARG IMG is not set", nil},
		{"foreign platform", "FROM --platform=linux/s390x berth-test/busybox\n", "not the host's", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile})
			os.Symlink(outside, filepath.Join(dir, "link"))
			r := c.Berth(append(append([]string{"build", "-t", "bad:1"}, tc.args...), dir)...)
			if r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", r.Code, r.Stderr, tc.want)
			}
			if last := lastLine(r.Stderr); !strings.HasPrefix(last, "berth: ") {
				t.Errorf("error line %q", last)
			}
			if r := c.Berth("image", "inspect", "bad:1"); r.Code == 0 {
				t.Error("bad:1 was tagged")
			}
		})
	}
}

// TestBuildStdinAndOutput: a Dockerfile on stdin has no context; -o
// type=local exports the result's files; -q prints only the ID; the
// escape directive; the tty progress view.
func TestBuildStdinAndOutput(t *testing.T) {
	c := rig.NewContainerEnv(t)
	out := filepath.Join(t.TempDir(), "out")
	r := c.BerthIn([]byte("# escape=`\nFROM berth-test/busybox\nRUN echo stdin `\n  > /s.txt\n"), "build", "-q", "-t", "stdin:1", "-o", "type=local,dest="+out, "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	if id := strings.TrimSpace(r.Stdout); id != inspectImage(c, "stdin:1").ID {
		t.Errorf("-q printed %q", r.Stdout)
	}
	if b, err := os.ReadFile(filepath.Join(out, "s.txt")); err != nil || string(b) != "stdin\n" {
		t.Errorf("exported s.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, "bin/busybox")); err != nil {
		t.Errorf("export lacks the base's files: %v", err)
	}
	// --progress tty: a step's output is one line rewritten in place.
	r = c.BerthIn([]byte("FROM berth-test/busybox\nRUN echo live-one; echo live-two\n"), "build", "--progress", "tty", "-")
	if r.Code != 0 || !strings.Contains(r.Stderr, "\r\x1b[K#2 ") || !strings.Contains(r.Stderr, "live-two\r\x1b[K#2 DONE") {
		t.Errorf("--progress tty: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = c.BerthIn([]byte("FROM berth-test/busybox\nCOPY x /\n"), "build", "-")
	if r.Code != 125 || !strings.Contains(r.Stderr, "no context") {
		t.Errorf("COPY without context: exit %d %s", r.Code, r.Stderr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestBuildCacheSurvivesGC: the image store's garbage collection keeps
// the layers of the build cache although no image names them.
func TestBuildCacheSurvivesGC(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"f":          "content\n",
		"Dockerfile": "FROM berth-test/busybox\nCOPY f /f\nRUN cp /f /g\n",
	})
	mustBuild(c, "-t", "gc:1", dir)
	// rmi collects what no image needs.
	c.Must("rmi", "gc:1")
	out := mustBuild(c, "-t", "gc:2", dir)
	if n := countLines(out, "CACHED"); n != 2 {
		t.Errorf("after rmi: %d cached steps, want 2:\n%s", n, out)
	}
	if got := c.Must("run", "--rm", "gc:2", "cat", "/g"); got != "content\n" {
		t.Errorf("/g is %q", got)
	}
}

// TestBuildBindMount: RUN --mount=type=bind reads the context read-only,
// and the step is cached while the bound files stay the same only.
func TestBuildBindMount(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"data/x": "one\n",
		"Dockerfile": "FROM berth-test/busybox\n" +
			"RUN --mount=type=bind,source=data,target=/in cat /in/x > /out && ! touch /in/y 2>/dev/null\n",
	})
	mustBuild(c, "-t", "bind:1", dir)
	if out := mustBuild(c, "-t", "bind:2", dir); countLines(out, "CACHED") != 1 {
		t.Errorf("unchanged bound files: not cached:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "data/x"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustBuild(c, "-t", "bind:3", dir); countLines(out, "CACHED") != 0 {
		t.Errorf("changed bound file: still cached:\n%s", out)
	}
	if got := c.Must("run", "--rm", "bind:3", "cat", "/out"); got != "two\n" {
		t.Errorf("/out is %q", got)
	}
	if r := c.Berth("run", "--rm", "bind:3", "ls", "/in"); r.Code == 0 {
		t.Errorf("the mount point /in is in the image")
	}
}

// TestBuildDockerignore: .dockerignore with a "!" exception decides what
// COPY sees, an ignored file's change does not invalidate the step, and
// <Dockerfile>.dockerignore next to a -f Dockerfile wins.
func TestBuildDockerignore(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		".dockerignore":               "*.log\n!keep.log\n",
		"keep.log":                    "kept\n",
		"drop.log":                    "dropped\n",
		"app.txt":                     "app\n",
		"Dockerfile":                  "FROM berth-test/busybox\nCOPY . /ctx/\n",
		"alt/Dockerfile":              "FROM berth-test/busybox\nCOPY . /ctx/\n",
		"alt/Dockerfile.dockerignore": "app.txt\n",
	})
	mustBuild(c, "-t", "ign:1", dir)
	if got := c.Must("run", "--rm", "ign:1", "ls", "/ctx"); got != "Dockerfile\nalt\napp.txt\nkeep.log\n" {
		t.Errorf("COPY . saw %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "drop.log"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustBuild(c, "-t", "ign:2", dir); countLines(out, "CACHED") != 1 {
		t.Errorf("an ignored file's change invalidated COPY:\n%s", out)
	}
	mustBuild(c, "-t", "ign:3", "-f", filepath.Join(dir, "alt/Dockerfile"), dir)
	got := c.Must("run", "--rm", "ign:3", "ls", "/ctx")
	if strings.Contains(got, "app.txt") || !strings.Contains(got, "drop.log") {
		t.Errorf("with alt/Dockerfile.dockerignore COPY . saw %q", got)
	}
}

// TestBuildPull: a missing base image is pulled; a stored one is used as
// it is unless --pull fetches the registry's current one. The registry
// is go-containerregistry's, on 127.0.0.1.
func TestBuildPull(t *testing.T) {
	c := rig.NewContainerEnv(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/t/base:1"
	c.Must("tag", rig.TestImage, ref)
	c.Must("push", "--tls-verify=false", ref)
	c.Must("rmi", ref)
	dir := writeContext(t, map[string]string{
		"marker":            "new\n",
		"Dockerfile":        "FROM " + ref + "\nLABEL x=y\n",
		"marker.Dockerfile": "FROM " + rig.TestImage + "\nCOPY marker /marker\n",
	})
	mustBuild(c, "-t", "pulled:1", dir)
	if r := c.Berth("image", "inspect", ref); r.Code != 0 {
		t.Fatalf("the base was not pulled: %s", r.Stderr)
	}
	// The registry's tag moves to an image with /marker; the stored tag
	// stays on busybox.
	mustBuild(c, "-t", ref, "-f", filepath.Join(dir, "marker.Dockerfile"), dir)
	c.Must("push", "--tls-verify=false", ref)
	c.Must("tag", rig.TestImage, ref)
	mustBuild(c, "-t", "pulled:2", dir)
	if r := c.Berth("run", "--rm", "pulled:2", "cat", "/marker"); r.Code == 0 {
		t.Errorf("without --pull the build used the registry's image")
	}
	mustBuild(c, "--pull", "-t", "pulled:3", dir)
	if got := c.Must("run", "--rm", "pulled:3", "cat", "/marker"); got != "new\n" {
		t.Errorf("with --pull /marker is %q", got)
	}
}

// TestBuildCacheMountLocked: sharing=locked lets one step at a time use a
// cache mount; the two stages start together and would meet in it.
func TestBuildCacheMountLocked(t *testing.T) {
	c := rig.NewContainerEnv(t)
	run := "RUN --mount=type=cache,id=lk,target=/c,sharing=locked mkdir /c/busy && sleep 2 && rmdir /c/busy\n"
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM berth-test/busybox AS a\n" + run +
			"FROM berth-test/busybox AS b\n" + run +
			"FROM b\nCOPY --from=a /etc/passwd /pa\n",
	})
	mustBuild(c, "-t", "locked:1", dir)
}

// TestBuildKilledLeavesNothing: a build killed while a COPY's overlay is
// mounted leaves that mount; the next build takes it away.
func TestBuildKilledLeavesNothing(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := writeContext(t, map[string]string{
		"f":          "x\n",
		"Dockerfile": "FROM berth-test/busybox\nCOPY f /f\n",
	})
	c.Environ = []string{"BERTH_TEST_CRASH_AT=build-overlay-step"}
	r := c.Berth("build", dir)
	c.Environ = nil
	if m := rig.MountsUnder(c.Data); len(m) == 0 {
		t.Fatalf("the killed build left no mount to clean (exit %d): the crash point was not reached\n%s", r.Code, r.Stderr)
	}
	mustBuild(c, "-t", "after:1", dir)
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left after the next build: %v", m)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Data, "build", "tmp")); len(ents) != 0 {
		t.Errorf("build/tmp keeps %d entries", len(ents))
	}
}
