//go:build !berth_build

package helperbin

import "embed"

// buildFiles holds the build helper that make puts in buildbin; the
// helper, built with the tag berth_build, leaves it out, or each build of
// it would carry the one before.
//
//go:embed buildbin
var buildFiles embed.FS
