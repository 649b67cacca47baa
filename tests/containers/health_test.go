package containers

import (
	"archive/tar"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

type healthState struct {
	Status        string
	FailingStreak int
	Log           []struct {
		Start, End time.Time
		ExitCode   int
		Output     string
	}
}

func health(c *rig.ContainerEnv, name string) healthState {
	c.T.Helper()
	var h healthState
	out := c.Field(name, "{{json .State.Health}}")
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		c.T.Fatalf("State.Health of %s: %v: %s", name, err, out)
	}
	return h
}

func waitHealth(c *rig.ContainerEnv, name, status string) healthState {
	c.T.Helper()
	var h healthState
	rig.WaitFor(c.T, name+" "+status, 20*time.Second, func() bool {
		h = health(c, name)
		return h.Status == status
	})
	return h
}

func psNames(c *rig.ContainerEnv, args ...string) string {
	c.T.Helper()
	out := c.Must(append([]string{"ps", "-a", "--format", "{{.Names}}"}, args...)...)
	f := strings.Fields(out)
	return strings.Join(f, " ")
}

// A check of a file the test makes and removes with exec: the container
// turns unhealthy after the retries, healthy again once the file is there,
// and ps, its filter and the event journal follow.
func TestHealthUnhealthyAndBack(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "hc", "--health-cmd", "echo checking; test -e /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "3", rig.TestImage, "sleep", "300")
	c.Must("run", "-d", "--name", "plain", rig.TestImage, "sleep", "300")
	h := waitHealth(c, "hc", "unhealthy")
	if h.FailingStreak < 3 {
		t.Errorf("unhealthy after a streak of %d, want 3 (--health-retries)", h.FailingStreak)
	}
	if n := len(h.Log); n == 0 || n > 5 {
		t.Errorf("log of %d results, want 1 to 5", n)
	}
	last := h.Log[len(h.Log)-1]
	if last.ExitCode != 1 || last.Output != "checking\n" || last.End.Before(last.Start) {
		t.Errorf("last result %+v", last)
	}
	if st := c.PsStatus()["hc"]; !strings.HasSuffix(st, "(unhealthy)") {
		t.Errorf("ps status %q", st)
	}
	if got := psNames(c, "--filter", "health=unhealthy"); got != "hc" {
		t.Errorf("ps --filter health=unhealthy: %q", got)
	}
	if got := psNames(c, "--filter", "health=none"); got != "plain" {
		t.Errorf("ps --filter health=none: %q", got)
	}
	// Enough results that only the last five stay.
	rig.WaitFor(t, "five results", 10*time.Second, func() bool { return len(health(c, "hc").Log) == 5 })
	c.Must("exec", "hc", "touch", "/tmp/ok")
	h = waitHealth(c, "hc", "healthy")
	if h.FailingStreak != 0 || len(h.Log) != 5 {
		t.Errorf("healthy: streak %d, %d results", h.FailingStreak, len(h.Log))
	}
	if st := c.PsStatus()["hc"]; !strings.HasSuffix(st, "(healthy)") {
		t.Errorf("ps status %q", st)
	}
	if got := psNames(c, "--filter", "health=healthy"); got != "hc" {
		t.Errorf("ps --filter health=healthy: %q", got)
	}
	if st := c.PsStatus()["plain"]; strings.Contains(st, "(") {
		t.Errorf("ps status of a container without a check: %q", st)
	}
	ev := c.Must("events", "--since", "1", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10), "--filter", "container=hc", "--format", "{{.Action}}")
	var seen []string
	for _, a := range strings.Split(strings.TrimSpace(ev), "\n") {
		if strings.HasPrefix(a, "health_status") {
			seen = append(seen, a)
		}
	}
	if strings.Join(seen, ",") != "health_status: unhealthy,health_status: healthy" {
		t.Errorf("health events %q (all: %q)", seen, ev)
	}
	c.Must("rm", "-f", "hc", "plain")
}

