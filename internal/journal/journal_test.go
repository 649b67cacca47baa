package journal

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// parse decodes an entry of the native protocol, checking its framing.
func parse(t *testing.T, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i < 0 {
			t.Fatalf("field without = or newline: %q", b)
		}
		key := string(b[:i])
		if b[i] == '=' {
			end := bytes.IndexByte(b[i:], '\n')
			if end < 0 {
				t.Fatalf("field %s not ended", key)
			}
			m[key] = string(b[i+1 : i+end])
			b = b[i+end+1:]
			continue
		}
		b = b[i+1:]
		if len(b) < 8 {
			t.Fatalf("field %s: no length", key)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			t.Fatalf("field %s: length %d does not frame the value", key, n)
		}
		m[key] = string(b[:n])
		b = b[n+1:]
	}
	return m
}

// listen is a stand-in for journald's socket.
func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// receive reads one entry as journald does: the datagram, or the memfd
// it passed.
func receive(t *testing.T, c *net.UnixConn) (map[string]string, bool) {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, 64)
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if oobn == 0 {
		return parse(t, buf[:n]), false
	}
	if n != 0 {
		t.Fatalf("a datagram with a descriptor carries data too (%d bytes)", n)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v %d", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", err, fds)
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE; seals&want != want {
		t.Errorf("memfd seals %#x, journald needs %#x", seals, want)
	}
	// journald maps the memfd from its start; the offset is the
	// sender's, at the end.
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, data), true
}

func TestSendFields(t *testing.T) {
	c, path := listen(t)
	w, err := Open(path, []string{"CONTAINER_ID=0123456789ab", "CONTAINER_NAME=web", "SYSLOG_IDENTIFIER=web-tag", "MULTI=a\nb"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Send([]byte("hello world\n"), PriorityStdout, false); err != nil {
		t.Fatal(err)
	}
	got, viaFd := receive(t, c)
	want := map[string]string{"MESSAGE": "hello world", "PRIORITY": "6", "CONTAINER_ID": "0123456789ab",
		"CONTAINER_NAME": "web", "SYSLOG_IDENTIFIER": "web-tag", "MULTI": "a\nb"}
	if viaFd || len(got) != len(want) {
		t.Errorf("got %q (memfd %v), want %q", got, viaFd, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// A value with a newline (a \r\n line keeps its \r; an embedded one
	// cannot come from the splitter but may from a field) is framed by
	// its length; stderr is priority 3; a partial line says so.
	if err := w.Send([]byte("two\nlines"), PriorityStderr, true); err != nil {
		t.Fatal(err)
	}
	got, _ = receive(t, c)
	if got["MESSAGE"] != "two\nlines" || got["PRIORITY"] != "3" || got["CONTAINER_PARTIAL_MESSAGE"] != "true" {
		t.Errorf("got %q", got)
	}
}

// An entry bigger than a datagram can be goes in a sealed memfd.
func TestSendLargeEntryByMemfd(t *testing.T) {
	c, path := listen(t)
	w, err := Open(path, []string{"CONTAINER_NAME=big"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msg := strings.Repeat("x", 600<<10)
	if err := w.Send([]byte(msg), PriorityStdout, false); err != nil {
		t.Fatal(err)
	}
	got, viaFd := receive(t, c)
	if !viaFd {
		t.Error("a 600 KiB entry was sent as a datagram")
	}
	if got["MESSAGE"] != msg || got["CONTAINER_NAME"] != "big" {
		t.Errorf("MESSAGE of %d bytes, CONTAINER_NAME %q", len(got["MESSAGE"]), got["CONTAINER_NAME"])
	}
}
