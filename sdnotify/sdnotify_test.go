package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestRewrite(t *testing.T) {
	cases := map[string]string{
		"READY=1":                                "READY=1\nMAINPID=42\n",
		"READY=1\nMAINPID=1\n":                   "READY=1\nMAINPID=42\n",
		"STATUS=up\nEXTEND_TIMEOUT_USEC=5000000": "STATUS=up\nEXTEND_TIMEOUT_USEC=5000000\nMAINPID=42\n",
		"":                                       "",
		"MAINPID=7\n":                            "",
	}
	for in, want := range cases {
		if got := Rewrite(in, 42); got != want {
			t.Errorf("Rewrite(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProxyRelays: a message sent to the proxy reaches $NOTIFY_SOCKET
// with the proxy's MAINPID.
func TestProxyRelays(t *testing.T) {
	dir := t.TempDir()
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "systemd"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "systemd"))
	p, err := Listen(filepath.Join(dir, "proxy"))
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(1234)
	c, err := net.Dial("unixgram", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("READY=1\nMAINPID=1")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_ = sd.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1024)
	n, err := sd.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "READY=1\nMAINPID=1234\n" {
		t.Fatalf("systemd got %q", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestProxyCloseRelaysQueued: what a container sent just before it exited
// is relayed even when berth closes the proxy at once.
func TestProxyCloseRelaysQueued(t *testing.T) {
	dir := t.TempDir()
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "systemd"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "systemd"))
	p, err := Listen(filepath.Join(dir, "proxy"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unixgram", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Write([]byte("STATUS=" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	// Serve starts only now and is closed at once: the queue is drained.
	go p.Serve(99)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = sd.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1024)
	for i := 0; i < 5; i++ {
		n, err := sd.Read(buf)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := "STATUS=" + strconv.Itoa(i) + "\nMAINPID=99\n"; string(buf[:n]) != want {
			t.Fatalf("message %d: %q, want %q", i, buf[:n], want)
		}
	}
}
