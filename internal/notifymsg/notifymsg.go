// Package notifymsg rewrites a container's systemd notify message for the
// relay that forwards it: its MAINPID= means nothing outside the
// container's pid namespace, so the relay's own pid replaces it. It is
// the one rewrite for both relays, berth's foreground one (package
// sdnotify) and the lean monitor's (package monitorcore), and uses no
// package at all, which keeps the lean monitor lean.
package notifymsg

// Rewrite appends to dst msg's lines without its MAINPID= and empty
// lines, then MAINPID=mainPID, one line each, and returns the result; a
// message with nothing else in it yields dst unchanged (nothing to send).
func Rewrite(dst, msg []byte, mainPID int) []byte {
	start := len(dst)
	for len(msg) > 0 {
		line := msg
		rest := []byte(nil)
		for i, b := range msg {
			if b == '\n' {
				line, rest = msg[:i], msg[i+1:]
				break
			}
		}
		msg = rest
		if len(line) == 0 || hasPrefix(line, "MAINPID=") {
			continue
		}
		dst = append(append(dst, line...), '\n')
	}
	if len(dst) == start {
		return dst
	}
	dst = append(dst, "MAINPID="...)
	dst = appendInt(dst, mainPID)
	return append(dst, '\n')
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// appendInt appends n (not negative) in decimal.
func appendInt(dst []byte, n int) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
