// Package initproto is what berth's runtime (the parent) and the
// container init (package containerinit) share: the argument and
// environment that start the init, the configuration the parent sends it,
// and the messages on the socket between them. Both sides import it; it
// links nothing else of berth, so the init program stays small.
package initproto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs/hostcg"
)

// InitArg is the argv[1] with which berth re-executes itself as the init of
// a container (or of an exec'd process).
const InitArg = "init"

// FDEnv names the descriptors the parent hands the init, e.g.
// "sync=4,fifo=5,console=-1,preserve=1".
const FDEnv = "_BERTH_INIT_FDS"

// Config is what the parent sends the init once the child is in its
// cgroup.
type Config struct {
	Exec       bool           `json:"exec"`
	ID         string         `json:"id"`
	Spec       *specs.Spec    `json:"spec"`
	Process    *specs.Process `json:"process"`
	Rootfs     string         `json:"rootfs"`
	Bundle     string         `json:"bundle"`
	NoPivot    bool           `json:"no_pivot"`
	JoinMount  string         `json:"join_mount,omitempty"`
	JoinCgroup string         `json:"join_cgroup,omitempty"`
	CgroupNS   bool           `json:"cgroup_ns"`
	NewCgroup  bool           `json:"new_cgroup_ns"`
	NewUTS     bool           `json:"new_uts"`
	NewNet     bool           `json:"new_net"`
	UserNS     bool           `json:"user_ns"`
	CgroupMode int            `json:"cgroup_mode"`
	CgroupPath string         `json:"cgroup_path"`
	// PidsMax is the value for FDs.PidsMax.
	PidsMax string `json:"pids_max,omitempty"`
	// CgroupMounts are the host's cgroup mounts (v1 and hybrid), which
	// the init would otherwise read from a mount table of hundreds of
	// overlays.
	CgroupMounts []hostcg.Mount `json:"cgroup_mounts,omitempty"`
	HookState    specs.State    `json:"hook_state"`
	// ParentHooks says the parent runs prestart or createRuntime hooks
	// once the mounts are done; without any, the init does not stop there.
	ParentHooks bool `json:"parent_hooks,omitempty"`
	// Seccomp is the compiled filter of Spec.Linux.Seccomp: the parent
	// compiles it while the init starts, and the profile is not sent.
	Seccomp      BPFProgram `json:"seccomp,omitempty"`
	SeccompFlags uint       `json:"seccomp_flags,omitempty"`
	// NewMount says the init was cloned into a mount namespace of its
	// own; without it or JoinMount it shares the host's.
	NewMount bool `json:"new_mount,omitempty"`
	// Chroot is the root an exec'd process enters when the container
	// shares berth's mount namespace.
	Chroot string `json:"chroot,omitempty"`
}

// BPFProgram travels as the kernel's own 8-byte instructions in base64:
// as JSON objects, Docker's profile (some 600 instructions) was 24 KB that
// the init spent a millisecond decoding on every start.
type BPFProgram []unix.SockFilter

func (p BPFProgram) MarshalJSON() ([]byte, error) {
	raw := make([]byte, 0, 8*len(p))
	for _, in := range p {
		raw = binary.LittleEndian.AppendUint16(raw, in.Code)
		raw = append(raw, in.Jt, in.Jf)
		raw = binary.LittleEndian.AppendUint32(raw, in.K)
	}
	return json.Marshal(raw)
}

