package containers

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// printLines is a shell loop printing "line 1" .. "line N" to stdout,
// with a pause every pauseEvery lines (0: none): bursts of several files,
// so a follower sees the log rotate more than once between two looks.
func printLines(n, pauseEvery int) string {
	pause := ""
	if pauseEvery > 0 {
		pause = fmt.Sprintf("[ $((i %% %d)) -eq 0 ] && sleep 0.2; ", pauseEvery)
	}
	return fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo \"line $i\"; %sdone", n, pause)
}

// wantLines is what printLines prints of lines from..to.
func wantLines(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// logFiles lists the log files of a container: the live one and its
// rotated ones, by name.
func logFiles(t *testing.T, c *rig.ContainerEnv, name string) (string, map[string]os.FileInfo) {
	t.Helper()
	id := c.Field(name, "{{.Id}}")
	live := filepath.Join(c.Data, "containers", id, id+"-json.log")
	if lp := c.Field(name, "{{.LogPath}}"); lp != live && lp != "" {
		t.Fatalf("LogPath %s, want %s", lp, live)
	}
	matches, err := filepath.Glob(live + "*")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]os.FileInfo{}
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(m, live)] = st
	}
	return live, files
}

// suffixOf checks that got is lines k..n of printLines for some k > 1
// (the oldest dropped, the rest whole and in order) and returns k.
func suffixOf(t *testing.T, got string, n int) int {
	t.Helper()
	first, _, _ := strings.Cut(got, "\n")
	k, err := strconv.Atoi(strings.TrimPrefix(first, "line "))
	if err != nil || k <= 1 || got != wantLines(k, n) {
		t.Fatalf("logs: not the last lines of 1..%d in order (first %q, %d bytes)", n, first, len(got))
	}
	return k
}

// A json-file log with max-size rotates at that size (Docker's decimal
// units: 2k is 2000 bytes) into path.1, path.2 ..., and logs reads every
// line back in order across the files, whole and once, and so do --tail
// and -f (which follows the live file across rotations).
func TestLogRotationKeepsEveryLine(t *testing.T) {
	c := rig.NewContainerEnv(t)
	const n = 600
	c.Must("run", "-d", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=100",
		rig.TestImage, "sh", "-c", printLines(n, 100))
	// Followed from the start, while the log rotates under it.
	if got := c.Must("logs", "-f", "rot"); got != wantLines(1, n) {
		t.Errorf("logs -f across rotations: %d bytes, want %d (first difference near %q)", len(got), len(wantLines(1, n)), firstDiff(got, wantLines(1, n)))
	}
	rig.WaitFor(t, "the exit", 10*time.Second, func() bool { return c.Field("rot", "{{.State.Status}}") == "exited" })
	live, files := logFiles(t, c, "rot")
	if len(files) < 10 {
		t.Errorf("%d log files for %d lines of ~70 bytes at max-size 2000, want 20 or so", len(files), n)
	}
	for name, st := range files {
		if st.Size() > 2000 {
			t.Errorf("log file %s%s is %d bytes, past max-size 2000", filepath.Base(live), name, st.Size())
		}
		if name != "" && !regexpRotated(name) {
			t.Errorf("unexpected log file %s", name)
		}
	}
	if got := c.Must("logs", "rot"); got != wantLines(1, n) {
		t.Errorf("logs across rotated files: %d bytes, want %d (first difference near %q)", len(got), len(wantLines(1, n)), firstDiff(got, wantLines(1, n)))
	}
	if got := c.Must("logs", "--tail", "50", "rot"); got != wantLines(n-49, n) {
		t.Errorf("logs --tail 50: %q", got)
	}
	// --since a time after everything: nothing; before: everything.
	if got := c.Must("logs", "--since", "1h", "rot"); got != wantLines(1, n) {
		t.Errorf("logs --since 1h: %d bytes", len(got))
	}
	if got := c.Must("logs", "--until", "1h", "rot"); got != "" {
		t.Errorf("logs --until 1h ago: %q", got)
	}
}

func regexpRotated(suffix string) bool {
	num, _ := strings.CutSuffix(strings.TrimPrefix(suffix, "."), ".gz")
	n, err := strconv.Atoi(num)
	return strings.HasPrefix(suffix, ".") && err == nil && n >= 1
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(i-20, 0)
	return a[lo:min(i+20, len(a))]
}

