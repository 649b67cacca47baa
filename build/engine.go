package build

import (
	"fmt"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/lockfile"
)

// OpenEngine opens the container store RUN steps run in: one of its own
// under <dataRoot>/build/engine, with the runtime's state under
// <stateRoot>/build, so build containers are never in `ps -a`, prune or
// the runtime's list, as BuildKit's are not in Docker's. deps are the
// main store's (images, network); its runtime is made here.
func OpenEngine(dataRoot, stateRoot string, deps container.Deps) (*container.Store, error) {
	rt, err := container.NewRuntime(filepath.Join(stateRoot, "build"), dataRoot)
	if err != nil {
		return nil, fmt.Errorf("build engine: %w", err)
	}
	deps.Runtime = rt
	cs, err := container.New(engineDir(dataRoot), filepath.Join(stateRoot, "build"), deps)
	if err != nil {
		return nil, fmt.Errorf("build engine: %w", err)
	}
	return cs, nil
}

func engineDir(dataRoot string) string { return filepath.Join(dataRoot, "build", "engine") }

// sweepContainers removes what killed builds left in the build engine:
// containers no live berth holds (a record whose owner died, or a half
// made one), with their mounts, cgroups and processes.
func (b *Builder) sweepContainers() {
	if _, err := b.Containers.RemoveAbandoned(""); err != nil {
		logrus.Warnf("build: remove abandoned build containers: %v", err)
	}
	ids, err := b.Containers.IDs()
	if err != nil {
		logrus.Warnf("build: list build containers: %v", err)
		return
	}
	for _, id := range ids {
		// A live build holds each of its containers locked until it
		// exits: one whose lock is free was left by a killed build.
		l, err := lockfile.OpenDir(b.Containers.Dir(id), unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			continue
		}
		l.Close()
		if err := b.Containers.Remove(id, container.RemoveOpts{Force: true}); err != nil {
			logrus.Warnf("build: remove leftover build container %.12s: %v", id, err)
		}
	}
}
