package monitorcore

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	proto "github.com/berth-project/berth/internal/monitorproto"
)

// openFDs lists this process's open descriptors.
func openFDs(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

// rawFD is a copy of f's descriptor that Run may own and close.
func rawFD(t *testing.T, f interface {
	SyscallConn() (syscall.RawConn, error)
}) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { n, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3) }); err != nil {
		t.Fatal(err)
	}
	if derr != nil {
		t.Fatal(derr)
	}
	return n
}

// Run in-process, as berth's own monitor runs it: a client accepted
// before Run gets the output and the exit status, its input reaches the
// container, the log gets the lines, and every descriptor Run was given
// is closed when it returns (berth goes on running, so one left open
// would leak, and one closed twice could close another's).
func TestRunServesAcceptedClientAndClosesAll(t *testing.T) {
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "c-json.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	inR, inW, _ := os.Pipe()
	cmd := exec.Command("/bin/sh", "-c", `read x; echo "got $x"; echo oops >&2; exit 7`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{inR, outW, errW} {
		f.Close()
	}
	before := openFDs(t)
	c := Config{Pid: cmd.Process.Pid, Log: rawFD(t, logf), Out: rawFD(t, outR), Err: rawFD(t, errR), In: rawFD(t, inW),
		Console: -1, Listen: rawFD(t, l), Clients: []int{rawFD(t, accepted)}}
	given := []int{c.Log, c.Out, c.Err, c.In, c.Listen, c.Clients[0]}
	// Run has its copies, as berth hands them over.
	for _, f := range []io.Closer{outR, errR, inW, accepted} {
		f.Close()
	}
	// The client writes before Run reads: it waits in the socket.
	frame := append([]byte{proto.FrameStdin, 0, 0, 0, 6}, "hello\n"...)
	frame = append(frame, proto.FrameCloseStdin, 0, 0, 0, 0)
	if _, err := client.Write(frame); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code     int
		finished int64
		err      error
	}
	done := make(chan result, 1)
	go func() {
		code, finished, err := Run(c)
		done <- result{code, finished, err}
	}()
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
	var stdout, stderr bytes.Buffer
	exit := -1
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			break
		}
		data := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(client, data); err != nil {
			t.Fatal(err)
		}
		switch hdr[0] {
		case proto.FrameStdout:
			stdout.Write(data)
		case proto.FrameStderr:
			stderr.Write(data)
		case proto.FrameExit:
			exit = int(binary.BigEndian.Uint32(data))
		}
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if r.err != nil || r.code != 7 || time.Since(time.Unix(0, r.finished)) > time.Minute {
		t.Errorf("Run: %d, %d, %v; want 7, now, nil", r.code, r.finished, r.err)
	}
	if exit != 7 || stdout.String() != "got hello\n" || stderr.String() != "oops\n" {
		t.Errorf("client got exit %d, stdout %q, stderr %q", exit, stdout.String(), stderr.String())
	}
	log, _ := os.ReadFile(logf.Name())
	if !strings.Contains(string(log), `"log":"got hello\n","stream":"stdout"`) || !strings.Contains(string(log), `"log":"oops\n","stream":"stderr"`) {
		t.Errorf("log %q", log)
	}
	for _, fd := range given {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != syscall.EBADF {
			t.Errorf("descriptor %d given to Run is still open after it (%v)", fd, err)
		}
	}
	after := openFDs(t)
	for fd := range after {
		if !before[fd] {
			t.Errorf("descriptor %s opened by Run is still open", fd)
		}
	}
}

// The notify relay: what a "container" sends to the notify socket while it
// runs, and just before it exits, reaches the systemd end with this
// process's pid for MAINPID; Run closes both sockets.
func TestRunRelaysNotify(t *testing.T) {
	dir := t.TempDir()
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "systemd"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	relay, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "relay"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	to, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: filepath.Join(dir, "systemd"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	// The "container": waits for its go, then notifies and exits at once.
	goR, goW, _ := os.Pipe()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyHelper$")
	cmd.Env = append(os.Environ(), "NOTIFY_HELPER_SOCK="+filepath.Join(dir, "relay"))
	cmd.Stdin = goR
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	goR.Close()
	c := Config{Pid: cmd.Process.Pid, Log: -1, Out: -1, Err: -1, In: -1, Console: -1, Listen: -1,
		Notify: rawFD(t, relay), NotifyTo: rawFD(t, to)}
	given := []int{c.Notify, c.NotifyTo}
	done := make(chan int, 1)
	go func() {
		code, _, _ := Run(c)
		done <- code
	}()
	// The first message while Run waits for it in epoll; the last ones
	// sent just before the exit.
	goW.Write([]byte("1"))
	_ = sd.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	var got []string
	for len(got) < 2 {
		n, err := sd.Read(buf)
		if err != nil {
			t.Fatalf("systemd got %q, then %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	goW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("helper exited %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	for len(got) < 3 {
		_ = sd.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := sd.Read(buf)
		if err != nil {
			t.Fatalf("systemd got %q, then %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	pid := strconv.Itoa(os.Getpid())
	want := []string{"READY=1\nMAINPID=" + pid + "\n", "STATUS=up\nMAINPID=" + pid + "\n", "STOPPING=1\nMAINPID=" + pid + "\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("systemd got %q, want %q", got, want)
	}
	for _, fd := range given {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != syscall.EBADF {
			t.Errorf("descriptor %d given to Run is still open after it (%v)", fd, err)
		}
	}
}

// TestNotifyHelper is the "container" of TestRunRelaysNotify.
func TestNotifyHelper(t *testing.T) {
	sock := os.Getenv("NOTIFY_HELPER_SOCK")
	if sock == "" {
		t.Skip("helper of TestRunRelaysNotify")
	}
	send := func(msg string) {
		c, err := net.Dial("unixgram", sock)
		if err != nil {
			os.Exit(3)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			os.Exit(4)
		}
	}
	var b [1]byte
	if n, _ := os.Stdin.Read(b[:]); n != 1 {
		os.Exit(5)
	}
	send("READY=1\nMAINPID=1")
	send("STATUS=up\n")
	io.ReadAll(os.Stdin) // until the test has seen both
	send("MAINPID=5\n")  // nothing else: not relayed
	send("STOPPING=1")
	os.Exit(0)
}
