package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

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

// hub fans a container's output out to attached clients and feeds their
// input to the container.
type hub struct {
	mu      sync.Mutex
	clients map[net.Conn]chan []byte
	stdin   io.WriteCloser // pipe or pty master; nil without -i
	console *os.File
	size    *unix.Winsize
	first   chan struct{}
	once    sync.Once
}

func newHub() *hub {
	return &hub{clients: map[net.Conn]chan []byte{}, first: make(chan struct{})}
}

func (h *hub) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		ch := make(chan []byte, 256)
		h.mu.Lock()
		h.clients[c] = ch
		h.mu.Unlock()
		go func() {
			for b := range ch {
				if _, err := c.Write(b); err != nil {
					h.drop(c)
					for range ch {
					}
					return
				}
			}
			c.Close()
		}()
		go h.input(c)
		h.once.Do(func() { close(h.first) })
	}
}

func (h *hub) drop(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(ch)
	}
}

func (h *hub) input(c net.Conn) {
	for {
		kind, data, err := readFrame(c)
		if err != nil {
			h.drop(c)
			return
		}
		h.mu.Lock()
		stdin, console := h.stdin, h.console
		switch kind {
		case proto.FrameStdin:
			if stdin != nil {
				h.mu.Unlock()
				_, _ = stdin.Write(data)
				continue
			}
		case proto.FrameResize:
			if len(data) == 4 {
				ws := &unix.Winsize{Row: binary.BigEndian.Uint16(data), Col: binary.BigEndian.Uint16(data[2:])}
				h.size = ws
				if console != nil {
					_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, ws)
				}
			}
		case proto.FrameCloseStdin:
			if stdin != nil && console == nil {
				_ = stdin.Close()
				h.stdin = nil
			}
		}
		h.mu.Unlock()
	}
}

// broadcast sends output to every client; a client too slow to keep up
// is dropped rather than stalling the container.
func (h *hub) broadcast(kind byte, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	frame := make([]byte, 5+len(data))
	frame[0] = kind
	binary.BigEndian.PutUint32(frame[1:], uint32(len(data)))
	copy(frame[5:], data)
	for c, ch := range h.clients {
		select {
		case ch <- frame:
		default:
			delete(h.clients, c)
			close(ch)
		}
	}
}

// closeAll ends every client's stream (the container ended).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, ch := range h.clients {
		delete(h.clients, c)
		close(ch)
	}
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
			matched := 0
			for {
				n, err := a.Stdin.Read(buf)
				if n > 0 {
					out := buf[:n]
					if len(a.DetachKeys) > 0 {
						var keep []byte
						for _, c := range out {
							if c == a.DetachKeys[matched] {
								matched++
								if matched == len(a.DetachKeys) {
									close(detached)
									a.Conn.Close()
									return
								}
								continue
							}
							if matched > 0 {
								keep = append(keep, a.DetachKeys[:matched]...)
								matched = 0
							}
							keep = append(keep, c)
						}
						out = keep
					}
					if len(out) > 0 {
						if writeFrame(a.Conn, proto.FrameStdin, out) != nil {
							return
						}
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