// Failures in the start period do not count until a check passed; after
// it they do.
func TestHealthStartPeriod(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "sp", "--health-cmd", "false", "--health-interval", "200ms",
		"--health-start-period", "3s", "--health-start-interval", "100ms", "--health-retries", "1", rig.TestImage, "sleep", "300")
	started := time.Now()
	rig.WaitFor(t, "checks in the start period", 10*time.Second, func() bool { return len(health(c, "sp").Log) >= 3 })
	h := health(c, "sp")
	if time.Since(started) < 2*time.Second {
		// Only meaningful while surely in the start period.
		if h.Status != "starting" || h.FailingStreak != 0 {
			t.Errorf("in the start period: %s, streak %d", h.Status, h.FailingStreak)
		}
		if st := c.PsStatus()["sp"]; !strings.HasSuffix(st, "(health: starting)") {
			t.Errorf("ps status %q", st)
		}
	}
	h = waitHealth(c, "sp", "unhealthy")
	if h.FailingStreak < 1 {
		t.Errorf("unhealthy with streak %d", h.FailingStreak)
	}
	if d := time.Since(started); d < 2500*time.Millisecond {
		t.Errorf("unhealthy %v after the start, inside the start period of 3s", d)
	}
	c.Must("rm", "-f", "sp")
}

// A check that hangs is ended at the timeout and counts as a failure.
func TestHealthTimeout(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "hang", "--health-cmd", "sleep 30", "--health-timeout", "300ms",
		"--health-interval", "100ms", "--health-retries", "1", rig.TestImage, "sleep", "300")
	h := waitHealth(c, "hang", "unhealthy")
	r := h.Log[0]
	if r.ExitCode != -1 || !strings.Contains(r.Output, "exceeded timeout") {
		t.Errorf("timed-out result %+v", r)
	}
	if d := r.End.Sub(r.Start); d > 5*time.Second {
		t.Errorf("the check ran %v past its timeout of 300ms", d)
	}
	c.Must("rm", "-f", "hang")
}

// --health-on-failure=restart restarts the container (counted), whatever
// its restart policy; =kill ends it.
func TestHealthOnFailure(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "re", "--health-on-failure", "restart", "--health-cmd", "test -e /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "1", rig.TestImage, "sleep", "300")
	first := c.Field("re", "{{.State.StartedAt}}")
	rig.WaitFor(t, "a restart", 30*time.Second, func() bool {
		return c.Field("re", "{{.RestartCount}} {{.State.Running}}") != "0 true" &&
			c.Field("re", "{{.State.Running}}") == "true" && c.Field("re", "{{.State.StartedAt}}") != first
	})
	// Healthy after the restart, it stays up.
	c.Must("exec", "re", "touch", "/tmp/ok")
	waitHealth(c, "re", "healthy")
	n := c.Field("re", "{{.RestartCount}}")
	time.Sleep(time.Second)
	if got := c.Field("re", "{{.RestartCount}} {{.State.Running}}"); got != n+" true" {
		t.Errorf("healthy, it still restarts: %s (was %s)", got, n)
	}
	c.Must("rm", "-f", "re")

	c.Must("run", "-d", "--name", "ki", "--health-on-failure", "kill", "--health-cmd", "false",
		"--health-interval", "200ms", "--health-retries", "1", rig.TestImage, "sleep", "300")
	rig.WaitFor(t, "the kill", 20*time.Second, func() bool { return c.Field("ki", "{{.State.Status}}") == "exited" })
	if got := c.Field("ki", "{{.State.ExitCode}} {{.RestartCount}}"); got != "137 0" {
		t.Errorf("killed for its health: exit code and restarts %s, want 137 0", got)
	}
	c.Must("rm", "-f", "ki")

	// stop is a stop by the user: --restart always leaves it stopped.
	c.Must("run", "-d", "--name", "st", "--restart", "always", "--stop-timeout", "1", "--health-on-failure", "stop",
		"--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "1", rig.TestImage, "sleep", "300")
	rig.WaitFor(t, "the stop", 20*time.Second, func() bool { return c.Field("st", "{{.State.Status}}") == "exited" })
	time.Sleep(time.Second)
	if got := c.Field("st", "{{.State.Status}} {{.RestartCount}}"); got != "exited 0" {
		t.Errorf("stopped for its health: %s, want exited 0", got)
	}
	c.Must("rm", "-f", "st")
}

// healthImage loads the test image again as berth-test/health with a
// HEALTHCHECK in its config, as docker build would write it.
func healthImage(c *rig.ContainerEnv, test []string) {
	c.T.Helper()
	in, err := os.Open(rig.TestImageTar(c.T))
	if err != nil {
		c.T.Fatal(err)
	}
	defer in.Close()
	outPath := filepath.Join(c.T.TempDir(), "health.tar")
	out, err := os.Create(outPath)
	if err != nil {
		c.T.Fatal(err)
	}
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	var cfgName string
	entries := map[string][]byte{}
	var order []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.T.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			c.T.Fatal(err)
		}
		entries[h.Name], order = b, append(order, h)
	}
	var manifest []map[string]any
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil {
		c.T.Fatal(err)
	}
	cfgName = manifest[0]["Config"].(string)
	manifest[0]["RepoTags"] = []string{"berth-test/health:latest"}
	var cfg map[string]any
	if err := json.Unmarshal(entries[cfgName], &cfg); err != nil {
		c.T.Fatal(err)
	}
	conf, _ := cfg["config"].(map[string]any)
	if conf == nil {
		conf = map[string]any{}
	}
	conf["Healthcheck"] = map[string]any{"Test": test, "Interval": int64(200 * time.Millisecond), "Retries": 1}
	cfg["config"] = conf
	for name, v := range map[string]any{"manifest.json": manifest, cfgName: cfg} {
		b, err := json.Marshal(v)
		if err != nil {
			c.T.Fatal(err)
		}
		entries[name] = b
	}
	for _, h := range order {
		if h.Name == "repositories" {
			continue
		}
		h.Size = int64(len(entries[h.Name]))
		if err := tw.WriteHeader(h); err != nil {
			c.T.Fatal(err)
		}
		if _, err := tw.Write(entries[h.Name]); err != nil {
			c.T.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		c.T.Fatal(err)
	}
	out.Close()
	c.Must("load", "-q", "-i", outPath)
}

