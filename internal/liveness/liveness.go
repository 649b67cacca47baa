// Package liveness is berth's one test of whether a recorded process is
// still the same process: its pid plus its start time (field 22 of
// /proc/PID/stat), so that a pid the kernel has since given to another
// process never counts as the one recorded.
package liveness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
	fields, err := statFields(pid, data)
	if err != nil {
		return 0, false, err
	}
	_, err = fmt.Sscan(fields[19], &start)
	return start, fields[0] == "Z" || fields[0] == "X", err
}

// statFields splits /proc/PID/stat after the command name: fields[0] is
// field 3 (state), fields[6] field 9 (flags), fields[19] field 22 (start
// time).
func statFields(pid int, data []byte) ([]string, error) {
	// The command name may hold spaces or parentheses: parse after the last ')'.
	i := len(data) - 1
	for i >= 0 && data[i] != ')' {
		i--
	}
	if i < 0 || i+2 > len(data) {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+2:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("parse /proc/%d/stat: short", pid)
	}
	return fields, nil
}

// pfExiting is the kernel's PF_EXITING task flag.
const pfExiting = 0x4

// Exiting reports whether pid, started at start, is on its way out: it
// has begun to exit (a pid namespace's init waits there for the rest of
// its namespace to die), or a SIGKILL is pending for it. Such a process is
// still alive, but nothing can stop its end.
func Exiting(pid int, start uint64) bool {
	// The pending signals first, then the flags: a SIGKILL taken off the
	// queue between two reads the other way round would be in neither,
	// while the task sets PF_EXITING right after it takes one.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	killPending := false
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k != "SigPnd" && k != "ShdPnd" {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(9-1)) != 0 {
			killPending = true
		}
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields, err := statFields(pid, data)
	if err != nil {
		return false
	}
	var st, flags uint64
	if _, err := fmt.Sscan(fields[19], &st); err != nil || start != 0 && st != start {
		return false
	}
	if killPending {
		return true
	}
	_, err = fmt.Sscan(fields[6], &flags)
	return err == nil && flags&pfExiting != 0
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