// max-file keeps that many files, the live one included, dropping the
// oldest; with compress=true the rotated ones are gzip files. logs reads
// what is kept, in order.
func TestLogRotationMaxFileAndCompress(t *testing.T) {
	c := rig.NewContainerEnv(t)
	const n = 400
	c.Must("run", "-d", "--name", "three", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
		rig.TestImage, "sh", "-c", printLines(n, 0))
	c.Must("run", "-d", "--name", "gz", "--log-opt", "max-size=2k", "--log-opt", "max-file=4", "--log-opt", "compress=true",
		rig.TestImage, "sh", "-c", printLines(n, 0))
	c.Must("run", "-d", "--name", "one", "--log-opt", "max-size=2k", rig.TestImage, "sh", "-c", printLines(n, 0))
	for _, name := range []string{"three", "gz", "one"} {
		rig.WaitFor(t, name+"'s exit", 10*time.Second, func() bool { return c.Field(name, "{{.State.Status}}") == "exited" })
	}

	_, files := logFiles(t, c, "three")
	if len(files) != 3 || files[""] == nil || files[".1"] == nil || files[".2"] == nil {
		t.Errorf("max-file=3: files %v, want the live one, .1 and .2", keys(files))
	}
	k := suffixOf(t, c.Must("logs", "three"), n)
	// Three files of at most 2000 bytes hold fewer than 100 lines.
	if n-k+1 > 3*2000/60 {
		t.Errorf("max-file=3 kept %d lines", n-k+1)
	}

	live, files := logFiles(t, c, "gz")
	if len(files) != 4 || files[""] == nil || files[".1.gz"] == nil || files[".2.gz"] == nil || files[".3.gz"] == nil {
		t.Errorf("compress=true: files %v, want the live one, .1.gz, .2.gz and .3.gz", keys(files))
	}
	f, err := os.Open(live + ".1.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf(".1.gz: %v", err)
	}
	plain, err := io.ReadAll(z)
	if err != nil || !bytes.Contains(plain, []byte(`"stream":"stdout"`)) || len(plain) > 2000 {
		t.Errorf(".1.gz holds %d bytes (%v): %.100q", len(plain), err, plain)
	}
	suffixOf(t, c.Must("logs", "gz"), n)

	// max-file=1 (the default): the log is emptied when full.
	_, files = logFiles(t, c, "one")
	if len(files) != 1 || files[""] == nil || files[""].Size() > 2000 {
		t.Errorf("max-file=1: files %v", keys(files))
	}
	suffixOf(t, c.Must("logs", "one"), n)
}

func keys(m map[string]os.FileInfo) []string {
	var k []string
	for name, st := range m {
		k = append(k, fmt.Sprintf("%q:%d", name, st.Size()))
	}
	return k
}

// A container run attached in the foreground (start -a) logs through its
// monitor too, and that log honours max-size while the caller gets every
// line. (A plain foreground `run` keeps no log at all: its output goes
// straight to the caller; TestContainerForegroundKeepsNoLog.)
func TestLogRotationAttached(t *testing.T) {
	c := rig.NewContainerEnv(t)
	const n = 300
	c.Must("create", "--name", "att", "--log-opt", "max-size=3k", "--log-opt", "max-file=50", rig.TestImage, "sh", "-c", printLines(n, 0))
	if got := c.Must("start", "-a", "att"); got != wantLines(1, n) {
		t.Errorf("start -a printed %d bytes, want %d", len(got), len(wantLines(1, n)))
	}
	_, files := logFiles(t, c, "att")
	if len(files) < 5 {
		t.Errorf("attached run: %d log files, want several", len(files))
	}
	for name, st := range files {
		if st.Size() > 3000 {
			t.Errorf("log file %q is %d bytes, past max-size 3000", name, st.Size())
		}
	}
	if got := c.Must("logs", "att"); got != wantLines(1, n) {
		t.Errorf("logs after start -a: %d bytes", len(got))
	}
}

// --log-opt labels=, env= and tag= are attributes of every entry, which
// logs --details shows as Docker does: sorted key=value pairs and a
// space before the line (only the space without attributes).
func TestLogDetails(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "det", "--label", "team=blue", "--label", "other=x", "-e", "STAGE=prod test",
		"--log-opt", "labels=team", "--log-opt", "env=STAGE", "--log-opt", "tag={{.Name}}/{{.ID}}",
		rig.TestImage, "sh", "-c", "echo hello; echo oops >&2")
	c.Must("run", "-d", "--name", "plain", rig.TestImage, "echo", "bare")
	for _, name := range []string{"det", "plain"} {
		rig.WaitFor(t, name+"'s exit", 10*time.Second, func() bool { return c.Field(name, "{{.State.Status}}") == "exited" })
	}
	id := c.Field("det", "{{.Id}}")[:12]
	r := c.Berth("logs", "--details", "det")
	attrs := "STAGE=prod+test,tag=det%2F" + id + ",team=blue "
	if r.Code != 0 || r.Stdout != attrs+"hello\n" || r.Stderr != attrs+"oops\n" {
		t.Errorf("logs --details: exit %d stdout %q stderr %q; want %q", r.Code, r.Stdout, r.Stderr, attrs+"hello\n")
	}
	if got := c.Must("logs", "det"); got != "hello\n" {
		t.Errorf("logs without --details: %q", got)
	}
	if got := c.Must("logs", "--details", "plain"); got != " bare\n" {
		t.Errorf("logs --details without attributes: %q", got)
	}
}

