// Package journal sends entries to systemd-journald over its native
// protocol: one datagram per entry on journald's socket, each field
// KEY=VALUE and a newline, or, for a value with a newline in it, KEY, a
// newline, the length as 64-bit little-endian and the value. An entry
// too big for a datagram goes in a sealed memfd passed with SCM_RIGHTS.
//
// The lean monitor program (cmd/berth-monitor) links it, so it uses
// package syscall alone: no cgo, no systemd library, no systemd-cat.
package journal

import (
	"syscall"
	"unsafe"
)

// Socket is journald's native socket; a journal namespace NAME listens on
// /run/systemd/journal.NAME/socket.
const Socket = "/run/systemd/journal/socket"

// Priorities a container's streams are logged with, as Docker does.
const (
	PriorityStdout = '6' // info
	PriorityStderr = '3' // err
)

// Writer sends entries, each with the same fixed fields, to a journal.
type Writer struct {
	fd    int
	addr  syscall.SockaddrUnix
	fixed []byte
	buf   []byte
}

// Open makes a datagram socket for the journal listening on socket (""
// is Socket). fields (KEY=VALUE) go into every entry; a KEY must be what
// journald takes (AppendField does not check).
func Open(socket string, fields []string) (*Writer, error) {
	if socket == "" {
		socket = Socket
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	w := &Writer{fd: fd, addr: syscall.SockaddrUnix{Name: socket}}
	for _, f := range fields {
		for i := 0; i < len(f); i++ {
			if f[i] == '=' {
				w.fixed = AppendField(w.fixed, f[:i], []byte(f[i+1:]))
				break
			}
		}
	}
	return w, nil
}

// Close closes the socket.
func (w *Writer) Close() error { return syscall.Close(w.fd) }

// AppendField appends one field of an entry in the native protocol's
// encoding.
func AppendField(b []byte, key string, value []byte) []byte {
	b = append(b, key...)
	plain := true
	for _, c := range value {
		if c == '\n' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	n := uint64(len(value))
	for i := 0; i < 8; i++ {
		b = append(b, byte(n>>(8*i)))
	}
	b = append(b, value...)
	return append(b, '\n')
}

// Send sends one entry: MESSAGE (without its newline, as Docker logs a
// line), PRIORITY and the fixed fields; partial marks a line cut at the
// log's line limit (Docker's CONTAINER_PARTIAL_MESSAGE).
func (w *Writer) Send(message []byte, priority byte, partial bool) error {
	if n := len(message); n > 0 && message[n-1] == '\n' {
		message = message[:n-1]
	}
	b := AppendField(w.buf[:0], "MESSAGE", message)
	b = append(b, "PRIORITY="...)
	b = append(b, priority, '\n')
	if partial {
		b = append(b, "CONTAINER_PARTIAL_MESSAGE=true\n"...)
	}
	b = append(b, w.fixed...)
	w.buf = b
	err := syscall.Sendto(w.fd, b, 0, &w.addr)
	for err == syscall.EINTR {
		err = syscall.Sendto(w.fd, b, 0, &w.addr)
	}
	if err == syscall.EMSGSIZE || err == syscall.ENOBUFS {
		err = w.sendMemfd(b)
	}
	if cap(w.buf) > 64<<10 {
		// A huge entry once must not stay in the monitor's memory.
		w.buf = nil
	}
	return err
}

// Sealing, for memfd_create and fcntl (package syscall names neither).
const (
	mfdCloexec      = 0x1
	mfdAllowSealing = 0x2
	fAddSeals       = 1033
	// F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: journald
	// takes only a memfd that can no longer change.
	sealAll = 0x1 | 0x2 | 0x4 | 0x8
)

var memfdName = []byte("berth-journal\x00")

// sendMemfd passes the entry in a sealed memfd, which journald reads
// whole: the way for what a datagram cannot carry.
func (w *Writer) sendMemfd(b []byte) error {
	if sysMemfdCreate < 0 {
		return syscall.EMSGSIZE
	}
	r, _, errno := syscall.Syscall(uintptr(sysMemfdCreate), uintptr(unsafe.Pointer(&memfdName[0])), mfdCloexec|mfdAllowSealing, 0)
	if errno != 0 {
		return errno
	}
	fd := int(r)
	defer syscall.Close(fd)
	for rest := b; len(rest) > 0; {
		n, err := syscall.Write(fd, rest)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fAddSeals, sealAll); errno != 0 {
		return errno
	}
	return syscall.Sendmsg(w.fd, nil, syscall.UnixRights(fd), &w.addr, 0)
}
