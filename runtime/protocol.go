package runtime

import (
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/seccomp"
)

// setSpec puts the spec into cfg as the init needs it: the seccomp
// profile compiled, and without what only the parent reads (the process,
// sent as cfg.Process; resources; id mappings; annotations; the hooks
// other than createContainer and startContainer). Decoding it, with cold
// reflection caches, is on the init's critical path.
func setSpec(cfg *initproto.Config, spec *specs.Spec, ahead *aheadSeccomp) error {
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
	var f *seccomp.Filter
	var err error
	if ahead != nil && ahead.profile == spec.Linux.Seccomp {
		<-ahead.done
		f, err = ahead.f, ahead.err
	} else {
		f, err = seccomp.Prepare(spec.Linux.Seccomp)
	}
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	cfg.Seccomp, cfg.SeccompFlags = f.Program()
	return nil
}

// aheadSeccomp is a seccomp profile being compiled in the background,
// while the init starts and the caller completes the spec.
type aheadSeccomp struct {
	profile *specs.LinuxSeccomp
	done    chan struct{}
	f       *seccomp.Filter
	err     error
}

func compileAhead(profile *specs.LinuxSeccomp) *aheadSeccomp {
	if profile == nil {
		return nil
	}
	a := &aheadSeccomp{profile: profile, done: make(chan struct{})}
	go func() {
		a.f, a.err = seccomp.Prepare(profile)
		close(a.done)
	}()
	return a
}

// warmCodec builds encoding/json's caches for the init config's types,
// the whole runtime spec, in the background. Built on first use they cost
// over a millisecond, and the parent has that time to spare while it makes
// the cgroup and forks. (Not the init: its config is there when it starts,
// and building them beside the decoding would only double the work.)
func warmCodec() {
	warmOnce.Do(func() {
		go initproto.Warm()
	})
}

var warmOnce sync.Once

// InitError is a failure reported by a container's init before the user
// program ran (see initproto.InitError).
type InitError = initproto.InitError
