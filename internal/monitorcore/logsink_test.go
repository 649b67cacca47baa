package monitorcore

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/jsonlog"
)

// runLogged runs script under Run with the given logging and no clients,
// and returns once Run did, with what the container's output pipes are
// (readlink).
func runLogged(t *testing.T, script string, logFd int, lg Logging) []string {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	c := Config{Pid: cmd.Process.Pid, Log: logFd, Out: rawFD(t, outR), Err: rawFD(t, errR), In: -1, Console: -1, Listen: -1,
		Logging: lg, Complain: func(err error) { t.Errorf("monitor complains: %v", err) }}
	var pipes []string
	for _, fd := range []int{c.Out, c.Err} {
		l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			t.Fatal(err)
		}
		pipes = append(pipes, l)
	}
	// Inheritable, as the lean program gets them.
	for _, fd := range []int{c.Log, c.Out, c.Err} {
		if fd >= 0 {
			if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0); errno != 0 {
				t.Fatal(errno)
			}
		}
	}
	outR.Close()
	errR.Close()
	done := make(chan struct{})
	go func() {
		_, _, _ = Run(c)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	return pipes
}

// logLines reads the "line N" entries of a json-file log.
func logLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, rest, _ := strings.Cut(sc.Text(), `{"log":"`)
		l, _, _ := strings.Cut(rest, `\n"`)
		out = append(out, l)
	}
	return out
}

// The loop rotates the log at MaxSize between entries, keeps MaxFile
// files, has each rotated file compressed by the helper it spawns (here a
// stand-in that renames FILE to FILE.gz), waits for it, and leaves no
// child behind: the same in berth's own monitor as in the lean program.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	helper := filepath.Join(dir, "compress")
	// It notes what it was given beyond stdio: nothing of the container.
	script := "#!/bin/sh\nfor f in /proc/$$/fd/*; do case $f in */[012]) ;; *) readlink $f ;; esac; done >> " + dir + "/inherited\n" +
		"[ \"$1\" = " + CompressArg + " ] && exec /bin/mv \"$2\" \"$2.gz\"\nexit 3\n"
	if err := os.WriteFile(helper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		maxFile  int
		compress bool
	}{{1000, false}, {4, true}, {1, false}} {
		os.RemoveAll(dir + "/logs")
		if err := os.Mkdir(dir+"/logs", 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "logs", "c-json.log")
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		const n = 300
		pipes := runLogged(t, fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo line $i; done", n), fd,
			Logging{Path: path, MaxSize: 1000, MaxFile: tc.maxFile, Compress: tc.compress, Berth: helper})
		if tc.compress {
			b, err := os.ReadFile(dir + "/inherited")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(pipes, path) {
				if strings.Contains(string(b), p+"\n") {
					t.Errorf("the compressor inherited %s", p)
				}
			}
		}
		var lines []string
		files := 0
		for i := tc.maxFile - 1; i >= 0; i-- {
			name := path
			if i > 0 {
				name = jsonlog.Rotated(path, i, tc.compress)
			}
			st, err := os.Stat(name)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil || st.Size() > 1000 {
				t.Errorf("max-file %d: %s: %v, %d bytes", tc.maxFile, filepath.Base(name), err, st.Size())
			}
			files++
			lines = append(lines, logLines(t, name)...)
		}
		ents, _ := os.ReadDir(filepath.Dir(path))
		if len(ents) != files || files > tc.maxFile {
			t.Errorf("max-file %d: %d files in the directory, %d named as rotated ones", tc.maxFile, len(ents), files)
		}
		// The lines kept are the last ones, in order, each once.
		first := n - len(lines) + 1
		for i, l := range lines {
			if l != fmt.Sprintf("line %d", first+i) {
				t.Fatalf("max-file %d: entry %d is %q, want line %d", tc.maxFile, i, l, first+i)
			}
		}
		if tc.maxFile == 1000 && first != 1 {
			t.Errorf("lines 1..%d lost", first-1)
		}
		// One file keeps only what came after the last rotation, which
		// may be a line or two (entries vary in length with their
		// timestamps); more files keep whole rotated ones too.
		if tc.maxFile < 1000 && (first == 1 || len(lines) == 0 || tc.maxFile > 1 && len(lines) < 10) {
			t.Errorf("max-file %d kept %d lines from %d", tc.maxFile, len(lines), first)
		}
	}
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err != syscall.ECHILD {
		t.Errorf("a child is left: wait4 gave %d, %v", pid, err)
	}
}

// With Journal set, the loop sends each line to the journal socket, with
// the fixed fields and each stream's priority, and writes no file.
func TestJournalLogging(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "journal")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	runLogged(t, "echo out; echo err >&2", -1, Logging{Journal: []string{"CONTAINER_NAME=web"}, JournalSocket: sock})
	got := map[string]bool{}
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got[string(buf[:n])] = true
	}
	for _, want := range []string{"MESSAGE=out\nPRIORITY=6\nCONTAINER_NAME=web\n", "MESSAGE=err\nPRIORITY=3\nCONTAINER_NAME=web\n"} {
		if !got[want] {
			t.Errorf("journal got %v, want an entry %q", got, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files beside the socket: %v", ents)
	}
}
