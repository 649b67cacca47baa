package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	proto "github.com/berth-project/berth/internal/monitorproto"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{
			{
				Name:  "healthcheck",
				Usage: "run a container's healthcheck",
				Subcommands: []*cli.Command{{
					Name: "run", Usage: "run the healthcheck now: exit 0 when it passes, 1 when it fails", ArgsUsage: "CONTAINER",
					Action: healthcheckRun,
				}},
			},
			healthCommand(),
		}
	})
}

// healthcheckRun is `healthcheck run`, as podman's: the check is recorded
// and its failure acted on as a scheduled one would be.
func healthcheckRun(c *cli.Context) error {
	s, r, err := oneContainer(c, 1, 1, "CONTAINER")
	if err != nil {
		return err
	}
	if !r.Config.Healthcheck.Enabled() {
		return fmt.Errorf("container %s has no defined healthcheck", r.Name)
	}
	out, err := s.RunHealthcheck(r.ID)
	if err != nil {
		return err
	}
	if err := afterHealthcheck(c, r, out); err != nil {
		logrus.Warn(err)
	}
	if out.Result.ExitCode != 0 {
		fmt.Println(container.HealthUnhealthy)
		return exitCode(1)
	}
	return nil
}

// healthCommand is the hidden command that the monitor of a container
// (--monitor) or its foreground berth (--scheduled) runs for each check:
// it exits 0 when the check passed, 1 otherwise. --act ACTION applies
// --health-on-failure, in a process of its own that outlives the check.
func healthCommand() *cli.Command {
	return &cli.Command{Name: proto.HealthCommand, Hidden: true,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "monitor"}, &cli.BoolFlag{Name: "scheduled"}, &cli.StringFlag{Name: "act"}, &cli.Int64Flag{Name: "run"}},
		Action: func(c *cli.Context) error {
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			id := c.Args().First()
			if act := c.String("act"); act != "" {
				return s.HealthAction(id, act, time.Unix(0, c.Int64("run")).UTC())
			}
			r, err := s.Find(id)
			if err != nil {
				return err
			}
			out, err := s.RunHealthcheck(r.ID)
			if err != nil {
				// Stopped meanwhile, say: nothing to record.
				logrus.Debugf("healthcheck of %.12s: %v", id, err)
				return exitCode(1)
			}
			if err := afterHealthcheck(c, r, out); err != nil {
				logrus.Warnf("healthcheck of %.12s: %v", r.ID, err)
			}
			if out.Result.ExitCode != 0 {
				return exitCode(1)
			}
			return nil
		}}
}

// afterHealthcheck applies --health-on-failure to an unhealthy container.
// (--sdnotify=healthy's READY=1 comes from the monitor, or from the
// foreground berth, which see each check end.)
func afterHealthcheck(c *cli.Context, r *container.Record, out *container.HealthOutcome) error {
	act := r.Config.HealthcheckOnFailureAction
	if out.Health.Status != container.HealthUnhealthy || act == "" || act == "none" {
		return nil
	}
	// In a session of its own, and nobody's child to wait for: a stop
	// outlasts the check, and the monitor that started the check may
	// end (or start the container anew) meanwhile.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append(globalArgs(c), proto.HealthCommand, "--act", act, "--run", strconv.FormatInt(r.State.StartedAt.UnixNano(), 10), r.ID)
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("--health-on-failure=%s: %w", act, err)
	}
	return cmd.Process.Release()
}
