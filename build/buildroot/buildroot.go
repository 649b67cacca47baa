// Package buildroot names the directory under the data root that holds
// all that berth build keeps (its step cache and cache mounts). It is
// its own package so that berth, which does not link package build, can
// tell whether there is any build cache before it runs the build helper.
package buildroot

import "path/filepath"

// Dir is the build's directory under dataRoot.
func Dir(dataRoot string) string { return filepath.Join(dataRoot, "build") }
