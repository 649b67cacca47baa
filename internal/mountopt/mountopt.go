// Package mountopt is the one table of the mount options berth
// understands: the flags of mount(2) and the propagation changes. The
// runtime applies them, the CLI checks --volume and --mount against them,
// and `oci features` lists them.
package mountopt

import (
	"sort"

	"golang.org/x/sys/unix"
)

// TmpCopyUp fills a new tmpfs with what the directory it covers holds.
const TmpCopyUp = "tmpcopyup"

// A Flag is what an option does to mount(2)'s flags: sets Flag, or
// clears it when Clear.
type Flag struct {
	Clear bool
	Flag  uintptr
}

var flags = map[string]Flag{
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

var propagations = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// Lookup is what option o does to the mount flags.
func Lookup(o string) (Flag, bool) {
	f, ok := flags[o]
	return f, ok
}

// Propagation is the propagation change option o asks for ("rshared").
func Propagation(o string) (uintptr, bool) {
	f, ok := propagations[o]
	return f, ok
}

// IsPropagation tells whether o is a propagation option.
func IsPropagation(o string) bool {
	_, ok := propagations[o]
	return ok
}

// Names lists every option berth applies, sorted; options it takes but
// ignores (rro, idmap...) are not among them.
func Names() []string {
	out := []string{TmpCopyUp}
	for o := range flags {
		out = append(out, o)
	}
	for o := range propagations {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}
