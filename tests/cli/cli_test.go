package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// leafCommands walks berth's command tree through --help: every command
// a user can run, as its words ("volume", "rm"). A new command is in the
// list without anyone adding it.
func leafCommands(t *testing.T, c *rig.ContainerEnv) [][]string {
	t.Helper()
	var walk func(path []string) [][]string
	walk = func(path []string) [][]string {
		out := c.Must(append(path, "--help")...)
		_, cmds, ok := strings.Cut(out, "COMMANDS:\n")
		if !ok {
			return [][]string{path}
		}
		var leaves [][]string
		for _, l := range strings.Split(cmds, "\n") {
			if !strings.HasPrefix(l, "   ") || strings.TrimSpace(l) == "" {
				break
			}
			name := strings.TrimSuffix(strings.Fields(l)[0], ",")
			if name == "help" {
				continue
			}
			leaves = append(leaves, walk(append(slices.Clone(path), name))...)
		}
		return leaves
	}
	leaves := walk(nil)
	if len(leaves) < 60 {
		t.Fatalf("found only %d commands: %q", len(leaves), leaves)
	}
	return leaves
}

// passthrough are the commands whose words after the first argument
// are the container's command line, as in Docker.
func passthrough(path []string) bool {
	last := path[len(path)-1]
	return last == "run" && path[0] != "oci" || last == "create" && path[0] != "oci" || last == "exec" || last == "top"
}

