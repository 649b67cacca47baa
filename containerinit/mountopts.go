package containerinit

import (
	"strings"

	"golang.org/x/sys/unix"
)

type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]mountFlag{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"suid":          {true, unix.MS_NOSUID},
	"nosuid":        {false, unix.MS_NOSUID},
	"dev":           {true, unix.MS_NODEV},
	"nodev":         {false, unix.MS_NODEV},
	"exec":          {true, unix.MS_NOEXEC},
	"noexec":        {false, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
}

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

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
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationFlags[o]; ok {
			p.propagation = append(p.propagation, f)
			continue
		}
		if o == "tmpcopyup" {
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
