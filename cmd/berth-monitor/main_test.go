package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
)

// The test binary stands in for the program: run with this variable set,
// it is berth-monitor; set to "reap", it waits for the container as on a
// kernel without pidfds.
const asMain = "BERTH_MONITOR_TEST_MAIN"

func TestMain(m *testing.M) {
	switch os.Getenv(asMain) {
	case "1":
		main()
		return
	case "reap":
		monitorcore.NoPidfd = true
		main()
		return
	}
	os.Exit(m.Run())
}

func frame(kind byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(len(data)))
	return append(b, data...)
}

// TestCopiesServesWaitsAndHandsBack runs the program as berth would leave
// it: parent of a running container with its pipes, a log and an attach
// socket. A client's input reaches the container, its output reaches the
// log and the client, the client gets the exit status, and the program
// execs the berth command line with the status in its environment.
func TestCopiesServesWaitsAndHandsBack(t *testing.T) {
	t.Run("pidfd", func(t *testing.T) { testCopiesServesWaitsAndHandsBack(t, "1") })
	t.Run("reap", func(t *testing.T) { testCopiesServesWaitsAndHandsBack(t, "reap") })
}

func testCopiesServesWaitsAndHandsBack(t *testing.T, mode string) {
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "c-json.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	inR, inW, _ := os.Pipe()
	sock, lf := attachSocket(t, dir)
	result := filepath.Join(dir, "result")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stderrf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderrf.Close()
	// The shell starts the "container" with the container ends of the
	// pipes, then becomes the monitor: so the container is
	// its child.
	script := `(exec 3>&- 4<&- 5<&- 6>&- 7<&- 8>&-; exec sh -c 'read x; echo "got $x"; echo oops >&2; exit 7' <&9 9<&-) &
exec "$0" __monitor lean test-id pid=$! log=3 out=4 err=5 in=6 console=-1 listen=7 berth=/bin/sh -- sh -c 'echo "$BERTH_MONITOR_EXIT $BERTH_MONITOR_FINISHED $KEEP" > "$1"' sh "$1" </dev/null >/dev/null 2>&8 8>&- 9<&-`
	cmd := exec.Command("/bin/sh", "-c", script, self, result)
	cmd.Env = append(os.Environ(), asMain+"="+mode, "KEEP=kept")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	// A background job's stdin is /dev/null: the container's goes as 9.
	cmd.ExtraFiles = []*os.File{logf, outR, errR, inW, lf, stderrf, inR}
	stderr := func() string {
		b, _ := os.ReadFile(stderrf.Name())
		return string(b)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	defer func() {
		if !done {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	for _, f := range []*os.File{outR, outW, errR, errW, inR, inW, lf} {
		f.Close()
	}

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	// The container waits for its input: the monitor is set up by now.
	if got, want := watchesByPidfd(t, cmd.Process.Pid), mode != "reap"; got != want {
		t.Errorf("monitor holds a pidfd: %v, want %v", got, want)
	}
	if _, err := c.Write(frame(proto.FrameStdin, []byte("hello\n"))); err != nil {
		t.Fatal(err)
	}
	got, code := readFrames(t, c, stderr)
	if got[proto.FrameStdout] != "got hello\n" || got[proto.FrameStderr] != "oops\n" || code != 7 {
		t.Errorf("client got stdout %q, stderr %q, exit %d; want %q, %q, 7", got[proto.FrameStdout], got[proto.FrameStderr], code, "got hello\n", "oops\n")
	}
	err = cmd.Wait()
	done = true
	if err != nil {
		t.Fatalf("monitor, then the command it handed back to: %v (stderr %q)", err, stderr())
	}
	res, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("the berth command line did not run: %v (stderr %q)", err, stderr())
	}
	f := strings.Fields(string(res))
	if len(f) != 3 || f[0] != "7" || f[2] != "kept" {
		t.Fatalf("handed back %q, want status 7, a time and the environment kept", res)
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || time.Since(time.Unix(0, ns)) > time.Minute || time.Until(time.Unix(0, ns)) > 0 {
		t.Errorf("finish time %q is not a recent past", f[1])
	}

	raw, err := os.ReadFile(logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e struct{ Log, Stream string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		streams = append(streams, e.Stream+":"+e.Log)
	}
	joined := strings.Join(streams, "|")
	if len(streams) != 2 || !strings.Contains(joined, "stdout:got hello\n") || !strings.Contains(joined, "stderr:oops\n") {
		t.Errorf("log entries %q", streams)
	}
}

// attachSocket listens on an attach socket in dir (closed when the test
// ends) and returns its path and a copy of its descriptor to hand over.
func attachSocket(t *testing.T, dir string) (string, *os.File) {
	t.Helper()
	path := filepath.Join(dir, "attach.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	lf, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return path, lf
}

// readFrames reads what the monitor sends a client until it hangs up:
// the output by stream, and the exit status (-1: none came). stderr says
// what the program complained of, for a failure.
func readFrames(t *testing.T, c io.Reader, stderr func() string) (map[byte]string, int) {
	t.Helper()
	got := map[byte]string{}
	code := -1
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			if err != io.EOF {
				t.Fatalf("read frame: %v (got %q, stderr %q)", err, got, stderr())
			}
			return got, code
		}
		data := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(c, data); err != nil {
			t.Fatal(err)
		}
		if hdr[0] == proto.FrameExit {
			code = int(binary.BigEndian.Uint32(data))
			continue
		}
		got[hdr[0]] += string(data)
	}
}

// watchesByPidfd waits until the monitor pid has accepted the one client
// (its second socket) and tells whether it holds a pidfd then.
func watchesByPidfd(t *testing.T, pid int) bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("monitor's descriptors: %v", err)
		}
		sockets, pidfd := 0, false
		for _, e := range ents {
			l, _ := os.Readlink(filepath.Join(dir, e.Name()))
			if strings.HasPrefix(l, "socket:") {
				sockets++
			}
			pidfd = pidfd || l == "anon_inode:[pidfd]"
		}
		if sockets >= 2 {
			return pidfd
		}
	}
	t.Fatal("the monitor never accepted the client")
	return false
}

