package containerinit

import (
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var capByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// parseCaps turns names into capabilities, refusing names the kernel does
// not know and capabilities outside berth's own bounding set (which no
// process of ours can grant: on some hosts root lacks CAP_SYS_RESOURCE).
func parseCaps(names []string, bound capability.Capabilities, last capability.Cap) ([]capability.Cap, error) {
	var out []capability.Cap
	for _, n := range names {
		c, ok := capByName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			return nil, fmt.Errorf("capability %s is not supported by this kernel", n)
		}
		if !bound.Get(capability.BOUNDING, c) {
			return nil, fmt.Errorf("capability %s is not in berth's own bounding set, so it cannot be granted", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// capPlan is the capability sets a process gets, resolved before any of
// them is applied so that a bad name fails before anything changes.
type capPlan struct {
	caps                                                 capability.Capabilities
	bounding, effective, permitted, inheritable, ambient []capability.Cap
}

func planCaps(c *specs.LinuxCapabilities) (*capPlan, error) {
	cur, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if err := cur.Load(); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	p := &capPlan{caps: cur}
	for _, set := range []struct {
		names []string
		dst   *[]capability.Cap
	}{{c.Bounding, &p.bounding}, {c.Effective, &p.effective}, {c.Permitted, &p.permitted}, {c.Inheritable, &p.inheritable}, {c.Ambient, &p.ambient}} {
		if *set.dst, err = parseCaps(set.names, cur, last); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// dropBounding reduces the bounding set; it must run while we still hold
// CAP_SETPCAP, before switching user.
func (p *capPlan) dropBounding() error {
	p.caps.Clear(capability.BOUNDS)
	p.caps.Set(capability.BOUNDING, p.bounding...)
	if err := p.caps.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	return nil
}

// apply sets the effective, permitted, inheritable and ambient sets of the
// calling thread (the one that will execve).
func (p *capPlan) apply() error {
	p.caps.Clear(capability.CAPS | capability.AMBS)
	p.caps.Set(capability.EFFECTIVE, p.effective...)
	p.caps.Set(capability.PERMITTED, p.permitted...)
	p.caps.Set(capability.INHERITABLE, p.inheritable...)
	// The kernel raises an ambient capability only when it is both
	// permitted and inheritable; runc's default spec lists ambient ones
	// without inheritable, so skip those as runc does instead of failing.
	in := func(set []capability.Cap, c capability.Cap) bool {
		for _, x := range set {
			if x == c {
				return true
			}
		}
		return false
	}
	// An ambient capability that is not also permitted and inheritable
	// is skipped, as runc does: the kernel would refuse it.
	for _, c := range p.ambient {
		if in(p.permitted, c) && in(p.inheritable, c) {
			p.caps.Set(capability.AMBIENT, c)
		}
	}
	if err := p.caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	if err := p.caps.Apply(capability.AMBS); err != nil {
		return fmt.Errorf("set ambient capabilities: %w", err)
	}
	return nil
}
