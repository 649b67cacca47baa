package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/detachkeys"
	proto "github.com/berth-project/berth/internal/monitorproto"
)

// The attach protocol is described in package monitorproto.

func writeFrame(w io.Writer, kind byte, data []byte) error {
	hdr := make([]byte, 5, 5+len(data))
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(data)))
	_, err := w.Write(append(hdr, data...))
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > proto.MaxFrame {
		return 0, nil, errors.New("attach: frame too large")
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, err
	}
	return hdr[0], data, nil
}

// attachDir holds the monitors' sockets. The path a socket is reached by
// goes through /proc/self/fd, because sun_path is only 108 bytes and the
// state root may be deep.
func (s *Store) attachDir() string { return filepath.Join(s.StateRoot, "attach") }

func (s *Store) withAttachDir(fn func(dir string) error) error {
	if err := os.MkdirAll(s.attachDir(), 0o700); err != nil {
		return fmt.Errorf("attach dir: %w", err)
	}
	d, err := os.OpenFile(s.attachDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach dir: %w", err)
	}
	defer d.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d", d.Fd()))
}

// AttachConn connects to a running container's monitor.
func (s *Store) AttachConn(id string) (net.Conn, error) {
	var conn net.Conn
	err := s.withAttachDir(func(dir string) error {
		var err error
		conn, err = net.Dial("unix", filepath.Join(dir, id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach: container has no monitor to attach to: %w", err)
	}
	return conn, nil
}

// AttachClient relays a terminal or stdio to a monitor connection until
// the container's output ends or the user types the detach keys.
type AttachClient struct {
	Conn           net.Conn
	Stdin          io.Reader // nil: no input
	Stdout, Stderr io.Writer
	DetachKeys     []byte // nil: none
	// Detached is set when the user detached; ExitCode is the
	// container's status when the monitor sent it (-1 otherwise).
	Detached bool
	ExitCode int
}

// Resize sends the terminal size.
func (a *AttachClient) Resize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return writeFrame(a.Conn, proto.FrameResize, b[:])
}

// Run relays until the output ends (container exit) or a detach.
func (a *AttachClient) Run() error {
	a.ExitCode = -1
	detached := make(chan struct{})
	if a.Stdin != nil {
		go func() {
			buf := make([]byte, 32*1024)
			keys := detachkeys.Scanner{Keys: a.DetachKeys}
			for {
				n, err := a.Stdin.Read(buf)
				if n > 0 {
					out, detach := keys.Filter(buf[:n])
					if len(out) > 0 {
						if writeFrame(a.Conn, proto.FrameStdin, out) != nil {
							return
						}
					}
					if detach {
						close(detached)
						a.Conn.Close()
						return
					}
				}
				if err != nil {
					_ = writeFrame(a.Conn, proto.FrameCloseStdin, nil)
					return
				}
			}
		}()
	}
	for {
		kind, data, err := readFrame(a.Conn)
		if err != nil {
			select {
			case <-detached:
				a.Detached = true
				return nil
			default:
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("attach: %w", err)
		}
		if kind == proto.FrameExit && len(data) == 4 {
			a.ExitCode = int(binary.BigEndian.Uint32(data))
			continue
		}
		w := a.Stdout
		if kind == proto.FrameStderr && a.Stderr != nil {
			w = a.Stderr
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
}