// The image's HEALTHCHECK runs; the flags override its fields one by one;
// --no-healthcheck turns it off.
func TestHealthImageAndNoHealthcheck(t *testing.T) {
	c := rig.NewContainerEnv(t)
	healthImage(c, []string{"CMD", "test", "-e", "/tmp/ok"})
	c.Must("run", "-d", "--name", "img", "berth-test/health", "sleep", "300")
	if got := c.Field("img", "{{json .Config.Healthcheck.Test}}"); got != `["CMD","test","-e","/tmp/ok"]` {
		t.Errorf("Config.Healthcheck.Test from the image: %s", got)
	}
	waitHealth(c, "img", "unhealthy")
	c.Must("exec", "img", "touch", "/tmp/ok")
	waitHealth(c, "img", "healthy")

	// A flag replaces its field; the image's command stays.
	c.Must("run", "-d", "--name", "over", "--health-retries", "4", "berth-test/health", "sleep", "300")
	if got := c.Field("over", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}} {{.Config.Healthcheck.Interval}}"); got != `["CMD","test","-e","/tmp/ok"] 4 200000000` {
		t.Errorf("merged healthcheck: %s", got)
	}

	c.Must("run", "-d", "--name", "off", "--no-healthcheck", "berth-test/health", "sleep", "300")
	if got := c.Field("off", "{{json .Config.Healthcheck.Test}}"); got != `["NONE"]` {
		t.Errorf("--no-healthcheck: Config.Healthcheck.Test %s", got)
	}
	time.Sleep(time.Second)
	if got := c.Field("off", "{{json .State.Health}}"); got != "null" {
		t.Errorf("--no-healthcheck: State.Health %s", got)
	}
	if got := psNames(c, "--filter", "health=none"); got != "off" {
		t.Errorf("ps --filter health=none: %q", got)
	}
	if r := c.Berth("healthcheck", "run", "off"); r.Code != 125 {
		t.Errorf("healthcheck run without a check: %+v", r)
	}
	c.Must("rm", "-f", "img", "over", "off")
}

// healthcheck run: 0 when the check passes, 1 when it fails; bad flags
// are refused.
func TestHealthcheckRunAndBadFlags(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "hr", "--health-cmd", "test -e /tmp/ok", "--health-interval", "1h", rig.TestImage, "sleep", "300")
	r := c.Berth("healthcheck", "run", "hr")
	if r.Code != 1 || strings.TrimSpace(r.Stdout) != "unhealthy" {
		t.Errorf("failing healthcheck run: %+v", r)
	}
	if h := health(c, "hr"); len(h.Log) != 1 || h.FailingStreak != 1 || h.Status != "starting" {
		t.Errorf("after one failed run: %+v", h)
	}
	c.Must("exec", "hr", "touch", "/tmp/ok")
	if r := c.Berth("healthcheck", "run", "hr"); r.Code != 0 {
		t.Errorf("passing healthcheck run: %+v", r)
	}
	if h := health(c, "hr"); h.Status != "healthy" || len(h.Log) != 2 {
		t.Errorf("after a passing run: %+v", h)
	}
	if r := c.Berth("healthcheck", "run", "nosuch"); r.Code != 125 {
		t.Errorf("healthcheck run of no container: %+v", r)
	}
	c.Must("rm", "-f", "hr")
	for _, bad := range [][]string{
		{"--health-interval", "soon"}, {"--health-timeout", "-1s"}, {"--health-retries", "-2"},
		{"--health-on-failure", "explode"}, {"--no-healthcheck", "--health-cmd", "true"}, {"--sdnotify", "healthy"},
	} {
		args := append(append([]string{"run", "-d", "--name", "bad"}, bad...), rig.TestImage, "true")
		if r := c.Berth(args...); r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 1 {
			t.Errorf("%v: %+v", bad, r)
		}
		if r := c.Berth("inspect", "bad"); r.Code == 0 {
			t.Errorf("%v left a container behind", bad)
		}
	}
}

