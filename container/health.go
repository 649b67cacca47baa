package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/runtime"
)

// HealthConfig is a container's healthcheck in Docker's shape (what
// inspect shows as Config.Healthcheck). Test is ["NONE"] (disabled),
// ["CMD", args...] or ["CMD-SHELL", line]; a zero duration or retry
// count is Docker's default (see HealthConfig.Defaults).
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// Docker's defaults for what a healthcheck leaves unset.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
)

// Health statuses, as Docker names them.
const (
	HealthNone      = "none"
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is State.Health: the status, the failures in a row and the last
// results.
type Health struct {
	Status        string         `json:"Status"`
	FailingStreak int            `json:"FailingStreak"`
	Log           []HealthResult `json:"Log"`
}

// HealthResult is one check's outcome; ExitCode -1 is a check that did
// not finish (timed out, or could not run).
type HealthResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

const (
	// healthLogSize is how many results are kept, as Docker.
	healthLogSize = 5
	// healthOutputMax bounds the output kept of each check, as Docker.
	healthOutputMax = 4096
)

// Enabled tells whether h runs a check.
func (h *HealthConfig) Enabled() bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// Defaults is h with Docker's defaults in place of the unset values.
func (h HealthConfig) Defaults() HealthConfig {
	if h.Interval <= 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.StartInterval <= 0 {
		h.StartInterval = DefaultHealthStartInterval
	}
	if h.Retries <= 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

// Args is the command line the check runs in the container.
func (h *HealthConfig) Args() ([]string, error) {
	if !h.Enabled() {
		return nil, errors.New("no healthcheck")
	}
	switch h.Test[0] {
	case "CMD":
		if len(h.Test) < 2 {
			return nil, errors.New("healthcheck CMD without a command")
		}
		return h.Test[1:], nil
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}, nil
	}
	return nil, fmt.Errorf("healthcheck test %q: want NONE, CMD or CMD-SHELL", h.Test[0])
}

// NextHealthDelay is how long after a check the next one comes, as
// Docker schedules them: StartInterval while the container is in its
// start period and no check passed yet, Interval otherwise. started is
// how long ago the container started.
func NextHealthDelay(h HealthConfig, started time.Duration, passed bool) time.Duration {
	h = h.Defaults()
	if !passed && started < h.StartPeriod {
		return h.StartInterval
	}
	return h.Interval
}

func (s *Store) healthPath(id string) string { return filepath.Join(s.Dir(id), "health.json") }

// LoadHealth reads a container's health, nil when it has none.
func (s *Store) LoadHealth(id string) *Health {
	b, err := os.ReadFile(s.healthPath(id))
	if err != nil {
		return nil
	}
	var h Health
	if err := json.Unmarshal(b, &h); err != nil {
		logrus.Warnf("health of %.12s: %v", id, err)
		return nil
	}
	return &h
}

// WithHealth fills in r.State.Health for inspect and ps: the state of a
// container with a healthcheck, nil otherwise.
func (s *Store) WithHealth(r *Record) *Record {
	if r.Config.Healthcheck.Enabled() {
		r.State.Health = s.LoadHealth(r.ID)
		if r.State.Health == nil {
			r.State.Health = &Health{Status: HealthStarting, Log: []HealthResult{}}
		}
	}
	return r
}

// updateHealth changes the health file under its lock.
func (s *Store) updateHealth(id string, fn func(*Health)) (*Health, error) {
	lock, err := lockfile.Open(filepath.Join(s.Dir(id), "health.lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	h := s.LoadHealth(id)
	if h == nil {
		h = &Health{Status: HealthStarting}
	}
	fn(h)
	if h.Log == nil {
		h.Log = []HealthResult{}
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return h, atomicfile.Write(s.healthPath(id), b, 0o600)
}

// resetHealth makes a starting container's health "starting" again, with
// its log kept, as Docker does at each start.
func (s *Store) resetHealth(r *Record) {
	if !r.Config.Healthcheck.Enabled() {
		return
	}
	if _, err := s.updateHealth(r.ID, func(h *Health) {
		h.Status, h.FailingStreak = HealthStarting, 0
	}); err != nil {
		logrus.Warnf("health of %.12s: %v", r.ID, err)
	}
}

// HealthOutcome is what RunHealthcheck did.
type HealthOutcome struct {
	Result HealthResult
	Health Health
	// Became is the new status when this check changed it, "" otherwise.
	Became string
}

// RunHealthcheck runs the container's healthcheck once now, records the
// result and journals a change of status. The caller applies the
// on-failure action (HealthAction), which outlives it.
func (s *Store) RunHealthcheck(ref string) (*HealthOutcome, error) {
	r, err := s.Find(ref)
	if err != nil {
		return nil, err
	}
	hc := r.Config.Healthcheck
	if !hc.Enabled() {
		return nil, fmt.Errorf("container %s has no defined healthcheck", r.Name)
	}
	if !r.State.Running {
		return nil, fmt.Errorf("container %s is not running", r.Name)
	}
	cfg := hc.Defaults()
	res := s.probe(r, cfg)
	out := &HealthOutcome{Result: res}
	var old string
	h, err := s.updateHealth(r.ID, func(h *Health) {
		old = h.Status
		if res.ExitCode == 0 {
			h.FailingStreak = 0
			h.Status = HealthHealthy
		} else if h.Status != HealthStarting || res.Start.Sub(r.State.StartedAt) >= cfg.StartPeriod {
			// Failures in the start period do not count, until a
			// check passed.
			h.FailingStreak++
			if h.FailingStreak >= cfg.Retries {
				h.Status = HealthUnhealthy
			}
		}
		h.Log = append(h.Log, res)
		if len(h.Log) > healthLogSize {
			h.Log = append([]HealthResult{}, h.Log[len(h.Log)-healthLogSize:]...)
		}
	})
	if err != nil {
		return nil, err
	}
	out.Health = *h
	if h.Status != old {
		out.Became = h.Status
		s.emit(r, "health_status: "+h.Status)
	}
	return out, nil
}

// probe runs the check in r and waits for it, at most cfg.Timeout. As
// Docker, the check's exec is journalled like any other (exec_create,
// exec_start, exec_die); the journal's rotation bounds what that costs.
func (s *Store) probe(r *Record, cfg HealthConfig) HealthResult {
	res := HealthResult{Start: time.Now().UTC(), ExitCode: -1}
	fail := func(err error) HealthResult {
		res.End = time.Now().UTC()
		res.Output = err.Error()
		return res
	}
	args, err := cfg.Args()
	if err != nil {
		return fail(err)
	}
	p, err := s.ExecProcess(r, ExecOpts{Args: args})
	if err != nil {
		return fail(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	defer null.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer outR.Close()
	execID, cmd := NewID(), strings.Join(args, " ")
	s.emit(r, "exec_create: "+cmd, "execID", execID)
	proc, err := s.rt.Exec(r.ID, runtime.ExecOpts{Process: p, IO: runtime.IO{Stdin: null, Stdout: outW, Stderr: outW}, Foreground: true})
	outW.Close()
	if err != nil {
		return fail(err)
	}
	s.emit(r, "exec_start: "+cmd, "execID", execID)
	timedOut := make(chan struct{})
	timer := time.AfterFunc(cfg.Timeout, func() {
		close(timedOut)
		_ = unix.Kill(proc.Pid, unix.SIGKILL)
	})
	// What the check and its children write, up to a bound; the rest is
	// read and dropped so that they do not block. A child that keeps the
	// pipe open past the timeout is not waited for.
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(outR, healthOutputMax))
		_, _ = io.Copy(io.Discard, outR)
		got <- b
	}()
	code, werr := proc.Wait()
	timer.Stop()
	if werr == nil {
		s.emit(r, "exec_die", "execID", execID, "exitCode", strconv.Itoa(code))
	}
	var out []byte
	select {
	case out = <-got:
	case <-timedOut:
	case <-time.After(time.Second):
	}
	res.End = time.Now().UTC()
	select {
	case <-timedOut:
		res.ExitCode = -1
		res.Output = "Health check exceeded timeout (" + cfg.Timeout.String() + ")"
		return res
	default:
	}
	if werr != nil {
		return fail(werr)
	}
	res.ExitCode = code
	res.Output = string(out)
	return res
}

// HealthAction applies --health-on-failure to a container whose check
// found it unhealthy: kill and stop end it as `kill` and `stop` do;
// restart stops it without the mark of a user's stop, so that its owner
// starts it again (counted in RestartCount), whatever its policy. run is
// the StartedAt of the run that was checked: a later run, or one that an
// earlier action already restarts, is left alone (checks go on while the
// stop waits, and each finds the container unhealthy).
func (s *Store) HealthAction(id, action string, run time.Time) error {
	r, err := s.Load(id)
	if err != nil {
		return err
	}
	if !r.State.Running || !r.State.StartedAt.Equal(run) || r.HealthRestart {
		return nil
	}
	switch action {
	case "", "none":
		return nil
	case "kill":
		_, err := s.Signal(id, unix.SIGKILL, true)
		return err
	case "stop":
		return s.Stop(id, StopOpts{})
	case "restart":
		return s.Stop(id, StopOpts{Restart: true})
	}
	return fmt.Errorf("--health-on-failure %q: want none, kill, restart or stop", action)
}

// HealthSchedule is what a container's monitor needs to time its checks,
// as its arguments carry them: milliseconds of the interval, start period
// and start interval, with Docker's defaults in place.
func HealthSchedule(h *HealthConfig) []string {
	if !h.Enabled() {
		return nil
	}
	d := h.Defaults()
	ms := func(t time.Duration) string { return strconv.FormatInt(max(t.Milliseconds(), 1), 10) }
	return []string{"hint=" + ms(d.Interval), "hperiod=" + strconv.FormatInt(d.StartPeriod.Milliseconds(), 10), "hstart=" + ms(d.StartInterval)}
}

// monitorHealth is the healthcheck schedule for berth's own run of the
// monitor loop (where the lean program cannot run): berth's command line
// as a monitor up to the monitor command, then the health command.
func monitorHealth(r *Record) monitorcore.Health {
	if !r.Config.Healthcheck.Enabled() {
		return monitorcore.Health{}
	}
	self, err := os.Executable()
	if err != nil {
		logrus.Warnf("healthcheck of %.12s: %v", r.ID, err)
		return monitorcore.Health{}
	}
	var argv []string
	for i, a := range os.Args {
		if a == MonitorArg {
			argv = append(append(argv, os.Args[:i]...), proto.HealthCommand, "--monitor", r.ID)
			break
		}
	}
	d := r.Config.Healthcheck.Defaults()
	return monitorcore.Health{Path: self, Argv: argv, Interval: int64(d.Interval), StartPeriod: int64(d.StartPeriod), StartInterval: int64(d.StartInterval)}
}

// foregroundHealth runs the container's checks on schedule from the
// berth that runs it in the foreground, each as argv (berth's health
// command), until the returned function is called; that waits for a
// check under way.
func (s *Store) foregroundHealth(id string, argv []string, healthy func()) (stop func()) {
	r, err := s.Load(id)
	if err != nil || len(argv) == 0 || !r.Config.Healthcheck.Enabled() {
		return func() {}
	}
	self, err := os.Executable()
	if err != nil {
		logrus.Warnf("healthcheck of %.12s: %v", id, err)
		return func() {}
	}
	cfg := *r.Config.Healthcheck
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		started, passed := time.Now(), false
		for {
			select {
			case <-done:
				return
			case <-time.After(NextHealthDelay(cfg, time.Since(started), passed)):
			}
			cmd := exec.Command(self, argv...)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err == nil {
				passed = true
				if healthy != nil {
					healthy()
				}
			} else if _, ok := err.(*exec.ExitError); !ok {
				logrus.Warnf("healthcheck of %.12s: %v", id, err)
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}
