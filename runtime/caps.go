package runtime

import (
	"strings"

	"github.com/moby/sys/capability"
)

// KnownCaps lists the capability names berth understands.
func KnownCaps() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// BoundedCaps are the known capabilities in berth's own bounding set: all
// a privileged container can be given.
func BoundedCaps() []string {
	p, err := capability.NewPid2(0)
	if err != nil || p.Load() != nil {
		return KnownCaps()
	}
	var out []string
	for _, c := range capability.ListKnown() {
		if p.Get(capability.BOUNDING, c) {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}
