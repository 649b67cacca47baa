package monitorcore

import (
	"testing"
	"time"
)

// The clocks stand in for package time: the wall clock is the time of
// day, the monotonic one does not run backwards.
func TestClocks(t *testing.T) {
	// The clocks: the wall clock is the time of day, the monotonic one
	// does not run backwards.
	if d := time.Since(time.Unix(0, wallNow())); d < 0 || d > time.Second {
		t.Errorf("wallNow is %v off the time of day", d)
	}
	if a, b := now(clockMonotonic), now(clockMonotonic); a <= 0 || b < a {
		t.Errorf("monotonic clock read %d then %d", a, b)
	}
}