// A container in the foreground runs its checks too, from its berth.
func TestHealthForeground(t *testing.T) {
	c := rig.NewContainerEnv(t)
	cmd := c.Cmd("run", "--name", "fg", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "1", rig.TestImage, "sh", "-c", "sleep 1; touch /tmp/ok; sleep 300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	rig.WaitFor(t, "the container", 20*time.Second, func() bool { return c.Berth("inspect", "fg").Code == 0 })
	waitHealth(c, "fg", "unhealthy")
	waitHealth(c, "fg", "healthy")
	c.Must("stop", "-t", "1", "fg")
	select {
	case err := <-done:
		waited = true
		if err == nil || !strings.Contains(err.Error(), "exit status 143") && !strings.Contains(err.Error(), "exit status 137") {
			t.Errorf("foreground berth after stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the foreground berth did not end after stop")
	}
	n := len(health(c, "fg").Log)
	time.Sleep(500 * time.Millisecond)
	if m := len(health(c, "fg").Log); m != n {
		t.Errorf("checks went on after the container stopped: %d then %d results", n, m)
	}
	c.Must("rm", "fg")
}

// notifySocket is a stand-in for systemd's notify socket: the messages it
// gets, in order.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func nextNotify(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no notify message")
	}
	return ""
}

// --sdnotify=healthy: READY=1 comes once the check passed, not at the
// start: from berth itself in the foreground, and under -d (after berth
// run -d named the monitor the main process) from the monitor's check.
func TestHealthSdnotifyHealthy(t *testing.T) {
	c := rig.NewContainerEnv(t)
	sock, msgs := notifySocket(t)
	cmd := c.Cmd("run", "--name", "fg", "--sdnotify=healthy", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
		rig.TestImage, "sh", "-c", "sleep 1; touch /tmp/ok; sleep 300")
	cmd.Env = append(os.Environ(), append(c.Environ, "NOTIFY_SOCKET="+sock)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	m := nextNotify(t, msgs)
	if m != "READY=1\nMAINPID="+strconv.Itoa(cmd.Process.Pid)+"\n" {
		t.Errorf("foreground: notify %q, want READY=1 with berth's pid %d", m, cmd.Process.Pid)
	}
	if h := health(c, "fg"); h.Status != "healthy" || h.Log[0].ExitCode == 0 {
		t.Errorf("READY=1 came before a check passed, or without a failed one first: %+v", h)
	}
	select {
	case m := <-msgs:
		t.Errorf("a second message %q", m)
	case <-time.After(time.Second):
	}
	c.Must("rm", "-f", "fg")

	run := c.Cmd("run", "-d", "--name", "bg", "--sdnotify=healthy", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
		rig.TestImage, "sh", "-c", "sleep 1; touch /tmp/ok; sleep 300")
	run.Env = append(os.Environ(), append(c.Environ, "NOTIFY_SOCKET="+sock)...)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run -d: %v: %s", err, out)
	}
	mon := c.Field("bg", "{{.State.MonitorPid}}")
	if m := nextNotify(t, msgs); m != "MAINPID="+mon+"\n" {
		t.Errorf("run -d: first notify %q, want MAINPID=%s (the monitor)", m, mon)
	}
	if m := nextNotify(t, msgs); m != "READY=1\nMAINPID="+mon+"\n" {
		t.Errorf("run -d: notify %q, want READY=1 from the monitor's check", m)
	}
	if h := health(c, "bg"); h.Status != "healthy" || h.Log[0].ExitCode == 0 {
		t.Errorf("-d: READY=1 came before a check passed, or without a failed one first: %+v", h)
	}
	c.Must("rm", "-f", "bg")
}
