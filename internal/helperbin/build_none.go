//go:build berth_build

package helperbin

import "embed"

// buildFiles is empty in the build helper itself (see build_embed.go).
var buildFiles embed.FS
