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
	"path/filepath"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/notifymsg"
)

// ContainerPath is where --sdnotify=container puts the relay's socket in
// the container; its NOTIFY_SOCKET names it.
const ContainerPath = "/run/notify/notify.sock"

// Mount is the bind mount of the relay socket src at ContainerPath.
func Mount(src string) specs.Mount {
	return specs.Mount{Destination: ContainerPath, Type: "bind", Source: src, Options: []string{"bind", "nosuid", "nodev", "noexec", "rprivate"}}
}

// Wanted says whether a container of --sdnotify mode started now gets a
// relay: mode container, under a systemd that listens ($NOTIFY_SOCKET).
func Wanted(mode string) bool {
	return mode == "container" && target() != ""
}

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

// Listen makes the proxy's socket at path (its directory must exist).
func Listen(path string) (*Proxy, error) {
	c, err := ListenRelay(path)
	if err != nil {
		return nil, err
	}
	return &Proxy{conn: c, path: path, done: make(chan struct{})}, nil
}

// ListenRelay makes a relay's socket at path, creating its directory,
// and replacing a socket a relay killed before its end left there. Any
// user of the container may send to it, as to systemd's own.
func ListenRelay(path string) (*net.UnixConn, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	_ = os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		c.Close()
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	return c, nil
}

// Dial connects a socket to systemd's ($NOTIFY_SOCKET), for a relay that
// writes to it from another program (the lean monitor).
func Dial() (*net.UnixConn, error) {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: target(), Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify systemd: %w", err)
	}
	return c, nil
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
	return string(notifymsg.Rewrite(nil, []byte(msg), mainPID))
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
