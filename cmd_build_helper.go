//go:build !berth_build && !docsgen

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/build/buildroot"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/helperbin"
)

// berth build and berth builder run in the build helper (see cmd_build.go):
// berth execs it with its own command line, so its output, input, signals
// and exit status are the command's.
var (
	buildAction        = runBuildHelper
	builderCacheLs     = runBuildHelper
	builderCachePrune  = runBuildHelper
	builderCacheExport = runBuildHelper
	builderCacheImport = runBuildHelper
	builderPrune       = runBuildHelper
)

func buildHelper(c *cli.Context) (string, error) {
	return helperbin.Dirs{StateRoot: c.String("root"), DataRoot: c.String("data-root")}.Install(helperbin.Build)
}

func runBuildHelper(c *cli.Context) error {
	path, err := buildHelper(c)
	if err != nil {
		return err
	}
	if err := syscall.Exec(path, os.Args, os.Environ()); err != nil {
		return fmt.Errorf("run %s: %w", helperbin.Build, err)
	}
	return nil
}

// errNoBuildCache is buildCacheTool's answer when no build ever ran with
// this data root.
var errNoBuildCache = errors.New("no build cache")

// buildCacheTool runs the build helper's hidden build cache command with
// berth's roots and returns what it printed. Without a build directory
// there is nothing to count or prune, and the helper is not installed
// for nothing.
func buildCacheTool(c *cli.Context, args ...string) ([]byte, error) {
	if _, err := os.Stat(buildroot.Dir(c.String("data-root"))); errors.Is(err, fs.ErrNotExist) {
		return nil, errNoBuildCache
	}
	path, err := buildHelper(c)
	if err != nil {
		return nil, err
	}
	argv := append([]string{"--root", c.String("root"), "--data-root", c.String("data-root"), buildCacheArg}, args...)
	cmd := exec.Command(path, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			// Its own one-line error, with its program name.
			_, msg, _ = strings.Cut(msg, ": ")
			return nil, fmt.Errorf("build cache: %s", msg)
		}
		return nil, fmt.Errorf("build cache: %w", err)
	}
	return out, nil
}

func buildCache(c *cli.Context, _ *image.Store) (buildCacheSizes, error) {
	var sizes buildCacheSizes
	out, err := buildCacheTool(c, "sizes")
	if errors.Is(err, errNoBuildCache) {
		return sizes, nil
	}
	if errors.Is(err, helperbin.ErrNotBuilt) {
		// A berth built without it (go build .) still shows the rest.
		logrus.Warnf("build cache not counted: %v", err)
		return sizes, nil
	}
	if err != nil {
		return sizes, err
	}
	if err := json.Unmarshal(out, &sizes); err != nil {
		return sizes, fmt.Errorf("build cache: %w", err)
	}
	return sizes, nil
}

func pruneBuildCache(c *cli.Context, _ *image.Store, all bool) (int64, error) {
	args := []string{"prune"}
	if all {
		args = append(args, "--all")
	}
	out, err := buildCacheTool(c, args...)
	if errors.Is(err, errNoBuildCache) {
		return 0, nil
	}
	if errors.Is(err, helperbin.ErrNotBuilt) {
		logrus.Warnf("build cache not pruned: %v", err)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("build cache: %w", err)
	}
	return n, nil
}
