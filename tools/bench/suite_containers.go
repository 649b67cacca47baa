package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	detachedCount  = flag.Int("detached", 200, "containers the detached suite starts")
	detachedHealth = flag.Bool("detached-health", false, "the detached suite's containers run `--health-cmd true --health-interval 30s` and log 20 kB at start with --log-opt max-size=4k,max-file=2; their monitors are measured after a check and several rotations ran")
)

func init() {
	register(Suite{
		Name: "run-rm",
		Help: "`berth run --rm --network none busybox true` (image, overlay, state) against `runc run` of a /bin/true bundle",
		Run:  runRm,
	})
	register(Suite{
		Name: "detached",
		Help: "start many detached sleep containers: time per container for `berth run -d --network none` and `runc run -d`; USS of the monitors",
		Run:  detached,
	})
}

// containerEnv is a private berth data root and state root with the test
// busybox image loaded, removed at the end.
type containerEnv struct {
	e     *Env
	args  []string // berth with --root and --data-root
	image string
}

func (e *Env) containers() (*containerEnv, error) {
	dataRoot := filepath.Join(e.Tmp, "data")
	stateRoot := filepath.Join(e.Tmp, "state")
	tar := filepath.Join(e.Tmp, "busybox.tar")
	cmd := exec.CommandContext(e.Ctx, filepath.Join(e.Repo, "testdata", "mkimage.sh"), tar)
	cmd.Dir = e.Repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkimage: %w: %s", err, strings.TrimSpace(string(b)))
	}
	ce := &containerEnv{e: e, args: []string{e.Berth, "--root", stateRoot, "--data-root", dataRoot}, image: "berth-test/busybox"}
	if b, err := ce.berth("load", "-q", "-i", tar).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("load: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return ce, nil
}

func (ce *containerEnv) berth(args ...string) *exec.Cmd {
	argv := append(append([]string(nil), ce.args...), args...)
	cmd := exec.CommandContext(ce.e.Ctx, argv[0], argv[1:]...)
	cmd.Dir = ce.e.Tmp
	return cmd
}

// close removes every container and the image store's mounts.
func (ce *containerEnv) close() {
	out, _ := ce.berth("ps", "-aq", "--no-trunc").Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = ce.berth(append([]string{"rm", "-f"}, ids...)...).Run()
	}
}

func runRm(e *Env) error {
	ce, err := e.containers()
	if err != nil {
		return err
	}
	defer ce.close()
	bundle, err := e.Bundle("run-rm-bundle", false, "/bin/true")
	if err != nil {
		return err
	}
	cs := []Contender{{
		Name: "berth",
		Run: func(int) error {
			var stderr bytes.Buffer
			cmd := ce.berth("run", "--rm", "--network", "none", ce.image, "true")
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return nil
		},
	}}
	var missing []Result
	if _, err := exec.LookPath("runc"); err == nil {
		cs = append(cs, e.ociContender(ociTool{name: "runc", prefix: []string{"runc", "--root", filepath.Join(e.Tmp, "runc-root")}}, bundle))
	} else {
		missing = append(missing, Result{Name: "runc", Err: errors.New("not installed")})
	}
	fmt.Fprintf(e.Out, "%d warm-up + %d measured runs per tool, alternating\n", e.Warmup, e.N)
	rs := append(e.Compare(cs), missing...)
	e.Table(rs)
	e.Ratio(rs, "berth", "runc", 0.75)
	return e.Ctx.Err()
}

// uss is the unique memory of a process: its private pages.
func uss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:") {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n * 1024
		}
	}
	return total, nil
}

