package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/detachkeys"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a command in a running container", ArgsUsage: "CONTAINER COMMAND [ARG...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
			&cli.StringSliceFlag{Name: "env-file", Usage: "read environment variables from a file of KEY=VALUE lines"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user[:group] to run as"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
			&cli.BoolFlag{Name: "privileged", Usage: "give the command every capability"},
			&cli.StringFlag{Name: "detach-keys", Usage: "keys that detach from -it, leaving the command running (default ctrl-p,ctrl-q)"},
		},
		Action: func(c *cli.Context) error {
			keys, err := detachkeys.Parse(c.String("detach-keys"))
			if err != nil {
				return usage(c, "%v", err)
			}
			if err := checkInputTTY(c.Bool("interactive"), c.Bool("tty"), c.Bool("detach")); err != nil {
				return err
			}
			s, r, err := runningContainer(c, 2, -1, "CONTAINER COMMAND [ARG...]")
			if err != nil {
				return err
			}
			null, err := os.Open(os.DevNull)
			if err != nil {
				return err
			}
			defer null.Close()
			env, err := execEnv(c)
			if err != nil {
				return usage(c, "%v", err)
			}
			o := container.ExecOpts{Args: c.Args().Slice()[1:], Env: env, Tty: c.Bool("tty"),
				Workdir: c.String("workdir"), User: c.String("user"), Privileged: c.Bool("privileged"),
				IO: runtime.IO{Stdin: null, Stdout: os.Stdout, Stderr: os.Stderr}, Detach: c.Bool("detach"),
				ID: container.NewID()}
			if c.Bool("interactive") {
				o.IO.Stdin = os.Stdin
			}
			if o.Detach {
				o.IO = runtime.IO{Stdin: null, Stdout: null, Stderr: null}
			}
			var sigs chan os.Signal
			if !o.Detach {
				sigs = runtime.CatchSignals()
			}
			// A command that may outlive this berth (-d, or -it that the
			// keys can detach from) gets a keeper for parent, which waits
			// for it and journals its exec_die, as Docker's shim does.
			kept := o.Detach || o.Tty && c.Bool("interactive")
			var proc *runtime.Proc
			if kept {
				proc, err = keptExec(c, r, o)
			} else {
				proc, err = s.Exec(r, o)
				if err != nil {
					return initExit(err)
				}
			}
			if err != nil {
				return err
			}
			if o.Detach {
				return nil
			}
			if !kept {
				keys = nil
			}
			code, detached, err := proc.ForwardKeys(sigs, o.IO.Stdin, os.Stdout, keys)
			if err != nil {
				return err
			}
			if detached {
				return holdPty(proc.Console)
			}
			if !kept {
				s.ExecDied(r, o, code)
			}
			return exitCode(code)
		},
	}
}

// ptyHoldCommand is the hidden command that keeps the terminal of an
// exec the user detached from: closing its pty's master would hang the
// command up. It reads and drops the command's output (nobody is
// attached) until every holder of the terminal is gone.
const ptyHoldCommand = "__ptyhold"

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{{Name: ptyHoldCommand, Hidden: true, Action: func(*cli.Context) error {
			master := os.NewFile(3, "pty")
			if master == nil {
				return errors.New("no terminal to hold")
			}
			// The read ends with EIO once the slave side is closed.
			_, _ = io.Copy(io.Discard, master)
			return nil
		}}}
	})
}

// execKeepCommand is the hidden command that is the parent of a kept
// exec (see keptExec): it starts the command, reports on descriptor 3,
// waits for it and journals its end.
const execKeepCommand = "__execkeep"

// keptSpec is what keptExec passes its keeper: the ExecOpts but IO.
type keptSpec struct {
	Args       []string
	Env        []string
	Tty        bool
	Workdir    string
	User       string
	Privileged bool
	Detach     bool
	ID         string
}

// keeperMsg is one message from a keeper: first the command's pid (with
// its pty's master attached, for a terminal) or why it did not start,
// then its exit status.
type keeperMsg struct {
	Pid  int    `json:",omitempty"`
	Err  string `json:",omitempty"`
	Code int    `json:",omitempty"` // berth's exit status for Err
	Exit *int   `json:",omitempty"`
}

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{{Name: execKeepCommand, Hidden: true, Action: runExecKeeper}}
	})
}

