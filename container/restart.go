package container

import "time"

// The restart policy, one for the foreground path and the monitor.

// WantRestart says whether the restart policy wants the container started
// again after its process ended with code. A container stopped by the user
// (stop, kill, rm) is never restarted; on-failure:N counts the restarts so
// far in r.RestartCount.
func WantRestart(r *Record, code int) bool {
	p := r.HostConfig.RestartPolicy
	if r.HealthRestart && !r.ManuallyStopped {
		return true
	}
	if r.ManuallyStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaximumRetryCount <= 0 || r.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// RestartOnBoot says whether berth system restore starts r, a container
// that is not running: after a reboot (or whatever else ended its
// monitor) the restart policy brings it back as Docker's daemon does at
// its start: "always" once it ever ran, even after a stop by the user;
// "unless-stopped" unless the user stopped it. --rm containers are left
// alone (their end is their removal).
func RestartOnBoot(r *Record) bool {
	if r.State.Running || r.State.StartedAt.IsZero() || r.HostConfig.AutoRemove ||
		r.State.Status == StatusRemoving || r.State.Status == StatusDead {
		return false
	}
	switch r.HostConfig.RestartPolicy.Name {
	case "always":
		return true
	case "unless-stopped":
		return !r.ManuallyStopped
	}
	return false
}

// Docker's back-off: the wait before a restart doubles from BackoffStart
// as long as it is below BackoffMax (so it ends at the first doubling past
// it), and starts over once the container ran BackoffReset.
const (
	BackoffStart = 100 * time.Millisecond
	BackoffMax   = time.Minute
	BackoffReset = 10 * time.Second
)

// Backoff is the wait before each restart of one container. The zero
// value is ready to use.
type Backoff struct {
	next time.Duration
}

// Next returns how long to wait before the next start, for a container
// whose last run lasted ran, and advances the sequence.
func (b *Backoff) Next(ran time.Duration) time.Duration {
	if b.next == 0 || ran > BackoffReset {
		b.next = BackoffStart
	}
	d := b.next
	if b.next < BackoffMax {
		b.next *= 2
	}
	return d
}

// Current is the wait Next returns for a short run; a monitor hands it
// across its exec into the lean program and back (see leanState).
func (b *Backoff) Current() time.Duration {
	if b.next == 0 {
		return BackoffStart
	}
	return b.next
}

// ResumeBackoff continues a sequence whose next wait is d.
func ResumeBackoff(d time.Duration) Backoff { return Backoff{next: d} }
