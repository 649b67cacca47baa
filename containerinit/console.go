package containerinit

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole makes a pty in the container's devpts, sends the master
// over the console socket (SCM_RIGHTS, as runc does) and makes the slave
// the process's controlling terminal and stdio.
func setupConsole(sock *os.File, size *specs.Box, bindConsole bool) error {
	defer sock.Close()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if bindConsole {
		// /dev/console is the container's terminal, as in runc.
		if f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o600); err == nil {
			f.Close()
			if err := unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind /dev/console: %w", err)
			}
		}
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte(slavePath), rights, nil, 0); err != nil {
		return fmt.Errorf("send console master: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slavePath, err)
	}
	defer slave.Close()
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup console to fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}