// --log-driver none keeps no log: no file, and logs says the driver has
// no reader (Docker's words), with status 1.
func TestLogDriverNone(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "quiet", "--log-driver", "none", rig.TestImage, "echo", "unseen")
	rig.WaitFor(t, "the exit", 10*time.Second, func() bool { return c.Field("quiet", "{{.State.Status}}") == "exited" })
	_, files := logFiles(t, c, "quiet")
	if len(files) != 0 {
		t.Errorf("--log-driver none left log files %v", keys(files))
	}
	r := c.Berth("logs", "quiet")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "configured logging driver does not support reading") {
		t.Errorf("logs of a none container: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if got := c.Field("quiet", "{{json .HostConfig.LogConfig}}|{{.LogPath}}"); got != `{"Config":{},"Type":"none"}|` {
		t.Errorf("inspect LogConfig|LogPath: %s", got)
	}
}

// inspect shows the driver and its options; the default is a json-file
// with no options (README: no size limit, as Docker).
func TestLogConfigInspect(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "opts", "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "--log-opt", "compress=true", rig.TestImage, "true")
	c.Must("create", "--name", "dflt", rig.TestImage, "true")
	if got := c.Field("opts", "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}} {{index .HostConfig.LogConfig.Config \"compress\"}}"); got != "json-file 10m 3 true" {
		t.Errorf("inspect LogConfig: %q", got)
	}
	if got := c.Field("dflt", "{{json .HostConfig.LogConfig}}"); got != `{"Config":{},"Type":"json-file"}` {
		t.Errorf("default LogConfig: %s", got)
	}
}

// Bad --log-driver and --log-opt values: a one-line error, status 125,
// and no container left.
func TestLogOptsRefused(t *testing.T) {
	c := rig.NewContainerEnv(t)
	for _, args := range [][]string{
		{"--log-opt", "max-size=abc"},
		{"--log-opt", "max-size=0"},
		{"--log-opt", "max-size=-1"},
		{"--log-opt", "max-file=0"},
		{"--log-opt", "max-file=two"},
		{"--log-opt", "compress=maybe"},
		{"--log-opt", "compress=true", "--log-opt", "max-size=1m"},
		{"--log-opt", "compress=true", "--log-opt", "max-file=3"},
		{"--log-opt", "nonsense=1"},
		{"--log-opt", "max-size"},
		{"--log-opt", "tag={{.Nope}}"},
		{"--log-opt", "tag={{"},
		{"--log-opt", "labels-regex=("},
		{"--log-driver", "k8s-file"},
		{"--log-driver", "syslog"},
		{"--log-driver", "journald", "--log-opt", "max-size=1m"},
		{"--log-driver", "none", "--log-opt", "tag=x"},
	} {
		for _, cmd := range []string{"create", "run"} {
			r := c.Berth(append(append([]string{cmd, "--name", "bad"}, args...), rig.TestImage, "true")...)
			if r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || r.Stderr == "" {
				t.Errorf("%s %v: exit %d stderr %q; want 125 and one line", cmd, args, r.Code, r.Stderr)
			}
		}
	}
	if out := c.Must("ps", "-aq"); out != "" {
		t.Errorf("refused creates left containers: %q", out)
	}
}