// keptExec starts exec o in r through a keeper of its own, in a session of
// its own, and returns the command as a Proc whose Wait reads the status
// the keeper reports.
func keptExec(c *cli.Context, r *container.Record, o container.ExecOpts) (*runtime.Proc, error) {
	spec, err := json.Marshal(keptSpec{Args: o.Args, Env: o.Env, Tty: o.Tty, Workdir: o.Workdir,
		User: o.User, Privileged: o.Privileged, Detach: o.Detach, ID: o.ID})
	if err != nil {
		return nil, err
	}
	// A packet socket keeps the messages apart and carries the pty.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec: keeper socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "keeper"), os.NewFile(uintptr(pair[1]), "keeper-child")
	self, err := os.Executable()
	if err != nil {
		mine.Close()
		theirs.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	cmd := exec.Command(self, append(globalArgs(c), execKeepCommand, r.ID)...)
	cmd.ExtraFiles = []*os.File{theirs}
	// Its stderr is ours until it reports, for its own log lines; it
	// drops it then (see runExecKeeper).
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, fmt.Errorf("exec: start keeper: %w", err)
	}
	_ = cmd.Process.Release()
	// The spec goes over the socket, not the command line, which any
	// user can read: -e values may be secrets.
	if err := unix.Sendmsg(int(mine.Fd()), spec, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		mine.Close()
		return nil, fmt.Errorf("exec: keeper: %w", err)
	}
	first, console, err := recvKeeper(mine)
	if err != nil {
		mine.Close()
		return nil, err
	}
	if first.Err != "" {
		mine.Close()
		return nil, &exitError{code: first.Code, err: errors.New(first.Err)}
	}
	if o.Detach {
		mine.Close()
		return nil, nil
	}
	return runtime.ProcOf(first.Pid, console, func() (int, error) {
		defer mine.Close()
		m, _, err := recvKeeper(mine)
		if err != nil {
			return 125, err
		}
		if m.Exit == nil {
			return 125, errors.New("exec: the keeper reported no exit status")
		}
		return *m.Exit, nil
	}), nil
}

// recvKeeper reads one message, and the descriptor it carries, if any.
func recvKeeper(sock *os.File) (keeperMsg, *os.File, error) {
	var m keeperMsg
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return m, nil, fmt.Errorf("exec: keeper: %w", err)
	}
	if n == 0 {
		return m, nil, errors.New("exec: the keeper ended without a report")
	}
	var f *os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return m, nil, errors.New("exec: keeper: bad control message")
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return m, nil, errors.New("exec: keeper: no descriptor")
		}
		f = os.NewFile(uintptr(fds[0]), "pty")
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		if f != nil {
			f.Close()
		}
		return m, nil, fmt.Errorf("exec: keeper: %w", err)
	}
	return m, f, nil
}

// sendKeeper sends m, with f attached unless nil.
func sendKeeper(sock *os.File, m keeperMsg, f *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if f != nil {
		oob = unix.UnixRights(int(f.Fd()))
	}
	return unix.Sendmsg(int(sock.Fd()), b, oob, nil, unix.MSG_NOSIGNAL)
}

// runExecKeeper is the keeper of the container given as its argument;
// the first message on its socket is a keptSpec.
func runExecKeeper(c *cli.Context) error {
	sock := os.NewFile(3, "keeper")
	if sock == nil || c.NArg() != 1 {
		return errors.New("usage: berth " + execKeepCommand + " ID, with its socket on descriptor 3")
	}
	defer sock.Close()
	buf := make([]byte, 1<<20)
	n, _, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, nil, 0)
	if err != nil {
		return fmt.Errorf("exec keeper: read spec: %w", err)
	}
	var spec keptSpec
	if err := json.Unmarshal(buf[:n], &spec); err != nil {
		return fmt.Errorf("exec keeper: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	fail := func(err error) error {
		code := 125
		var ee *exitError
		if errors.As(initExit(err), &ee) {
			code = ee.code
		}
		if serr := sendKeeper(sock, keeperMsg{Err: err.Error(), Code: code}, nil); serr != nil {
			return fmt.Errorf("%v (and report it: %w)", err, serr)
		}
		return nil
	}
	s, r, err := runningContainer(c, 1, 1, "ID")
	if err != nil {
		return fail(err)
	}
	o := container.ExecOpts{Args: spec.Args, Env: spec.Env, Tty: spec.Tty, Workdir: spec.Workdir,
		User: spec.User, Privileged: spec.Privileged, Detach: spec.Detach, ID: spec.ID,
		IO: runtime.IO{Stdin: null, Stdout: null, Stderr: null}}
	proc, err := s.Exec(r, o)
	if err != nil {
		return fail(err)
	}
	err = sendKeeper(sock, keeperMsg{Pid: proc.Pid}, proc.Console)
	if proc.Console != nil {
		// The caller relays the terminal now, and hands it on if detached.
		proc.Console.Close()
	}
	if err != nil {
		logrus.Warnf("exec keeper: report start: %v", err)
	}
	// Nobody reads our stderr once the caller is gone.
	_ = unix.Dup2(int(null.Fd()), 2)
	code, err := proc.Wait()
	if err != nil {
		return err
	}
	s.ExecDied(r, o, code)
	// The caller is gone if it detached; that is no error.
	_ = sendKeeper(sock, keeperMsg{Exit: &code}, nil)
	return nil
}

// holdPty hands the terminal of a detached exec to a process of its own
// (in a session of its own, out of the user's terminal) and returns.
func holdPty(master *os.File) error {
	defer master.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	cmd := exec.Command(self, ptyHoldCommand)
	cmd.ExtraFiles = []*os.File{master}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("detach: keep the terminal: %w", err)
	}
	return cmd.Process.Release()
}

// execEnv is exec's environment: the --env-file lines, then -e, which
// overrides them, as Docker.
func execEnv(c *cli.Context) ([]string, error) {
	var env []string
	for _, file := range c.StringSlice("env-file") {
		e, err := runconfig.ParseEnvFile(file, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		env = append(env, e...)
	}
	e, err := runconfig.ParseEnv(c.StringSlice("env"), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return append(env, e...), nil
}
