package container

import (
	"github.com/berth-project/berth/events"
)

// emit journals a container event with Docker's attributes: the image
// as the user named it, the name, the labels, and extra key/value pairs.
func (s *Store) emit(r *Record, action string, extra ...string) {
	attrs := make(map[string]string, len(r.Config.Labels)+2+len(extra)/2)
	for k, v := range r.Config.Labels {
		attrs[k] = v
	}
	img := r.ImageName
	if img == "" {
		img = r.Config.Image
	}
	attrs["image"] = img
	attrs["name"] = r.Name
	for i := 0; i+1 < len(extra); i += 2 {
		attrs[extra[i]] = extra[i+1]
	}
	events.Emit(s.DataRoot, events.TypeContainer, action, r.ID, attrs)
}
