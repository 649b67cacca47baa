package containerinit

import (
	"strings"

	"github.com/berth-project/berth/internal/mountopt"
)

// parsedMount is a spec mount's options split into mount(2) flags,
// propagation changes and filesystem data.
type parsedMount struct {
	flags       uintptr
	propagation []uintptr
	data        string
	// copyUp (tmpcopyup) fills a new tmpfs with what the directory it
	// covers holds.
	copyUp bool
}

func parseMountOptions(opts []string) parsedMount {
	var p parsedMount
	var data []string
	for _, o := range opts {
		if f, ok := mountopt.Lookup(o); ok {
			if f.Clear {
				p.flags &^= f.Flag
			} else {
				p.flags |= f.Flag
			}
			continue
		}
		if f, ok := mountopt.Propagation(o); ok {
			p.propagation = append(p.propagation, f)
			continue
		}
		if o == mountopt.TmpCopyUp {
			p.copyUp = true
			continue
		}
		// Options runc ignores or handles elsewhere.
		switch o {
		case "rro", "rrw", "idmap", "ridmap", "nosymfollow":
			continue
		}
		data = append(data, o)
	}
	p.data = strings.Join(data, ",")
	return p
}