// Every command takes its flags after its arguments too, and a flag it
// does not know is a usage error: one line on stderr, a hint, 125.
func TestFlagsAnywhereAndUsageErrors(t *testing.T) {
	c := rig.NewContainerEnv(t)
	for _, path := range leafCommands(t, c) {
		name := strings.Join(path, " ")
		if !passthrough(path) {
			r := c.Berth(append(slices.Clone(path), "some-arg", "--help")...)
			if r.Code != 0 || !strings.Contains(r.Stdout, "USAGE:") {
				t.Errorf("%s some-arg --help: exit %d stdout %.80q stderr %q", name, r.Code, r.Stdout, r.Stderr)
			}
		}
		r := c.Berth(append(slices.Clone(path), "--no-such-flag")...)
		if path[len(path)-1] == "top" {
			// top's words are ps's; the first must name a container.
			r = c.Berth(append(slices.Clone(path), "--help")...)
			if r.Code != 0 || !strings.Contains(r.Stdout, "USAGE:") {
				t.Errorf("%s --help: exit %d stderr %q", name, r.Code, r.Stderr)
			}
			continue
		}
		if !rig.UsageError(r) || !strings.Contains(r.Stderr, "no-such-flag") || !strings.Contains(r.Stderr, "See 'berth "+name+" --help'.") {
			t.Errorf("%s --no-such-flag: exit %d stdout %q stderr %q", name, r.Code, r.Stdout, r.Stderr)
		}
	}
	// A script capturing an id gets nothing on stdout from a bad line.
	if r := c.Berth("run", "-d", "--bogus", rig.TestImage); !rig.UsageError(r) {
		t.Errorf("run -d --bogus: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	for _, args := range [][]string{{"pss"}, {"volume", "lss"}, {"image", "lss", "-q"}} {
		r := c.Berth(args...)
		var want string
		if len(args) > 1 {
			want = "'" + args[1] + "' is not a berth " + args[0] + " command"
		} else {
			want = "'" + args[0] + "' is not a berth command"
		}
		if !rig.UsageError(r) || !strings.Contains(r.Stderr, want) {
			t.Errorf("%q: exit %d stdout %q stderr %q, want %q", args, r.Code, r.Stdout, r.Stderr, want)
		}
	}
	// run, exec: after the image or container, words are the container's.
	if out := c.Must("run", "--rm", rig.TestImage, "echo", "--rm", "-d", "--help"); out != "--rm -d --help\n" {
		t.Errorf("run IMAGE echo --rm -d --help printed %q", out)
	}
	c.Must("run", "-d", "--name", "px", rig.TestImage, "sleep", "600")
	if out := c.Must("exec", "px", "echo", "-t", "--help"); out != "-t --help\n" {
		t.Errorf("exec CTR echo -t --help printed %q", out)
	}
	c.Must("rm", "-f", "px")
}

// The lines the issue names, as a user types them.
func TestFlagsAfterArguments(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "web", rig.TestImage, "sh", "-c", "echo one; echo two; exec sleep 600")
	rig.WaitFor(t, "web's output", 10*time.Second, func() bool { return strings.Contains(c.Berth("logs", "web").Stdout, "two") })
	done := make(chan rig.Result, 1)
	go func() { done <- c.Berth("logs", "web", "-f", "--tail", "1") }()
	time.Sleep(300 * time.Millisecond)
	if out := c.Must("inspect", "web", "-f", "{{.Name}} {{.State.Running}}"); out != "/web true\n" {
		t.Errorf("inspect web -f: %q", out)
	}
	start := time.Now()
	if out := c.Must("stop", "web", "-t", "1"); out != "web\n" {
		t.Errorf("stop web -t 1: %q", out)
	}
	// sleep as pid 1 ignores SIGTERM: only -t 1 ends it this soon.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop web -t 1 took %v: -t was not read", d)
	}
	select {
	case r := <-done:
		if r.Code != 0 || r.Stdout != "two\n" {
			t.Errorf("logs web -f --tail 1: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("logs -f did not end when the container stopped")
	}
	// login reads its flags after the registry: it gets as far as asking
	// the registry (nothing listens on port 1).
	r := c.BerthIn([]byte("secret\n"), "login", "127.0.0.1:1", "-u", "alice", "--password-stdin")
	if r.Code == 0 || strings.Contains(r.Stderr, "flag") || strings.Contains(r.Stderr, "See 'berth") || !strings.Contains(r.Stderr, "127.0.0.1:1") {
		t.Errorf("login HOST -u alice --password-stdin: exit %d stderr %q", r.Code, r.Stderr)
	}
}

// --format json prints JSON on every command that has it; templates
// print integers as integers and have Docker's functions.
func TestFormat(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("volume", "create", "fv")
	c.Must("run", "-d", "--name", "fmt", "-m", "64m", "--shm-size", "1g", "--sysctl", "net.ipv4.ip_forward=1",
		"--oom-score-adj", "100", rig.TestImage, "sleep", "600")
	for _, args := range [][]string{
		{"ps", "-a"}, {"images"}, {"stats", "--no-stream"}, {"volume", "ls"}, {"info"}, {"version"}, {"system", "df"},
		{"container", "ls"}, {"image", "ls"},
	} {
		out := c.Must(append(args, "--format", "json")...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil || len(v) == 0 {
				t.Errorf("%q --format json: line %q: %v", args, l, err)
			}
		}
	}
	for _, args := range [][]string{{"inspect", "fmt"}, {"inspect", "fmt", "--format", "json"}, {"inspect", "fv"}, {"image", "inspect", rig.TestImage}} {
		var v []map[string]any
		if err := json.Unmarshal([]byte(c.Must(args...)), &v); err != nil || len(v) != 1 {
			t.Errorf("%q: %v", args, err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.ShmSize}} {{.HostConfig.OomScoreAdj}}", "fmt"}, "67108864 1073741824 100\n"},
		{[]string{"inspect", "-f", `{{index .HostConfig.Sysctls "net.ipv4.ip_forward"}} {{.HostConfig.IpcMode}} {{json .HostConfig.LogConfig.Type}}`, "fmt"}, "1 private \"json-file\"\n"},
		{[]string{"ps", "--format", `{{upper .Names}}|{{truncate .Names 2}}|{{pad .Names 1 1}}|{{title "a b"}}|{{join (split "x-y" "-") "+"}}|{{lower "Q"}}`}, "FMT|fm| fmt |A B|x+y|q\n"},
		{[]string{"volume", "ls", "--format", "{{.Name}}"}, "fv\n"},
		{[]string{"info", "--format", "{{.Containers}} {{.ContainersRunning}}"}, "1 1\n"},
		{[]string{"ps", "--format", "table {{.Names}}"}, "NAMES\nfmt\n"},
	} {
		if out := c.Must(tc.args...); out != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, out, tc.want)
		}
	}
	if n := strings.TrimSpace(c.Must("info", "--format", "{{.MemTotal}}")); strings.ContainsAny(n, "e.") || n == "0" {
		t.Errorf("info MemTotal %q: not an integer", n)
	}
	// inspect of nothing prints an empty list, names what is missing, 1.
	r := c.Berth("inspect", "nope")
	if r.Code != 1 || r.Stdout != "[]\n" || r.Stderr != "berth: no such object: nope\n" {
		t.Errorf("inspect nope: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := c.Berth("ps", "--format", "{{.Nope"); !rig.UsageError(r) && (r.Code != 125 || r.Stdout != "") {
		t.Errorf("ps with a broken template: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	c.Must("rm", "-f", "fmt")
}

// inspect shows Docker's field names for what berth supports.
func TestInspectFields(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "f", rig.TestImage, "true")
	var v []map[string]map[string]any
	var top []map[string]json.RawMessage
	out := c.Must("inspect", "f")
	if err := json.Unmarshal([]byte(out), &top); err != nil || len(top) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	for _, k := range []string{"Id", "Created", "Path", "Args", "State", "Image", "LogPath", "Name", "RestartCount",
		"Driver", "Platform", "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"} {
		if _, ok := top[0][k]; !ok {
			t.Errorf("inspect has no %s", k)
		}
	}
	_ = json.Unmarshal([]byte(out), &v)
	want := map[string][]string{
		"HostConfig": {"Binds", "NetworkMode", "RestartPolicy", "AutoRemove", "Privileged", "ReadonlyRootfs", "CapAdd", "CapDrop",
			"SecurityOpt", "Init", "CgroupParent", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
			"CpusetCpus", "CpusetMems", "PidsLimit", "Ulimits", "ShmSize", "PidMode", "IpcMode", "UTSMode", "GroupAdd",
			"OomScoreAdj", "OomKillDisable", "BlkioWeight", "LogConfig", "Runtime"},
		"State": {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error", "StartedAt", "FinishedAt"},
		"Config": {"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "Env",
			"Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint", "Labels"},
	}
	for part, keys := range want {
		for _, k := range keys {
			if _, ok := v[0][part][k]; !ok {
				t.Errorf("inspect .%s has no %s", part, k)
			}
		}
	}
	// Indented as Docker does: four spaces.
	if !strings.HasPrefix(out, "[\n    {\n        \"Id\": ") {
		t.Errorf("inspect is not indented as Docker's: %.40q", out)
	}
}

// The bash completion script, sourced by bash, completes commands,
// flags and container names.
func TestCompletion(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "complete-me", rig.TestImage, "true")
	dir := t.TempDir()
	if err := os.Symlink(rig.BerthBin, filepath.Join(dir, "berth")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "berth.bash")
	if err := os.WriteFile(script, []byte(c.Must("completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		line := append([]string{"berth", "--root", c.Root, "--data-root", c.Data}, words...)
		var quoted []string
		for _, w := range line {
			quoted = append(quoted, "'"+w+"'")
		}
		sh := "source " + script + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
			rig.Itoa(len(line)-1) + "; _berth_complete; printf '%s\\n' \"${COMPREPLY[@]}\""
		cmd := exec.Command("bash", "-c", sh)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v %s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := complete("start", "compl"); !slices.Equal(got, []string{"complete-me"}) {
		t.Errorf("start compl<TAB>: %q", got)
	}
	if got := complete("ins"); !slices.Equal(got, []string{"inspect"}) {
		t.Errorf("ins<TAB>: %q", got)
	}
	if got := complete("logs", "--ta"); !slices.Equal(got, []string{"--tail"}) {
		t.Errorf("logs --ta<TAB>: %q", got)
	}
	if got := complete("volume", "p"); !slices.Equal(got, []string{"prune"}) {
		t.Errorf("volume p<TAB>: %q", got)
	}
	for _, sh := range []string{"zsh", "fish"} {
		if out := c.Must("completion", sh); !strings.Contains(out, "--generate-bash-completion") {
			t.Errorf("completion %s: %.80q", sh, out)
		}
	}
	if r := c.Berth("completion", "tcsh"); !rig.UsageError(r) {
		t.Errorf("completion tcsh: exit %d stderr %q", r.Code, r.Stderr)
	}
}

// The man pages come from the command definitions, by a separate build,
// and man renders them.
func TestManPages(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Fatal("man is not installed (make deps installs man-db)")
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "berth-docs")
	build := exec.Command("go", "build", "-tags", "docsgen", "-o", gen, ".")
	build.Dir = rig.RepoDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the generator: %v %s", err, out)
	}
	if out, err := exec.Command(gen, filepath.Join(dir, "man")).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v %s", err, out)
	}
	for _, page := range []string{"berth", "berth-run", "berth-volume", "berth-logs"} {
		cmd := exec.Command("man", "-l", filepath.Join(dir, "man", page+".1"))
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "NAME") || !strings.Contains(string(out), page) {
			t.Errorf("man -l %s.1: %v %.200s", page, err, out)
		}
	}
	cmd := exec.Command("man", "-l", filepath.Join(dir, "man", "berth-logs.1"))
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=100")
	if out, _ := cmd.Output(); !strings.Contains(string(out), "--follow") || !strings.Contains(string(out), "--tail") {
		t.Errorf("berth-logs.1 does not list logs' flags: %.300s", out)
	}
}

// Flags berth shows do what they say, or are refused with a reason.
func TestFlagsDoWhatTheySay(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "sz", rig.TestImage, "sh", "-c", "head -c 300000 /dev/zero > /big; exec sleep 600")
	rig.WaitFor(t, "the container's file", 10*time.Second, func() bool {
		return c.Berth("exec", "sz", "test", "-s", "/big").Code == 0
	})
	out := strings.Fields(c.Must("inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "sz"))
	if len(out) != 2 {
		t.Fatalf("inspect --size: %q", out)
	}
	rw, err1 := strconv.ParseInt(out[0], 10, 64)
	root, err2 := strconv.ParseInt(out[1], 10, 64)
	if err1 != nil || err2 != nil || rw < 300000 || root <= rw {
		t.Errorf("inspect --size: SizeRw %q SizeRootFs %q: want the 300000-byte file, and the image on top", out[0], out[1])
	}
	if out := c.Must("inspect", "-f", "{{.SizeRw}}", "sz"); out != "<no value>\n" {
		t.Errorf("inspect without --size shows SizeRw %q", out)
	}
	// (logs --details works now: tests/containers TestLogDetails.)
	// (exec --detach-keys works now: tests/containers TestExecDetachKeys.)
	// attach passes the signals it gets on to the container.
	c.Must("run", "-d", "--name", "trap", rig.TestImage, "sh", "-c", "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.1; done")
	att := c.Cmd("attach", "trap")
	var buf strings.Builder
	att.Stdout = &buf
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := att.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err := att.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(buf.String(), "got-usr1") {
		t.Errorf("attach with a USR1: %v, output %q", err, buf.String())
	}
	c.Must("rm", "-f", "sz", "trap")
}
