package container

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/journal"
)

// JournalNamespaceEnv names a journal namespace (systemd-journald@NAME)
// that journald containers log to instead of the system journal, and
// that logs reads them from: for tests, which run a journald of their
// own. The monitor inherits it from the berth that started it.
const JournalNamespaceEnv = "BERTH_JOURNAL_NAMESPACE"

// JournalSocket is the socket journald containers log to.
func JournalSocket() string {
	if ns := os.Getenv(JournalNamespaceEnv); ns != "" {
		return filepath.Join("/run/systemd", "journal."+ns, "socket")
	}
	return journal.Socket
}

// journalEntry is what journalctl -o json prints of an entry: MESSAGE is
// a string, or an array of bytes when it is not UTF-8.
type journalEntry struct {
	Message  json.RawMessage `json:"MESSAGE"`
	Priority string          `json:"PRIORITY"`
	Partial  string          `json:"CONTAINER_PARTIAL_MESSAGE"`
	Realtime string          `json:"__REALTIME_TIMESTAMP"`
}

// ReadJournal prints the journal entries of container id through
// journalctl (berth is built without cgo, so without libsystemd's
// reader), shaped as ReadLogs shapes the json-file's.
func ReadJournal(id string, o LogOpts, stdout, stderr io.Writer) error {
	bin, err := exec.LookPath("journalctl")
	if err != nil {
		return fmt.Errorf("logs of a journald container need journalctl: %w", err)
	}
	args := []string{"-o", "json", "--no-pager", "--all"}
	if ns := os.Getenv(JournalNamespaceEnv); ns != "" {
		args = append(args, "--namespace="+ns)
	}
	if !o.Since.IsZero() {
		// Whole seconds: the exact bound is applied below.
		args = append(args, "--since=@"+strconv.FormatInt(o.Since.Unix(), 10))
	}
	if !o.Until.IsZero() {
		args = append(args, "--until=@"+strconv.FormatInt(o.Until.Unix()+1, 10))
	}
	switch {
	case o.Tail >= 0:
		args = append(args, "--lines="+strconv.Itoa(o.Tail))
	case o.Follow:
		// journalctl -f alone starts with the last ten.
		args = append(args, "--lines=all")
	}
	if o.Follow {
		args = append(args, "--follow")
	}
	args = append(args, "CONTAINER_ID_FULL="+id)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var errBuf limitedBuffer
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	if o.Follow {
		// journalctl -f never ends by itself: end it once the container
		// has, after a moment for its last entries to come through.
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if !o.Running() {
					time.Sleep(500 * time.Millisecond)
					cancel()
					return
				}
			}
		}()
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		var attrs map[string]string
		if o.Details {
			attrs = journalAttrs(sc.Bytes())
		}
		us, _ := strconv.ParseInt(e.Realtime, 10, 64)
		t := time.UnixMicro(us)
		if !o.Since.IsZero() && t.Before(o.Since) || !o.Until.IsZero() && t.After(o.Until) {
			continue
		}
		msg := journalMessage(e.Message)
		if e.Partial != "true" {
			msg = append(msg, '\n')
		}
		w := stdout
		if e.Priority == "3" {
			w = stderr
		}
		if o.Timestamps {
			if _, err := io.WriteString(w, t.UTC().Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		if o.Details {
			if _, err := w.Write(append(appendAttrs(nil, attrs), ' ')); err != nil {
				return err
			}
		}
		if _, err := w.Write(msg); err != nil {
			return err
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil // ended by the follower
	}
	if err != nil {
		return fmt.Errorf("journalctl: %w: %s", err, oneLine(errBuf.String()))
	}
	return sc.Err()
}

// journalOwnFields are the fields the journald driver writes on every
// entry (and journald's own, which start with "_"): not attributes.
var journalOwnFields = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "CODE_FILE": true, "CODE_LINE": true,
	"CODE_FUNC": true, "ERRNO": true, "SYSLOG_FACILITY": true, "SYSLOG_IDENTIFIER": true,
	"SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true, "CONTAINER_NAME": true, "CONTAINER_ID": true,
	"CONTAINER_ID_FULL": true, "CONTAINER_TAG": true, "IMAGE_NAME": true,
	"CONTAINER_PARTIAL_MESSAGE": true, "CONTAINER_PARTIAL_ID": true, "CONTAINER_PARTIAL_ORDINAL": true,
	"CONTAINER_PARTIAL_LAST": true, "CONTAINER_LOG_EPOCH": true, "CONTAINER_LOG_ORDINAL": true,
}

// journalAttrs are the attributes of an entry, line as journalctl -o json
// prints it: the fields --log-opt labels=, env= added (TEAM=blue for the
// label team), as Docker's journald reader gives them to logs --details.
func journalAttrs(line []byte) map[string]string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(line, &fields) != nil {
		return nil
	}
	attrs := map[string]string{}
	for k, raw := range fields {
		if journalOwnFields[k] || strings.HasPrefix(k, "_") {
			continue
		}
		attrs[k] = string(journalMessage(raw))
	}
	return attrs
}

// journalMessage decodes MESSAGE as journalctl -o json writes it.
func journalMessage(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	var b []byte
	var nums []int
	if json.Unmarshal(raw, &nums) == nil {
		for _, n := range nums {
			b = append(b, byte(n))
		}
	}
	return b
}

// limitedBuffer keeps the first few KiB written to it (a command's
// complaint).
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
