// Package sdnotify speaks systemd's notify protocol for berth: it sends
// berth's own messages to $NOTIFY_SOCKET, and relays a container's from a
// socket of berth's own (--sdnotify=container), so that systemd receives
// them from berth, the unit's main process, with MAINPID set. The
// container's own process may be gone, or in a cgroup systemd cannot map
// to the unit, by the time systemd looks at a message's sender; berth's is
// neither.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// target is systemd's socket from $NOTIFY_SOCKET ("" when unset); an
// abstract socket is written with a leading '@'.
func target() string {
	return os.Getenv("NOTIFY_SOCKET")
}

// Send sends msg (newline-separated assignments) to systemd. Without
// $NOTIFY_SOCKET it does nothing.
func Send(msg string) error {
	sock := target()
	if sock == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}

// Proxy is a notify socket that relays what it receives to systemd.
type Proxy struct {
	conn *net.UnixConn
	path string
	done chan struct{}
}

// Listen makes the proxy's socket at path (its directory must exist). Any
// user of the container may send to it, as to systemd's own.
func Listen(path string) (*Proxy, error) {
	_ = os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		c.Close()
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	return &Proxy{conn: c, path: path, done: make(chan struct{})}, nil
}

// Path is where the proxy listens.
func (p *Proxy) Path() string { return p.path }

// Serve relays each message to systemd with MAINPID=mainPID in place of
// any MAINPID the container sent (its pids mean nothing outside its pid
// namespace), until Close.
func (p *Proxy) Serve(mainPID int) {
	defer close(p.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Close: relay what is queued yet, then stop.
				p.drain(buf, mainPID)
			} else if !errors.Is(err, net.ErrClosed) {
				logrus.Warnf("notify proxy: %v", err)
			}
			return
		}
		relay(string(buf[:n]), mainPID)
	}
}

func relay(msg string, mainPID int) {
	if msg = Rewrite(msg, mainPID); msg == "" {
		return
	}
	if err := Send(msg); err != nil {
		logrus.Warnf("notify proxy: %v", err)
	}
}

// drain relays the messages already queued on the socket, without
// waiting for more: a container that notifies and exits at once must not
// lose its message to berth's own exit.
func (p *Proxy) drain(buf []byte, mainPID int) {
	rc, err := p.conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			relay(string(buf[:n]), mainPID)
		}
	})
}

// Rewrite drops the message's MAINPID= and adds mainPID's; an empty
// message stays empty.
func Rewrite(msg string, mainPID int) string {
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		if l == "" || strings.HasPrefix(l, "MAINPID=") {
			continue
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return ""
	}
	out = append(out, "MAINPID="+strconv.Itoa(mainPID))
	return strings.Join(out, "\n") + "\n"
}

// Close relays what is queued, stops the relay and removes the socket.
func (p *Proxy) Close() error {
	_ = p.conn.SetReadDeadline(time.Unix(1, 0))
	<-p.done
	err := p.conn.Close()
	if rerr := os.Remove(p.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}
