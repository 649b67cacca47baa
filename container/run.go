package container

import (
	"errors"
	"os"
	"time"

	"github.com/berth-project/berth/runtime"
)

// ForegroundOpts are how RunForeground runs a container with the caller
// as its parent.
type ForegroundOpts struct {
	// Start is how each run's process starts; Foreground is implied.
	Start StartOpts
	// Wait waits for a started process and returns its exit status; the
	// caller forwards signals (and the terminal) to it meanwhile.
	Wait func(*runtime.Proc) (int, error)
	// Started, if set, is called after each start (sd_notify).
	Started func()
	// Interrupt ends the restarts: a signal that comes while no
	// container runs (between restarts).
	Interrupt <-chan os.Signal
	// HealthCheck is berth's command line (after the program) that runs
	// one healthcheck of the container; with one, the caller runs the
	// checks on schedule while the container runs, and calls Healthy
	// after each that passed.
	HealthCheck []string
	Healthy     func()
}

// RunForeground starts a created container with the caller as its parent
// and owner, waits for it, records its exit and restarts it as its policy
// says, with the back-off the monitor uses; --rm removes it at the end. It
// returns the last run's exit status; a failed start is a *StartError.
func (s *Store) RunForeground(id string, o ForegroundOpts) (int, error) {
	o.Start.Foreground = true
	var backoff Backoff
	for {
		proc, err := s.Start(id, o.Start)
		if err != nil {
			return 0, err // with --rm, Start removed it
		}
		started := time.Now()
		if o.Started != nil {
			o.Started()
		}
		stopHealth := s.foregroundHealth(id, o.HealthCheck, o.Healthy)
		code, err := o.Wait(proc)
		stopHealth()
		if err != nil {
			return 0, err
		}
		ran := time.Since(started)
		restart, err := s.Finished(id, code)
		if err != nil {
			return 0, err
		}
		if !restart {
			// --rm: Finished removed it, unless an rm -f was under way
			// and left it to this owner.
			if err := s.removeAuto(id); err != nil && !errors.Is(err, ErrNotFound) {
				return code, err
			}
			return code, nil
		}
		select {
		case <-time.After(backoff.Next(ran)):
		case <-o.Interrupt:
			if err := s.StopRestarting(id); err != nil {
				return code, err
			}
			return code, nil
		}
		cur, err := s.Find(id)
		if err != nil || cur.State.Status != StatusRestarting {
			return code, nil
		}
	}
}

// removeAuto removes a --rm container whose exit was recorded.
func (s *Store) removeAuto(id string) error {
	r, err := s.Load(id)
	if err != nil {
		return err
	}
	if !r.HostConfig.AutoRemove {
		return nil
	}
	return s.RemoveExited(id)
}
