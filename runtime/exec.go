package runtime

import (
	"errors"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/namespaces"
)

// ExecOpts are the options of exec.
type ExecOpts struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
	IO            IO
	Foreground    bool
}

// Exec starts another process in a running container: in its namespaces
// and cgroup, with the given process settings.
func (r *Runtime) Exec(id string, o ExecOpts) (*Proc, error) {
	warmCodec()
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	if st := r.Status(c); st != StatusRunning && st != StatusCreated {
		return nil, fmt.Errorf("container %s is %s, not running", id, st)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return nil, errors.New("exec: no command given")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := checkUser(p.User); err != nil {
		return nil, err
	}
	if p.Terminal && o.ConsoleSocket == "" && !o.Foreground {
		return nil, errors.New("a terminal needs --console-socket when detached")
	}
	plan, err := namespaces.JoinForExec(c.Pid)
	if err != nil {
		return nil, err
	}
	// The init joins the mount namespace itself, and the cgroup namespace
	// once it is in the container's cgroup: the kernel refuses to clone
	// into a cgroup that the caller's cgroup namespace cannot see.
	mnt, cgns := plan.Join[specs.MountNamespace], plan.Join[specs.CgroupNamespace]
	delete(plan.Join, specs.MountNamespace)
	delete(plan.Join, specs.CgroupNamespace)
	mgr, err := r.manager(c)
	if err != nil {
		return nil, err
	}
	console, internalConsole, err := consoleSocket(p.Terminal, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	if console != nil {
		defer console.Close()
	}
	if internalConsole != nil {
		defer internalConsole.Close()
	}
	att, err := mgr.OpenAttach()
	if err != nil {
		return nil, err
	}
	initProc, sync, err := r.startInit(plan, nil, o.IO.orStd(), o.PreserveFDs, nil, console, att, nil, initproto.Passed{}, nil)
	att.Close()
	if err != nil {
		return nil, err
	}
	defer sync.Close()
	fail := func(err error) (*Proc, error) {
		return nil, initFailed(initProc, err)
	}
	spec := *c.Config
	spec.Hooks = nil
	cfg := &initproto.Config{Exec: true, ID: id, Process: p, JoinMount: mnt, JoinCgroup: cgns, Rootfs: c.Rootfs}
	if mnt == "" {
		// The container shares our mount namespace and is chrooted.
		cfg.Chroot = fmt.Sprintf("/proc/%d/root", c.Pid)
	}
	if err := setSpec(cfg, &spec, nil); err != nil {
		return fail(err)
	}
	if err := sync.Send(initproto.Message{Type: initproto.MsgConfig, Config: cfg}); err != nil {
		return fail(err)
	}
	if err := sync.Send(initproto.Message{Type: initproto.MsgPlaced}); err != nil {
		return fail(err)
	}
	if _, err := sync.Expect(initproto.MsgCreated); err != nil {
		return fail(err)
	}
	proc := initProc.proc()
	if internalConsole != nil {
		if proc.Console, err = RecvConsole(internalConsole); err != nil {
			return fail(err)
		}
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return nil, err
		}
	}
	return proc, nil
}

// DeleteAfterRun removes a container whose foreground run ended; any
// processes left in its cgroup are killed first.
func (r *Runtime) DeleteAfterRun(id string) {
	for i := 0; i < 3; i++ {
		err := r.Delete(id, true)
		if err == nil {
			return
		}
		logrus.Warnf("delete %s: %v", id, err)
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "berth: container %s could not be removed; run: berth oci delete -f %s\n", id, id)
}
