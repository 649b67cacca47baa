// Package leanproc holds what berth's lean helper programs (the monitor,
// cmd/berth-monitor) need to keep their memory small, written with
// package syscall alone: package os would cost them more memory than the
// rest of the program. The bench's Go floor program (tools/bench/gofloor)
// uses it too, so that it is measured as the monitor is.
package leanproc

import "syscall"

// ReadFile reads the file at path into buf, and beyond it into a larger
// array if it has to.
func ReadFile(path string, buf []byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	all := buf[:0]
	for {
		if len(all) == cap(all) {
			all = append(all, 0)[:len(all)]
		}
		n, err := syscall.Read(fd, all[len(all):cap(all)])
		if n > 0 {
			all = all[:len(all)+n]
			continue
		}
		if err == syscall.EINTR {
			continue
		}
		return all, err
	}
}

// parseHex reads an address from /proc/self/maps; 0 if it is not one.
func parseHex(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0
		}
		n = n<<4 | uint64(c)
	}
	return n
}

// TrimText drops this program's pages of code and read-only data from its
// page tables. Start-up touched many that the loop never uses again; the
// kernel faults back in, from the page cache, those it does. That keeps
// most of the read-only data out (the monitor's 700 KiB down to 64). The
// code comes back whole: the kernel maps the 64 KiB around each fault,
// and the Go runtime's idle path alone runs code in every 64 KiB of it
// (traced with perf). Nothing writable is dropped. buf is scratch space.
func TrimText(buf []byte) {
	maps, err := ReadFile("/proc/self/maps", buf)
	if err != nil {
		return
	}
	// The first mapping is the program's text; its path names the
	// program's other mappings.
	var exe []byte
	for len(maps) > 0 {
		end := 0
		for end < len(maps) && maps[end] != '\n' {
			end++
		}
		line := maps[:end]
		if end < len(maps) {
			end++
		}
		maps = maps[end:]
		// start-end perms offset dev inode path
		f, n := fields(line)
		if n < 6 || len(f[1]) < 2 || f[1][1] == 'w' {
			continue
		}
		if exe == nil {
			exe = f[5]
		}
		if string(f[5]) != string(exe) {
			continue
		}
		var lo, hi uint64
		for i := 0; i < len(f[0]); i++ {
			if f[0][i] == '-' {
				lo, hi = parseHex(string(f[0][:i])), parseHex(string(f[0][i+1:]))
			}
		}
		if hi > lo {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), 4 /* MADV_DONTNEED */)
		}
	}
}

// fields splits a line of /proc/self/maps at its spaces into its first
// six fields, and counts them.
func fields(line []byte) ([6][]byte, int) {
	var f [6][]byte
	n, start := 0, -1
	for i := 0; i <= len(line) && n < len(f); i++ {
		if i == len(line) || line[i] == ' ' {
			if start >= 0 {
				f[n] = line[start:i]
				n++
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return f, n
}
