package containers

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// fakeSystemd is a notify socket that records who sent each message.
type fakeSystemd struct {
	t    *testing.T
	fd   int
	path string
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	// The kernel attaches each sender's pid, as for systemd's socket.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30})
	return &fakeSystemd{t: t, fd: fd, path: path}
}

// next returns the next message and its sender's pid.
func (f *fakeSystemd) next() (string, int) {
	f.t.Helper()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := unix.Recvmsg(f.fd, buf, oob, 0)
	if err != nil {
		f.t.Fatalf("no notify message: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		f.t.Fatalf("no credentials with the message %q: %v", buf[:n], err)
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil {
		f.t.Fatal(err)
	}
	return string(buf[:n]), int(cred.Pid)
}

// TestSdNotifyDetached: run -d --sdnotify=container under a notify socket
// first tells systemd that the monitor is the main process, then the
// container's own messages reach systemd from the monitor with its
// MAINPID, before and after the monitor turned lean (an exec'd sender),
// and again after berth start; the relay's socket goes with the monitor.
func TestSdNotifyDetached(t *testing.T) {
	c := rig.NewContainerEnv(t)
	sd := newFakeSystemd(t)
	withNotify := func(args ...string) string {
		cmd := c.Cmd(args...)
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sd.path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("berth %v: %v %s", args, err, out)
		}
		return string(out)
	}
	withNotify("run", "-d", "--name", "n", "--sdnotify=container", rig.TestImage,
		"sh", "-c", "/probe notify STATUS=one READY=1; exec sleep 1000")
	mon := c.Field("n", "{{.State.MonitorPid}}")
	id := c.Field("n", "{{.Id}}")
	msg, from := sd.next()
	if msg != "MAINPID="+mon+"\n" {
		t.Errorf("berth run -d said %q (from %d), want MAINPID=%s", msg, from, mon)
	}
	expect := func(what, want string) {
		t.Helper()
		msg, from := sd.next()
		if msg != want+"\nMAINPID="+mon+"\n" || strconv.Itoa(from) != mon {
			t.Errorf("%s: %q from pid %d, want %q from the monitor %s", what, msg, from, want+"\nMAINPID="+mon, mon)
		}
	}
	expect("the container's first message", "STATUS=one\nREADY=1")
	// Sent now, the lean monitor relays it.
	c.Must("exec", "-e", "NOTIFY_SOCKET=/run/notify/notify.sock", "n", "/probe", "notify", "STATUS=two", "MAINPID=1")
	expect("a later message", "STATUS=two")
	c.Must("stop", "-t", "0", "n")
	relay := filepath.Join("/run/berth-notify", id)
	rig.WaitFor(t, "the relay socket removed", 10*time.Second, func() bool { _, err := os.Stat(relay); return os.IsNotExist(err) })

	withNotify("start", "n")
	mon = c.Field("n", "{{.State.MonitorPid}}")
	if msg, _ := sd.next(); msg != "MAINPID="+mon+"\n" {
		t.Errorf("berth start said %q, want MAINPID=%s", msg, mon)
	}
	expect("the message after start", "STATUS=one\nREADY=1")
	// Without NOTIFY_SOCKET, no relay and no socket in the container.
	c.Must("stop", "-t", "0", "n")
	c.Must("start", "n")
	if out := c.Must("exec", "n", "sh", "-c", `echo "[$NOTIFY_SOCKET]"; test -S /run/notify/notify.sock && echo has-socket; true`); out != "[]\n" {
		t.Errorf("a start without NOTIFY_SOCKET passed a socket: %q", out)
	}
	if _, err := os.Stat(filepath.Join("/run/berth-notify", id)); !os.IsNotExist(err) {
		t.Errorf("a start without NOTIFY_SOCKET made a relay socket (%v)", err)
	}
	c.Must("rm", "-f", "n")
}