// journald through a real journald: a namespaced systemd-journald
// (systemd-journald NAME listens on /run/systemd/journal.NAME/socket and
// keeps its own files) started by the test, which berth is pointed at by
// BERTH_JOURNAL_NAMESPACE. The entries carry Docker's fields, and logs
// reads them back through journalctl, stdout and stderr apart, with
// --tail and -f.
func TestLogDriverJournald(t *testing.T) {
	bin := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("BERTH_VM") == "1" {
			t.Skip("the VM's busybox userland has no systemd-journald: the host runs this test, and tests/systemd's TestJournaldLogDriver the system journal in the systemd VM")
		}
		t.Fatalf("%s: %v (make deps installs systemd)", bin, err)
	}
	ns := fmt.Sprintf("berth-t%d", os.Getpid())
	machineID, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		t.Fatal(err)
	}
	runDir := "/run/systemd/journal." + ns
	t.Cleanup(func() {
		os.RemoveAll(runDir)
		for _, d := range []string{"/var/log/journal", "/run/log/journal"} {
			os.RemoveAll(filepath.Join(d, strings.TrimSpace(string(machineID))+"."+ns))
		}
	})
	jd := exec.Command(bin, ns)
	var jdOut bytes.Buffer
	jd.Stdout, jd.Stderr = &jdOut, &jdOut
	if err := jd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = jd.Process.Signal(unix.SIGTERM)
		done := make(chan struct{})
		go func() { _ = jd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = jd.Process.Kill()
			<-done
		}
	})
	rig.WaitFor(t, "journald's socket", 10*time.Second, func() bool {
		_, err := os.Stat(runDir + "/socket")
		return err == nil
	})
	c := rig.NewContainerEnv(t)
	c.Environ = append(c.Environ, "BERTH_JOURNAL_NAMESPACE="+ns)
	c.Must("run", "-d", "--name", "jl", "--log-driver", "journald", "--label", "team=blue", "--log-opt", "labels=team",
		rig.TestImage, "sh", "-c", "echo out one; echo err one >&2; sleep 0.3; echo out two")
	id := c.Field("jl", "{{.Id}}")
	// Followed until the container ends.
	if got := c.Must("logs", "-f", "jl"); got != "out one\nout two\n" {
		t.Errorf("logs -f: %q (journald: %s)", got, jdOut.String())
	}
	r := c.Berth("logs", "jl")
	if r.Code != 0 || r.Stdout != "out one\nout two\n" || r.Stderr != "err one\n" {
		t.Errorf("logs: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if got := c.Must("logs", "--tail", "1", "jl"); got != "out two\n" {
		t.Errorf("logs --tail 1: %q", got)
	}
	if got := c.Must("logs", "--since", "1h", "jl"); got != "out one\nout two\n" {
		t.Errorf("logs --since 1h: %q", got)
	}
	if got := c.Must("logs", "--until", "1h", "jl"); got != "" {
		t.Errorf("logs --until 1h (ago): %q", got)
	}
	if got := c.Must("logs", "-t", "--tail", "1", "jl"); !strings.HasSuffix(got, "Z out two\n") || len(got) < 30 {
		t.Errorf("logs -t --tail 1: %q", got)
	}
	// --details: the attributes --log-opt labels= added, as journal fields.
	if got := c.Must("logs", "--details", "jl"); got != "TEAM=blue out one\nTEAM=blue out two\n" {
		t.Errorf("logs --details: %q", got)
	}
	out, err := exec.Command("journalctl", "--namespace="+ns, "-o", "export", "CONTAINER_ID_FULL="+id).Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		fields[l] = true
	}
	for _, f := range []string{"CONTAINER_ID=" + id[:12], "CONTAINER_ID_FULL=" + id, "CONTAINER_NAME=jl", "CONTAINER_TAG=" + id[:12],
		"SYSLOG_IDENTIFIER=" + id[:12], "MESSAGE=out one", "MESSAGE=err one", "PRIORITY=6", "PRIORITY=3", "TEAM=blue"} {
		if !fields[f] {
			t.Errorf("journal entries lack %s:\n%s", f, out)
		}
	}
}

// With no journald listening, a journald container does not start (as
// Docker's driver refuses it): status 125 and the reason.
func TestLogDriverJournaldAbsent(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Environ = append(c.Environ, fmt.Sprintf("BERTH_JOURNAL_NAMESPACE=berth-absent-%d", os.Getpid()))
	r := c.Berth("run", "-d", "--name", "nojd", "--log-driver", "journald", rig.TestImage, "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "journald is not enabled on this host") {
		t.Errorf("run -d with no journald: exit %d stderr %q", r.Code, r.Stderr)
	}
	if st := c.Field("nojd", "{{.State.Status}}"); st != "created" {
		t.Errorf("state %q, want created (Docker's state after a failed start)", st)
	}
}

// logs while the log rotates under it: each read is lines 1..m, whole, in
// order, with none missing or twice, whatever rotations came between
// its listing of the files and its reading them.
func TestLogsWhileRotating(t *testing.T) {
	c := rig.NewContainerEnv(t)
	const n = 4000
	c.Must("run", "-d", "--name", "busy", "--log-opt", "max-size=1k", "--log-opt", "max-file=1000",
		rig.TestImage, "sh", "-c", printLines(n, 0))
	reads := 0
	for c.Field("busy", "{{.State.Status}}") == "running" {
		got := c.Must("logs", "busy")
		reads++
		if got == "" {
			continue
		}
		last := got[strings.LastIndex(strings.TrimSuffix(got, "\n"), "\n")+1:]
		m, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(last, "line ")))
		if err != nil || got != wantLines(1, m) {
			t.Fatalf("read %d while rotating: not lines 1..m in order (%d bytes, near %q)", reads, len(got), firstDiff(got, wantLines(1, max(m, 1))))
		}
	}
	if got := c.Must("logs", "busy"); got != wantLines(1, n) {
		t.Errorf("logs at the end: %d bytes, want %d", len(got), len(wantLines(1, n)))
	}
	t.Logf("%d reads while the container wrote", reads)
}
