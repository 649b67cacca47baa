package buildctx

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MkdirAll makes directory p and its missing parents inside the root
// filesystem root (symlinks resolved inside it), as WORKDIR does: each
// directory it makes is 0755 and owned by owner (root when nil). It
// tells whether it made any.
func MkdirAll(root *os.File, p string, owner *Owner) (bool, error) {
	made := false
	comps := splitRel(strings.TrimPrefix(path.Clean("/"+p), "/"))
	for i := range comps {
		prefix := "/" + strings.Join(comps[:i+1], "/")
		fd, created, err := mkdirAll(root, prefix)
		if err != nil {
			return made, err
		}
		if created && owner != nil {
			err = unix.Fchownat(fd, "", owner.UID, owner.GID, unix.AT_EMPTY_PATH)
		}
		unix.Close(fd)
		if err != nil {
			return made, fmt.Errorf("chown %s: %w", prefix, err)
		}
		made = made || created
	}
	return made, nil
}
