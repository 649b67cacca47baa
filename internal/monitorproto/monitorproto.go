// Package monitorproto is what berth and the lean monitor program
// (cmd/berth-monitor) must agree on: the frames of the attach protocol
// and the environment that hands a container's exit back to berth. It
// holds constants only, so the program stays small.
package monitorproto

// The attach protocol between a monitor and `attach`/`run -it`/`start -a`
// over a unix socket: frames of [kind byte][uint32 big-endian length][data].
const (
	// Monitor to client: output, and the exit status as a uint32.
	FrameStdout = 1
	FrameStderr = 2
	FrameExit   = 3
	// Client to monitor: input, a resize (rows, cols as uint16s), and
	// the end of input.
	FrameStdin      = 0
	FrameResize     = 1
	FrameCloseStdin = 2
	// MaxFrame bounds a frame's data.
	MaxFrame = 1 << 20
)

// The lean monitor program runs berth's monitor command again with these
// added to its environment.
const (
	// EnvExit is the container's exit status in the shell's convention.
	EnvExit = "BERTH_MONITOR_EXIT"
	// EnvFinished is when the container ended, in Unix nanoseconds.
	EnvFinished = "BERTH_MONITOR_FINISHED"
)

// berth's hidden commands: the monitor's, and the one that runs a
// container's healthcheck once (the monitor starts it on schedule, with
// --monitor ID).
const (
	MonitorCommand = "__monitor"
	HealthCommand  = "__health"
	// UsernsCommand waits for its stdin to close, in a user namespace
	// made for it, for the engine to take the namespace's descriptor.
	UsernsCommand = "__userns"
)

// The lean monitor program started ahead of a detached container
// (`berth-monitor __monitor serve ID`, with a SOCK_SEQPACKET socket as
// its descriptor 3) forks the container's init for berth and then runs
// the monitor loop. Each message is NUL-separated words, with
// descriptors as SCM_RIGHTS:
//
//	ServeFork PATH CLONEFLAGS CGROUP NENV ENV... ARGV...
//	    fork PATH with the descriptors as 0, 1, 2, ..., except the one at
//	    index CGROUP (-1: none), the cgroup2 directory to be born in.
//	    Reply: ServePid PID, or ServeError TEXT.
//	ServeRun NENV ENV... WORD...
//	    run the loop: WORDs are the program's lean command line, ENVs
//	    are added to its environment; "@N" in a value (or in each part
//	    of a comma list) is the descriptor at index N. stderr=@N is where
//	    the program complains. Reply: ServeOK, or ServeError TEXT.
//
// The socket's end before ServeRun means the start failed: the program
// kills the init it forked, reaps it, and exits.
const (
	ServeCommand = "serve"
	ServeFork    = "F"
	ServeRun     = "R"
	ServePid     = "P"
	ServeOK      = "K"
	ServeError   = "E"
)
