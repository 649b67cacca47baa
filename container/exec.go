package container

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/passwd"
	"github.com/berth-project/berth/runtime"
)

// ExecOpts are what exec runs in a running container.
type ExecOpts struct {
	Args []string
	// Env is added to the container's environment, as KEY=VALUE.
	Env        []string
	Tty        bool
	Workdir    string // "" is the container's
	User       string // "" is the container's
	Privileged bool   // every capability berth may give
	IO         runtime.IO
	// Detach: berth does not wait; the process gets no terminal.
	Detach bool
	// ID names the exec in its events; empty is a fresh one.
	ID string
}

// ExecProcess is the process spec of an exec in container r: the
// container's own, with o applied and the user looked up in its root.
func (s *Store) ExecProcess(r *Record, o ExecOpts) (*specs.Process, error) {
	if r.Spec == nil || r.Spec.Process == nil {
		return nil, fmt.Errorf("container %s has no process spec", r.Name)
	}
	p := *r.Spec.Process
	p.Args = o.Args
	p.Terminal = o.Tty && !o.Detach
	// As Docker: a terminal gets TERM=xterm unless -e says otherwise;
	// the exec's variables replace the container's of the same name.
	extra := o.Env
	if p.Terminal {
		extra = append([]string{"TERM=xterm"}, o.Env...)
	}
	p.Env = mergeEnv(p.Env, extra)
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	user := r.Config.User
	if o.User != "" {
		user = o.User
	}
	uid, gid, groups, home, err := passwd.Lookup(s.MergedDir(r.ID), user, nil)
	if err != nil {
		return nil, err // passwd's errors name the user
	}
	p.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
	p.Env = passwd.WithHome(p.Env, home)
	if o.Privileged {
		all := runtime.BoundedCaps()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

// Exec starts a process in running container r; unless detached, the
// caller is its parent and waits for it.
func (s *Store) Exec(r *Record, o ExecOpts) (*runtime.Proc, error) {
	if !r.State.Running {
		return nil, fmt.Errorf("container %s is not running", r.Name)
	}
	if r.State.Paused {
		return nil, fmt.Errorf("container %s is paused, unpause the container before exec", r.Name)
	}
	p, err := s.ExecProcess(r, o)
	if err != nil {
		return nil, err
	}
	execID := o.ID
	if execID == "" {
		execID = NewID()
	}
	cmd := strings.Join(o.Args, " ")
	s.emit(r, "exec_create: "+cmd, "execID", execID)
	proc, err := s.rt.Exec(r.ID, runtime.ExecOpts{Process: p, IO: o.IO, Foreground: !o.Detach})
	if err != nil {
		return nil, err
	}
	s.emit(r, "exec_start: "+cmd, "execID", execID)
	return proc, nil
}

// mergeEnv is base with each of extra's KEY=VALUE set: replaced in place
// when base has KEY, appended otherwise (getenv takes the first).
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		found := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], found = e, true
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	return out
}

// ExecDied journals the end of exec o, which the caller waited for.
func (s *Store) ExecDied(r *Record, o ExecOpts, code int) {
	s.emit(r, "exec_die", "execID", o.ID, "exitCode", strconv.Itoa(code))
}
