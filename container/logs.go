package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// LogEntry is one decoded json-file line.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogOpts select and shape what ReadLogs prints.
type LogOpts struct {
	Tail       int // -1: all
	Since      time.Time
	Until      time.Time
	Timestamps bool
	Follow     bool
	// Running tells a follower whether more output can come.
	Running func() bool
}

// ReadLogs copies a container's log to stdout and stderr by stream.
func ReadLogs(path string, o LogOpts, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		if !o.Follow {
			return nil
		}
		for os.IsNotExist(err) && o.Running() {
			time.Sleep(100 * time.Millisecond)
			f, err = os.Open(path)
		}
		if os.IsNotExist(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	print := func(line []byte) error {
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil // a torn last line (crash while writing) is skipped
		}
		if !o.Since.IsZero() && e.Time.Before(o.Since) || !o.Until.IsZero() && e.Time.After(o.Until) {
			return nil
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			if _, err := io.WriteString(w, e.Time.Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, e.Log)
		return err
	}
	rd := bufio.NewReaderSize(f, 64*1024)
	var lines [][]byte
	var partial []byte
	for {
		line, err := rd.ReadBytes('\n')
		if err == io.EOF {
			partial = line
			break
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if o.Tail >= 0 {
			lines = append(lines, line)
			if len(lines) > o.Tail {
				lines = lines[1:]
			}
			continue
		}
		if err := print(line); err != nil {
			return err
		}
	}
	for _, l := range lines {
		if err := print(l); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		line, err := rd.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			if err := print(partial); err != nil {
				return err
			}
			partial = nil
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("read log: %w", err)
		}
		if !o.Running() {
			// One more look: the monitor may have written its last
			// lines just before it recorded the exit.
			rest, _ := io.ReadAll(rd)
			for _, l := range bytes.SplitAfter(append(partial, rest...), []byte("\n")) {
				if len(l) > 0 {
					if err := print(l); err != nil {
						return err
					}
				}
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
