// Package crashpoint lets the integration tests kill berth at an exact
// point of its work, to check what a crash there leaves behind: with
// BERTH_TEST_CRASH_AT=<name> in its environment, berth SIGKILLs itself
// when it reaches At(<name>). Nothing else in berth sets or reads it.
package crashpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// Env is the variable the tests set.
const Env = "BERTH_TEST_CRASH_AT"

// At kills this process when Env names point.
func At(point string) {
	if os.Getenv(Env) == point {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // the signal is on its way
	}
}
