package container

import (
	"errors"
	"strings"
	"time"
)

// PruneOpts select the stopped containers Prune removes.
type PruneOpts struct {
	// Until: only containers created before it (zero: any).
	Until time.Time
	// Labels: only containers with each of these labels, as KEY or
	// KEY=VALUE.
	Labels []string
}

// Prune removes the stopped containers o selects, and whatever crashed
// berths left half-made. It returns the ids it removed and the bytes
// their changes took.
func (s *Store) Prune(o PruneOpts) ([]string, int64, error) {
	recs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var reclaimed int64
	for _, r := range recs {
		if r.State.Running || r.State.Restarting || r.State.Status == StatusRemoving || s.Busy(r.ID) {
			continue
		}
		if !o.Until.IsZero() && r.Created.After(o.Until) {
			continue
		}
		if !r.HasLabels(o.Labels) {
			continue
		}
		size := DirSize(s.UpperDir(r.ID))
		if err := s.Remove(r.ID, RemoveOpts{}); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return removed, reclaimed, err
		}
		removed = append(removed, r.ID)
		reclaimed += size
	}
	// What crashed berths left half-made has no record to filter on.
	half, err := s.RemoveAbandoned("")
	removed = append(removed, half...)
	if err != nil {
		return removed, reclaimed, err
	}
	// Network leases, rules and held ports of containers that are gone.
	if s.net != nil {
		err = s.net.Reclaim(s.netLive)
	}
	return removed, reclaimed, err
}

// HasLabels says whether the container has each label, given as KEY (any
// value) or KEY=VALUE.
func (r *Record) HasLabels(labels []string) bool {
	for _, l := range labels {
		k, v, hasV := strings.Cut(l, "=")
		got, has := r.Config.Labels[k]
		if !has || hasV && got != v {
			return false
		}
	}
	return true
}

// ChangesSize is the bytes of a container's changes to its image.
func (s *Store) ChangesSize(id string) int64 { return DirSize(s.UpperDir(id)) }
