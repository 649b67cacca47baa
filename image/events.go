package image

import (
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/events"
)

// emit journals an image event: id is the image ID, or the reference
// Docker puts there (pull, push), name the reference as the user gave it.
func (s *Store) emit(action, id, name string) {
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	events.Emit(filepath.Dir(s.root), events.TypeImage, action, id, attrs)
}

// emitReport journals the untag and delete events of rmi's report lines.
func (s *Store) emitReport(id string, report []string) {
	for _, l := range report {
		if n, ok := strings.CutPrefix(l, "Untagged: "); ok {
			s.emit("untag", id, n)
		} else if d, ok := strings.CutPrefix(l, "Deleted: "); ok {
			s.emit("delete", d, "")
		}
	}
}

// emitLoaded journals load events of Load's report lines.
func (s *Store) emitLoaded(report []string) {
	for _, l := range report {
		if n, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			id := n
			if img, err := s.Resolve(n); err == nil {
				id = img.ID.String()
			}
			s.emit("load", id, n)
		} else if d, ok := strings.CutPrefix(l, "Loaded image ID: "); ok {
			s.emit("load", d, "")
		}
	}
}