func (p *BPFProgram) UnmarshalJSON(b []byte) error {
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw)%8 != 0 {
		return fmt.Errorf("seccomp program of %d bytes is not whole instructions", len(raw))
	}
	prog := make(BPFProgram, len(raw)/8)
	for i := range prog {
		in := raw[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	*p = prog
	return nil
}

// Message types on the sync socket.
const (
	MsgConfig    = "config"     // parent → init: Config
	MsgPlaced    = "placed"     // parent → init: in its cgroup, limits set
	MsgMounted   = "mounted"    // init → parent: run prestart/createRuntime hooks
	MsgHooksDone = "hooks-done" // parent → init
	MsgCreated   = "created"    // init → parent: ready, waiting for start
	MsgError     = "error"      // init → parent: failed, with Code and Msg
)

type Message struct {
	Type   string  `json:"type"`
	Config *Config `json:"config,omitempty"`
	Code   int     `json:"code,omitempty"`
	Msg    string  `json:"msg,omitempty"`
}

type SyncConn struct {
	f   *os.File
	enc *json.Encoder
	dec *json.Decoder
}

func NewSync(f *os.File) *SyncConn {
	return &SyncConn{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

// Warm builds encoding/json's caches for a config's types, which its
// first decode would otherwise build on the init's critical path.
func Warm() {
	_, _ = json.Marshal(Message{Config: &Config{Spec: &specs.Spec{}, Process: &specs.Process{}}})
}

// bare is a Message without a config. Encoding a Message value builds the
// encoders of every type a config can hold, the whole runtime spec, which
// costs the init about a millisecond for messages that never carry one.
type bare struct {
	Type string `json:"type"`
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

func (s *SyncConn) Send(m Message) error {
	var v any = m
	if m.Config == nil {
		v = bare{Type: m.Type, Code: m.Code, Msg: m.Msg}
	}
	if err := s.enc.Encode(v); err != nil {
		return fmt.Errorf("sync send %s: %w", m.Type, err)
	}
	return nil
}

// SendFDs sends descriptors, before any message: one byte carries them.
func (s *SyncConn) SendFDs(fds ...int) error {
	if err := unix.Sendmsg(int(s.f.Fd()), []byte{0}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("sync send descriptors: %w", err)
	}
	return nil
}

// RecvFDs receives the n descriptors of SendFDs; call it before Recv,
// whose decoder reads ahead.
func (s *SyncConn) RecvFDs(n int) ([]int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*n))
	got, oobn, flags, _, err := unix.Recvmsg(int(s.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sync receive descriptors: %w", err)
	}
	if got != 1 || flags&unix.MSG_CTRUNC != 0 {
		return nil, errors.New("sync receive descriptors: no descriptors")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("sync receive descriptors: bad control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != n {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("sync receive descriptors: got %d, want %d", len(fds), n)
	}
	return fds, nil
}

// Close closes the socket.
func (s *SyncConn) Close() error { return s.f.Close() }

func (s *SyncConn) Recv() (Message, error) {
	var m Message
	if err := s.dec.Decode(&m); err != nil {
		return m, fmt.Errorf("sync receive: %w", err)
	}
	return m, nil
}

// expect reads the next Message and turns an error Message into an error.
func (s *SyncConn) Expect(typ string) (Message, error) {
	m, err := s.Recv()
	if err != nil {
		return m, err
	}
	if m.Type == MsgError {
		return m, &InitError{Code: m.Code, Msg: m.Msg}
	}
	if m.Type != typ {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// InitError is a failure reported by a container's init before the user
// program ran. Code follows Docker: 126 not executable, 127 not found, 125
// anything else.
type InitError struct {
	Code int
	Msg  string
}

func (e *InitError) Error() string { return e.Msg }

type FDs struct {
	Sync, Fifo, Console, Preserve int
	// Tasks is the first of NTasks cgroup v1 "tasks" files (see
	// cgroupfs.Attach).
	Tasks, NTasks int
	// PidsMax is cgroup2's pids.max, which the init writes Config.PidsMax
	// to once set up, before any of the container runs (see
	// cgroupfs.Attach.OpenPidsMax).
	PidsMax int
	// Passed says which descriptors the parent sends on the sync socket
	// before the config (see SendFDs), made after the init started.
	Passed Passed
}

// Passed are the descriptors sent before the config, in this order.
type Passed struct {
	// NetNS is the network namespace to join.
	NetNS bool
	// Root is the container's root, a detached mount (open_tree) to
	// attach at Config.Rootfs in the init's mount namespace, which was
	// copied before the root was mounted.
	Root bool
}

// Count is how many descriptors p stands for.
func (p Passed) Count() int {
	n := 0
	for _, b := range []bool{p.NetNS, p.Root} {
		if b {
			n++
		}
	}
	return n
}

func (f FDs) String() string {
	return fmt.Sprintf("sync=%d,fifo=%d,console=%d,preserve=%d,tasks=%d,ntasks=%d,pidsmax=%d,netns=%d,root=%d",
		f.Sync, f.Fifo, f.Console, f.Preserve, f.Tasks, f.NTasks, f.PidsMax, b2i(f.Passed.NetNS), b2i(f.Passed.Root))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ParseFDs(s string) (FDs, error) {
	fds := FDs{Sync: -1, Fifo: -1, Console: -1, Tasks: -1, PidsMax: -1}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fds, fmt.Errorf("bad %s %q", FDEnv, s)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fds, fmt.Errorf("bad %s %q", FDEnv, s)
		}
		switch k {
		case "sync":
			fds.Sync = n
		case "fifo":
			fds.Fifo = n
		case "console":
			fds.Console = n
		case "preserve":
			fds.Preserve = n
		case "tasks":
			fds.Tasks = n
		case "ntasks":
			fds.NTasks = n
		case "pidsmax":
			fds.PidsMax = n
		case "netns":
			fds.Passed.NetNS = n == 1
		case "root":
			fds.Passed.Root = n == 1
		}
	}
	if fds.Sync < 0 {
		return fds, fmt.Errorf("no sync fd in %s", FDEnv)
	}
	return fds, nil
}
