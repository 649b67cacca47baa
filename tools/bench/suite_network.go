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
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/netns/nsfile"
)

var (
	netBusy    = flag.Int("net-busy", 200, "running containers, each publishing 2 ports, the network suite starts beside the measured runs")
	netSeconds = flag.Float64("net-seconds", 3, "seconds each throughput measurement sends for")
)

func init() {
	register(Suite{
		Name: "network",
		Help: "start latency of `run --rm` on the default bridge against --network none (and podman's, with -net-busy containers publishing 2 ports each), and TCP throughput container to container and host to a published port against loopback; all inside a network namespace of its own",
		Run:  networkSuite,
	})
}

// netEnv runs every command of the suite inside a network namespace that
// plays the host, so berth's bridge, firewall table and sysctls (and
// podman's) never touch the machine's own.
type netEnv struct {
	*containerEnv
	ns string
}

func (n *netEnv) run(cmd *exec.Cmd) error {
	return nsfile.Do(n.ns, cmd.Run)
}

func (n *netEnv) output(cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := nsfile.Do(n.ns, func() (err error) { out, err = cmd.CombinedOutput(); return })
	return out, err
}

func (n *netEnv) must(args ...string) (string, error) {
	out, err := n.output(n.berth(args...))
	if err != nil {
		return "", fmt.Errorf("berth %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func networkSuite(e *Env) error {
	ce, err := e.containers()
	if err != nil {
		return err
	}
	n := &netEnv{containerEnv: ce, ns: filepath.Join(e.Tmp, "netns-host")}
	if err := nsfile.Create(n.ns); err != nil {
		return err
	}
	defer func() {
		ce.closeIn(n)
		if err := nsfile.Remove(n.ns); err != nil {
			fmt.Fprintf(os.Stderr, "bench: remove netns: %v\n", err)
		}
	}()
	if err := nsfile.Do(n.ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}

	start := func(name string, args ...string) Contender {
		return Contender{Name: name, Run: func(int) error {
			var stderr bytes.Buffer
			cmd := n.berth(append([]string{"run", "--rm"}, append(args, ce.image, "true")...)...)
			cmd.Stderr = &stderr
			if err := n.run(cmd); err != nil {
				return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return nil
		}}
	}
	cs := []Contender{start("none", "--network", "none"), start("bridge")}
	pod, podErr := newPodman(e, n)
	if podErr == nil {
		defer pod.close()
		cs = append(cs, pod.contender("podman-none", "--network", "none"), pod.contender("podman"))
	}
	fmt.Fprintf(e.Out, "start latency, run --rm true: %d warm-up + %d measured runs each, alternating\n", e.Warmup, e.N)
	empty := e.Compare(cs)
	if podErr != nil {
		empty = append(empty, Result{Name: "podman", Err: podErr})
	}
	e.Table(empty)
	e.Delta(empty, "bridge", "none", 5*time.Millisecond)
	e.Delta(empty, "podman", "podman-none", 0)

	// The same start beside many containers publishing ports.
	for i := 0; i < *netBusy; i++ {
		p := 20000 + 2*i
		if _, err := n.must("run", "-d", "--name", fmt.Sprintf("busy%d", i), "-p", fmt.Sprintf("%d:80", p), "-p", fmt.Sprintf("%d:81", p+1), ce.image, "sleep", "100000"); err != nil {
			return fmt.Errorf("busy container %d: %w", i, err)
		}
	}
	fmt.Fprintf(e.Out, "\nthe same with %d running containers publishing 2 ports each\n", *netBusy)
	busy := e.Compare([]Contender{start("none", "--network", "none"), start("bridge")})
	e.Table(busy)
	e.Growth(empty, busy, "bridge", 0.10)
	ce.closeIn(n)

	return throughput(e, n)
}

// throughput measures TCP throughput with the probe's sender and sink:
// host loopback, container to container on the bridge, and host to a
// published port.
func throughput(e *Env, n *netEnv) error {
	probe := filepath.Join(e.Repo, "bin", "probe")
	secs := strconv.FormatFloat(*netSeconds, 'f', -1, 64)
	send := func(cmd *exec.Cmd) (float64, error) {
		out, err := n.output(cmd)
		if err != nil {
			return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		f := strings.Fields(string(out))
		if len(f) == 0 {
			return 0, errors.New("the sender printed nothing")
		}
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	// Loopback of the namespace playing the host.
	sink := exec.CommandContext(e.Ctx, probe, "sink", "5201")
	out, err := sink.StdoutPipe()
	if err != nil {
		return err
	}
	if err := nsfile.Do(n.ns, sink.Start); err != nil {
		return err
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		return fmt.Errorf("host sink: %q", line)
	}
	loop, err := send(exec.CommandContext(e.Ctx, probe, "send", "127.0.0.1:5201", secs))
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}

	if _, err := n.must("run", "-d", "--name", "sink", "-p", "15201:5201", n.image, "/probe", "sink", "5201"); err != nil {
		return err
	}
	defer func() { _ = n.run(n.berth("rm", "-f", "sink")) }()
	ip, err := n.must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sink")
	if err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	c2c, err := send(n.berth("run", "--rm", n.image, "/probe", "send", ip+":5201", secs))
	if err != nil {
		return fmt.Errorf("container to container: %w", err)
	}
	h2p, err := send(exec.CommandContext(e.Ctx, probe, "send", "127.0.0.1:15201", secs))
	if err != nil {
		return fmt.Errorf("host to published port: %w", err)
	}
	gbit := func(b float64) string { return fmt.Sprintf("%.2f Gbit/s", b*8/1e9) }
	verdict := func(r, target float64) string {
		if r >= target {
			return "met"
		}
		return "not met"
	}
	fmt.Fprintf(e.Out, "\nTCP throughput, %ss each: host loopback %s\n", secs, gbit(loop))
	fmt.Fprintf(e.Out, "container to container %s, ratio %.2f (target >= 0.80, %s)\n", gbit(c2c), c2c/loop, verdict(c2c/loop, 0.8))
	fmt.Fprintf(e.Out, "host to a published port %s, ratio %.2f (target >= 0.70, %s)\n", gbit(h2p), h2p/loop, verdict(h2p/loop, 0.7))
	return e.Ctx.Err()
}

// closeIn removes every container, from inside the namespace (their
// network teardown runs there).
func (ce *containerEnv) closeIn(n *netEnv) {
	out, _ := n.output(ce.berth("ps", "-aq", "--no-trunc"))
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = n.run(ce.berth(append([]string{"rm", "-f"}, ids...)...))
	}
}

// podman is podman with a private root, runroot and the test image, run
// inside the suite's namespace.
type podman struct {
	e     *Env
	n     *netEnv
	args  []string
	image string
}

func newPodman(e *Env, n *netEnv) (*podman, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, errors.New("not installed")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, errors.New("its default network needs iptables, which is not installed")
	}
	p := &podman{e: e, n: n, args: []string{"podman", "--root", filepath.Join(e.Tmp, "podman-root"), "--runroot", filepath.Join(e.Tmp, "podman-run"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", "runc"}}
	out, err := n.output(p.cmd("load", "-i", filepath.Join(e.Tmp, "busybox.tar")))
	if err != nil {
		return nil, fmt.Errorf("load: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// "Loaded image: NAME" (podman qualifies the archive's name).
	for _, l := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			p.image = strings.TrimSpace(name)
		}
	}
	if p.image == "" {
		return nil, fmt.Errorf("load named no image: %s", strings.TrimSpace(string(out)))
	}
	return p, nil
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	argv := append(append([]string(nil), p.args...), args...)
	return exec.CommandContext(p.e.Ctx, argv[0], argv[1:]...)
}

func (p *podman) contender(name string, args ...string) Contender {
	// Without CAP_SYS_RESOURCE (as in these sandboxes) podman's default
	// ulimits of 1048576 cannot be set: ask for what this process has.
	for _, l := range []struct {
		name string
		res  int
	}{{"nofile", unix.RLIMIT_NOFILE}, {"nproc", unix.RLIMIT_NPROC}} {
		var r unix.Rlimit
		if unix.Getrlimit(l.res, &r) == nil {
			n := min(r.Max, 32768)
			args = append(args, "--ulimit", fmt.Sprintf("%s=%d:%d", l.name, n, n))
		}
	}
	return Contender{Name: name, Run: func(int) error {
		out, err := p.n.output(p.cmd(append([]string{"run", "--rm"}, append(args, p.image, "true")...)...))
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}}
}

func (p *podman) close() {
	_, _ = p.n.output(p.cmd("rm", "-af"))
	_, _ = p.n.output(p.cmd("system", "reset", "-f"))
}
