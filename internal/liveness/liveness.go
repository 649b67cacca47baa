// Package liveness is berth's one test of whether a recorded process is
// still the same process: its pid plus its start time (field 22 of
// /proc/PID/stat), so that a pid the kernel has since given to another
// process never counts as the one recorded.
package liveness

import (
	"fmt"
	"os"
)

// StartTime returns the start time of pid from /proc/PID/stat (clock ticks
// since boot), and whether the process is a zombie.
func StartTime(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	return parseStat(pid, data)
}

func parseStat(pid int, data []byte) (start uint64, zombie bool, err error) {
	// The command name may hold spaces or parentheses: parse after the last ')'.
	i := len(data) - 1
	for i >= 0 && data[i] != ')' {
		i--
	}
	if i < 0 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	var fields []string
	cur := []byte{}
	for _, b := range data[i+2:] {
		if b == ' ' || b == '\n' {
			fields = append(fields, string(cur))
			cur = cur[:0]
			continue
		}
		cur = append(cur, b)
	}
	if len(cur) > 0 {
		fields = append(fields, string(cur))
	}
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat: short", pid)
	}
	_, err = fmt.Sscan(fields[19], &start)
	return start, fields[0] == "Z" || fields[0] == "X", err
}

// Alive reports whether pid is alive, not a zombie, and started at start
// (a start of 0, not recorded, takes any start time).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, zombie, err := StartTime(pid)
	return err == nil && !zombie && (start == 0 || st == start)
}
