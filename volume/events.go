package volume

import (
	"path/filepath"

	"github.com/berth-project/berth/events"
)

// emit journals a volume event as Docker does: the name for the actor,
// the driver as its attribute.
func (s *Store) emit(action, name string) {
	events.Emit(filepath.Dir(s.root), events.TypeVolume, action, name, map[string]string{"driver": "local"})
}
