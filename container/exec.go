package container

import (
	"fmt"

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
	p.Env = append(append([]string{}, p.Env...), o.Env...)
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	user := r.Config.User
	if o.User != "" {
		user = o.User
	}
	uid, gid, groups, home, err := passwd.Lookup(s.MergedDir(r.ID), user, nil)
	if err != nil {
		return nil, fmt.Errorf("unable to find user %s: %w", user, err)
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
	return s.rt.Exec(r.ID, runtime.ExecOpts{Process: p, IO: o.IO, Foreground: !o.Detach})
}
