package runtime

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/seccomp"
)

// setSpec puts the spec into cfg as the init needs it: the seccomp
// profile compiled, and without what only the parent reads (the process,
// sent as cfg.Process; resources; id mappings; annotations; the hooks
// other than createContainer and startContainer). Decoding it, with cold
// reflection caches, is on the init's critical path.
func (cfg *initConfig) setSpec(spec *specs.Spec) error {
	s := *spec
	s.Process, s.Annotations = nil, nil
	if spec.Hooks != nil {
		s.Hooks = &specs.Hooks{CreateContainer: spec.Hooks.CreateContainer, StartContainer: spec.Hooks.StartContainer}
	}
	cfg.Spec = &s
	if spec.Linux == nil {
		return nil
	}
	l := *spec.Linux
	l.Resources, l.UIDMappings, l.GIDMappings, l.Seccomp = nil, nil, nil, nil
	s.Linux = &l
	if spec.Linux.Seccomp == nil {
		return nil
	}
	f, err := seccomp.Prepare(spec.Linux.Seccomp)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	cfg.Seccomp, cfg.SeccompFlags = f.Program()
	return nil
}

// warmCodec builds encoding/json's caches for the init config's types,
// the whole runtime spec, in the background. Built on first use they cost
// over a millisecond, and the parent has that time to spare while it makes
// the cgroup and forks. (Not the init: its config is there when it starts,
// and building them beside the decoding would only double the work.)
func warmCodec() {
	warmOnce.Do(func() {
		go func() { _, _ = json.Marshal(message{Config: &initConfig{}}) }()
	})
}

var warmOnce sync.Once

// InitArg is the argv[1] with which berth re-executes itself as the init of
// a container (or of an exec'd process).
const InitArg = "init"

// fdEnv names the descriptors the parent hands the init, e.g.
// "sync=4,fifo=5,console=-1,preserve=1".
const fdEnv = "_BERTH_INIT_FDS"

// initConfig is what the parent sends the init once the child is in its
// cgroup.
type initConfig struct {
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
	// CgroupMounts are the host's cgroup mounts (v1 and hybrid), which
	// the init would otherwise read from a mount table of hundreds of
	// overlays.
	CgroupMounts []cgroupfs.Mount `json:"cgroup_mounts,omitempty"`
	HookState    specs.State      `json:"hook_state"`
	// ParentHooks says the parent runs prestart or createRuntime hooks
	// once the mounts are done; without any, the init does not stop there.
	ParentHooks bool `json:"parent_hooks,omitempty"`
	// Seccomp is the compiled filter of Spec.Linux.Seccomp: the parent
	// compiles it while the init starts, and the profile is not sent.
	Seccomp      bpfProgram `json:"seccomp,omitempty"`
	SeccompFlags uint       `json:"seccomp_flags,omitempty"`
	// NewMount says the init was cloned into a mount namespace of its
	// own; without it or JoinMount it shares the host's.
	NewMount bool `json:"new_mount,omitempty"`
	// Chroot is the root an exec'd process enters when the container
	// shares berth's mount namespace.
	Chroot string `json:"chroot,omitempty"`

	// placed waits until the parent has put the init in its cgroup; set
	// by the init, not sent.
	placed func() error
	// proc and caps are the host's /proc and the capability plan, taken
	// before a chroot into a rootfs without /proc; set by the init.
	proc *os.File
	caps *capPlan
}

// bpfProgram travels as the kernel's own 8-byte instructions in base64:
// as JSON objects, Docker's profile (some 600 instructions) was 24 KB that
// the init spent a millisecond decoding on every start.
type bpfProgram []unix.SockFilter

func (p bpfProgram) MarshalJSON() ([]byte, error) {
	raw := make([]byte, 0, 8*len(p))
	for _, in := range p {
		raw = binary.LittleEndian.AppendUint16(raw, in.Code)
		raw = append(raw, in.Jt, in.Jf)
		raw = binary.LittleEndian.AppendUint32(raw, in.K)
	}
	return json.Marshal(raw)
}

func (p *bpfProgram) UnmarshalJSON(b []byte) error {
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw)%8 != 0 {
		return fmt.Errorf("seccomp program of %d bytes is not whole instructions", len(raw))
	}
	prog := make(bpfProgram, len(raw)/8)
	for i := range prog {
		in := raw[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	*p = prog
	return nil
}

// message types on the sync socket.
const (
	msgConfig    = "config"     // parent → init: initConfig
	msgPlaced    = "placed"     // parent → init: in its cgroup, limits set
	msgMounted   = "mounted"    // init → parent: run prestart/createRuntime hooks
	msgHooksDone = "hooks-done" // parent → init
	msgCreated   = "created"    // init → parent: ready, waiting for start
	msgError     = "error"      // init → parent: failed, with Code and Msg
)

type message struct {
	Type   string      `json:"type"`
	Config *initConfig `json:"config,omitempty"`
	Code   int         `json:"code,omitempty"`
	Msg    string      `json:"msg,omitempty"`
}

type syncConn struct {
	f   *os.File
	enc *json.Encoder
	dec *json.Decoder
}

func newSync(f *os.File) *syncConn {
	return &syncConn{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

// bare is a message without a config. Encoding a message value builds the
// encoders of every type a config can hold, the whole runtime spec, which
// costs the init about a millisecond for messages that never carry one.
type bare struct {
	Type string `json:"type"`
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

func (s *syncConn) send(m message) error {
	var v any = m
	if m.Config == nil {
		v = bare{Type: m.Type, Code: m.Code, Msg: m.Msg}
	}
	if err := s.enc.Encode(v); err != nil {
		return fmt.Errorf("sync send %s: %w", m.Type, err)
	}
	return nil
}

func (s *syncConn) recv() (message, error) {
	var m message
	if err := s.dec.Decode(&m); err != nil {
		return m, fmt.Errorf("sync receive: %w", err)
	}
	return m, nil
}

// expect reads the next message and turns an error message into an error.
func (s *syncConn) expect(typ string) (message, error) {
	m, err := s.recv()
	if err != nil {
		return m, err
	}
	if m.Type == msgError {
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

type initFDs struct {
	sync, fifo, console, preserve int
	// tasks is the first of ntasks cgroup v1 "tasks" files (see
	// cgroupfs.Attach).
	tasks, ntasks int
}

func (f initFDs) String() string {
	return fmt.Sprintf("sync=%d,fifo=%d,console=%d,preserve=%d,tasks=%d,ntasks=%d", f.sync, f.fifo, f.console, f.preserve, f.tasks, f.ntasks)
}

func parseInitFDs(s string) (initFDs, error) {
	fds := initFDs{sync: -1, fifo: -1, console: -1, tasks: -1}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fds, fmt.Errorf("bad %s %q", fdEnv, s)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fds, fmt.Errorf("bad %s %q", fdEnv, s)
		}
		switch k {
		case "sync":
			fds.sync = n
		case "fifo":
			fds.fifo = n
		case "console":
			fds.console = n
		case "preserve":
			fds.preserve = n
		case "tasks":
			fds.tasks = n
		case "ntasks":
			fds.ntasks = n
		}
	}
	if fds.sync < 0 {
		return fds, fmt.Errorf("no sync fd in %s", fdEnv)
	}
	return fds, nil
}