func TestRefusesBadArguments(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"__monitor", "lean", "x"},
		{"__monitor", "lean", "x", "pid=1", "--", "true"},
		{"__monitor", "lean", "x", "pid=abc", "log=3", "out=-1", "err=-1", "in=-1", "console=-1", "listen=-1", "berth=/bin/true", "--", "true"},
	} {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), asMain+"=1")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.HasPrefix(string(out), "berth-monitor: ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%q: err %v, output %q; want a one-line complaint and a failure", args, err, out)
		}
	}
}

// The number helpers stand in for strconv: they must agree with it on
// what the program reads and writes.
func TestNumbersAgreeWithStrconv(t *testing.T) {
	for _, s := range []string{"0", "7", "-1", "123456789", "-987654321", "", "-", "1x", "+1", "1234567890", "123456789012345678", "1234567890123456789", " 1"} {
		n, ok := atoi(s)
		want, err := strconv.Atoi(s)
		if wantOK := err == nil && len(strings.TrimPrefix(s, "-")) <= 18 && s[0] != '+'; ok != wantOK || ok && n != want {
			t.Errorf("atoi(%q) = %d, %v; strconv says %d, %v", s, n, ok, want, err)
		}
	}
	for _, n := range []int64{0, 1, -1, 42, -255, 1<<63 - 1, -1 << 63, time.Now().UnixNano()} {
		if got, want := itoa(n), strconv.FormatInt(n, 10); got != want {
			t.Errorf("itoa(%d) = %q, want %q", n, got, want)
		}
	}
}

// The check's command line keeps berth's global flags and names the
// container.
func TestHealthArgv(t *testing.T) {
	berth := []string{"berth-monitor", "--root", "/r", "--data-root", "/d", "__monitor", "--wait-attach", "abc"}
	args := []string{"berth-monitor", "__monitor", "lean", "abc", "pid=1", "hint=30000", "--"}
	got := strings.Join(healthArgv(berth, args), " ")
	if got != "berth-monitor --root /r --data-root /d __health --monitor abc" {
		t.Errorf("healthArgv: %q", got)
	}
	if healthArgv([]string{"berth"}, args) != nil {
		t.Error("healthArgv without the monitor command")
	}
}