func (ce *containerEnv) monitorPid(name string) (int, error) {
	out, err := ce.berth("inspect", "-f", "{{.State.MonitorPid}}", name).Output()
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w", name, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

func detached(e *Env) error {
	ce, err := e.containers()
	if err != nil {
		return err
	}
	defer ce.close()
	n := *detachedCount
	runArgs := []string{"run", "-d", "--network", "none"}
	// checkWait is how long after its start a container's first check
	// has surely run.
	var checkWait time.Duration
	if *detachedHealth {
		runArgs = append(runArgs, "--health-cmd", "true", "--health-interval", "30s", "--log-opt", "max-size=4k", "--log-opt", "max-file=2")
		checkWait = 32 * time.Second
	}
	command := []string{"sleep", "1000"}
	if *detachedHealth {
		command = []string{"sh", "-c", "yes berth-bench-log-line | head -c 20000; exec sleep 1000"}
	}
	run := func(name string) *exec.Cmd {
		return ce.berth(append(append(append(runArgs[:len(runArgs):len(runArgs)], "--name", name), ce.image), command...)...)
	}

	// One monitor alone: nothing else maps berth's pages.
	if b, err := run("uss-alone").CombinedOutput(); err != nil {
		return fmt.Errorf("run -d: %w: %s", err, strings.TrimSpace(string(b)))
	}
	time.Sleep(500*time.Millisecond + checkWait)
	pid, err := ce.monitorPid("uss-alone")
	if err != nil {
		return err
	}
	alone, err := uss(pid)
	if err != nil {
		return err
	}
	floor, floorErr := e.goFloor(pid)
	_ = ce.berth("rm", "-f", "uss-alone").Run()

	start := time.Now()
	for i := 0; i < n; i++ {
		if b, err := run(fmt.Sprintf("d%d", i)).CombinedOutput(); err != nil {
			return fmt.Errorf("run -d #%d: %w: %s", i, err, strings.TrimSpace(string(b)))
		}
	}
	berthPer := time.Since(start) / time.Duration(n)
	time.Sleep(checkWait - time.Since(start))
	var usses []int64
	for i := 0; i < n; i += n / 10 {
		pid, err := ce.monitorPid(fmt.Sprintf("d%d", i))
		if err != nil {
			return err
		}
		u, err := uss(pid)
		if err != nil {
			return err
		}
		usses = append(usses, u)
	}
	sort.Slice(usses, func(i, j int) bool { return usses[i] < usses[j] })
	ce.close()

	runcPer := time.Duration(0)
	if _, err := exec.LookPath("runc"); err == nil {
		bundle, err := e.Bundle("detached-bundle", false, "sleep", "1000")
		if err != nil {
			return err
		}
		root := filepath.Join(e.Tmp, "runc-detached")
		t := ociTool{name: "runc", prefix: []string{"runc", "--root", root}}
		start := time.Now()
		started := 0
		for i := 0; i < n; i++ {
			if err := e.ociCmd(t, "run", "-d", "--bundle", bundle, t.id(i)).Run(); err != nil {
				break
			}
			started++
		}
		if started == n {
			runcPer = time.Since(start) / time.Duration(n)
		}
		for i := 0; i < started; i++ {
			_ = e.ociCmd(t, "delete", "-f", t.id(i)).Run()
		}
	}
	fmt.Fprintf(e.Out, "%d detached containers: berth %s each (target <= 40ms)", n, fmtDur(berthPer))
	if runcPer > 0 {
		fmt.Fprintf(e.Out, ", runc run -d %s each, ratio %.2f (target <= 0.80)", fmtDur(runcPer), float64(berthPer)/float64(runcPer))
	}
	fmt.Fprintln(e.Out)
	what := "monitor USS"
	if *detachedHealth {
		what = "monitor USS with a healthcheck every 30s and log rotation, after both ran"
	}
	fmt.Fprintf(e.Out, "%s: alone %.2f MiB; among %d monitors, median %.2f MiB (target <= 1 MiB)\n",
		what, float64(alone)/(1<<20), n, float64(usses[len(usses)/2])/(1<<20))
	if floorErr != nil {
		fmt.Fprintf(e.Out, "Go floor: not measured: %v\n", floorErr)
	} else {
		fmt.Fprintf(e.Out, "Go floor (tools/bench/gofloor, only waits in epoll_wait, trimmed alike): USS %.2f MiB; monitor alone / floor %.2f\n",
			float64(floor)/(1<<20), float64(alone)/float64(floor))
	}
	return e.Ctx.Err()
}

// goFloor builds tools/bench/gofloor as the lean monitor is built, runs
// it alone from where the monitor with pid runs, and returns its USS:
// the least any Go program costs here.
func (e *Env) goFloor(monitorPid int) (int64, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", monitorPid))
	if err != nil {
		return 0, err
	}
	bin := filepath.Join(filepath.Dir(exe), fmt.Sprintf(".bench-gofloor-%d", os.Getpid()))
	defer os.Remove(bin)
	if err := e.goBuild(bin, "./tools/bench/gofloor", "-trimpath", "-ldflags", "-s -w"); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(e.Ctx, bin)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return 0, fmt.Errorf("gofloor did not start: %q, %v", line, err)
	}
	// As long as the monitor had before it was measured.
	time.Sleep(500 * time.Millisecond)
	return uss(cmd.Process.Pid)
}
