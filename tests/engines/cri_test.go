package engines

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// crictlVersion is the cri-tools release the CRI test drives containerd
// with; the Go module proxy serves its source.
const crictlVersion = "v1.30.0"

var (
	crictlOnce sync.Once
	crictlPath string
	crictlErr  error
)

// crictl builds crictl from the cri-tools module source once and caches
// the binary in the repository's git-ignored cache (.cache/crictl).
// `go install` refuses the module (it has replace directives); building
// ./cmd/crictl inside a writable copy of the source, its vendor directory
// removed, with -mod=mod works.
func crictl(t *testing.T) string {
	t.Helper()
	crictlOnce.Do(func() {
		cache := filepath.Join(repoDir, ".cache", "crictl")
		crictlPath = filepath.Join(cache, "crictl-"+crictlVersion)
		if _, err := os.Stat(crictlPath); err == nil {
			return
		}
		crictlErr = buildCrictl(cache, crictlPath)
	})
	if crictlErr != nil {
		t.Fatal(crictlErr)
	}
	return crictlPath
}

func buildCrictl(cache, out string) error {
	mod := "sigs.k8s.io/cri-tools@" + crictlVersion
	dl := exec.Command("go", "mod", "download", "-json", mod)
	dl.Dir = os.TempDir() // outside this module: no go.mod to consult
	b, err := dl.Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(b, &info); err != nil || info.Dir == "" {
		return fmt.Errorf("go mod download %s: %v %s %s", mod, err, info.Error, b)
	}
	work, err := os.MkdirTemp("", "berth-eng-crictl")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	// The module cache is read-only: build in a copy.
	if b, err := exec.Command("cp", "-r", info.Dir, src).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %v: %s", info.Dir, err, b)
	}
	if b, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return fmt.Errorf("chmod %s: %v: %s", src, err, b)
	}
	if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
		return err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	build := exec.Command("go", "build", "-mod=mod", "-trimpath", "-o", tmp, "./cmd/crictl")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("build crictl %s: %v: %s", crictlVersion, err, b)
	}
	return os.Rename(tmp, out)
}

// cri is containerd's CRI plugin with a runtime handler "berth" (runc v2
// shim, BinaryName berth-oci) and a bridge CNI network of the test's own,
// driven by crictl as a kubelet would. Pods and containers ask for
// what the kubelet asks for by default: a PID namespace per container
// (the CRI's zero value is one per pod).
type cri struct {
	*containerd
	crictl string
	cgroup string // the pods' cgroup parent
	bridge string
	subnet *net.IPNet
}

func (c *cri) runtimeRoot() string { return filepath.Join(c.dir, "berth") }

func (c *cri) run(args ...string) result {
	c.t.Helper()
	return run(c.t, nil, c.crictl, append([]string{"--config", filepath.Join(c.dir, "crictl.yaml")}, args...)...)
}

// inspect runs crictl inspect/inspectp and decodes its JSON.
func (c *cri) inspect(verb, id string, v any) {
	c.t.Helper()
	r := must(c.t, c.run(verb, "--output", "json", id))
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		c.t.Fatalf("%s %s: %v: %s", verb, id, err, r.stdout)
	}
}

type podStatus struct {
	Status struct {
		State   string `json:"state"`
		Network struct {
			IP string `json:"ip"`
		} `json:"network"`
	} `json:"status"`
	Info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	} `json:"info"`
}

type containerStatus struct {
	Status struct {
		State    string `json:"state"`
		ExitCode int    `json:"exitCode"`
	} `json:"status"`
	Info struct {
		Pid         int    `json:"pid"`
		RuntimeType string `json:"runtimeType"`
	} `json:"info"`
}

func TestCRI(t *testing.T) {
	need(t, "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "ip")
	busybox, pause := imageTars(t)
	bin := crictl(t)
	// containerd 1.6 keeps the pods' network namespaces there, whatever
	// its configuration says. (Registered first: it runs last.)
	removeIfCreated(t, "/var/run/netns")
	dir := tempDir(t, "berth-eng-cri")
	c := &cri{
		crictl: bin,
		cgroup: fmt.Sprintf("/berth-eng-%d-cri", os.Getpid()),
		bridge: fmt.Sprintf("bre%d", os.Getpid()%10000000),
	}
	_, c.subnet, _ = net.ParseCIDR("10.219.77.0/24")
	// The pods' network namespaces, recorded as they appear, for the
	// clean-up of a failed test.
	var netnsPaths []string
	t.Cleanup(func() {
		for _, p := range netnsPaths {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cleanup: the pod's network namespace %s survived", p)
				_ = unix.Unmount(p, unix.MNT_DETACH)
				_ = os.Remove(p)
			}
		}
		if _, err := net.InterfaceByName(c.bridge); err == nil {
			if r := run(t, nil, "ip", "link", "delete", c.bridge); r.code != 0 {
				t.Errorf("cleanup: %s", r)
			}
		}
		removeCgroupTree(t, c.cgroup)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	writeFile(t, filepath.Join(dir, "cni", "10-berth.conflist"), fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "berth-eng",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "dataDir": %q
      }
    }
  ]
}
`, c.bridge, c.subnet.String(), filepath.Join(dir, "ipam")))
	writeFile(t, filepath.Join(dir, "crictl.yaml"), fmt.Sprintf(`runtime-endpoint: unix://%[1]s/c.sock
image-endpoint: unix://%[1]s/c.sock
timeout: 120
`, dir))
	tables := fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/%[2]s"
  # No CAP_SYS_RESOURCE on these hosts: the sandbox's oom_score_adj
  # (-998) cannot be set below this process's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = "%[3]s"
        Root = "%[1]s/berth"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/cni"
`, dir, pauseImage, berthOCI)
	cd := startContainerd(t, dir, "", tables, func() {
		if c.containerd == nil {
			return
		}
		c.t = t
		// Pods first: removing a pod stops and removes its containers,
		// tears its network down and removes its namespace.
		for _, id := range strings.Fields(c.run("pods", "--quiet").stdout) {
			if r := c.run("stopp", id); r.code != 0 {
				t.Errorf("cleanup: %s", r)
			}
			if r := c.run("rmp", "--force", id); r.code != 0 {
				t.Errorf("cleanup: %s", r)
			}
		}
	})
	c.containerd = cd
	must(t, cd.ctr("k8s.io", "images", "import", busybox))
	must(t, cd.ctr("k8s.io", "images", "import", pause))
	rig.WaitFor(t, "the CRI plugin to list the test image", time.Minute, func() bool {
		return strings.Contains(c.run("images").stdout, testImage[:strings.Index(testImage, ":")])
	})

	// A pod: the sandbox runs the pause image through the berth handler.
	podJSON := filepath.Join(dir, "pod.json")
	writeFile(t, podJSON, fmt.Sprintf(`{
  "metadata": {"name": "berth-pod", "namespace": "default", "uid": "berth-pod-%d", "attempt": 0},
  "hostname": "berth-pod",
  "log_directory": %q,
  "linux": {
    "cgroup_parent": %q,
    "security_context": {"namespace_options": {"pid": 1}}
  }
}
`, os.Getpid(), filepath.Join(dir, "logs"), c.cgroup))
	pod := strings.TrimSpace(must(t, c.run("runp", "--runtime", "berth", podJSON)).stdout)
	var ps podStatus
	c.inspect("inspectp", pod, &ps)
	if ps.Status.State != "SANDBOX_READY" {
		t.Fatalf("pod state %q", ps.Status.State)
	}
	for _, ns := range ps.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			netnsPaths = append(netnsPaths, ns.Path)
		}
	}
	if len(netnsPaths) != 1 {
		t.Errorf("the sandbox has no network namespace of its own: %+v", ps.Info.RuntimeSpec.Linux.Namespaces)
	}
	if ip := net.ParseIP(ps.Status.Network.IP); ip == nil || !c.subnet.Contains(ip) {
		t.Errorf("pod IP %q is not from the CNI network %s", ps.Status.Network.IP, c.subnet)
	}
	// berth runs the sandbox: its state is under the handler's Root.
	if _, err := os.Stat(filepath.Join(c.runtimeRoot(), "k8s.io", pod)); err != nil {
		t.Errorf("berth has no state for the sandbox: %v", err)
	}

	// Two containers in the pod.
	mkContainer := func(name, cmd string) string {
		t.Helper()
		cfg := filepath.Join(dir, name+".json")
		writeFile(t, cfg, fmt.Sprintf(`{
  "metadata": {"name": %q},
  "image": {"image": "docker.io/%s"},
  "command": ["sh", "-c", %q],
  "log_path": "%s.log",
  "linux": {"security_context": {"namespace_options": {"pid": 1}}}
}
`, name, testImage, cmd, name))
		id := strings.TrimSpace(must(t, c.run("create", pod, cfg, podJSON)).stdout)
		must(t, c.run("start", id))
		var cs containerStatus
		c.inspect("inspect", id, &cs)
		if cs.Status.State != "CONTAINER_RUNNING" {
			t.Fatalf("%s: state %q", name, cs.Status.State)
		}
		if _, err := os.Stat(filepath.Join(c.runtimeRoot(), "k8s.io", id)); err != nil {
			t.Errorf("berth has no state for %s: %v", name, err)
		}
		return id
	}
	main := mkContainer("main", `echo hello from main; trap "echo got TERM; exit 0" TERM; while true; do sleep 0.1; done`)
	side := mkContainer("side", `echo hello from side; trap "exit 0" TERM; while true; do sleep 0.1; done`)

	t.Run("exec", func(t *testing.T) {
		c.t = t
		r := c.run("exec", "--sync", main, "sh", "-c", "echo exec-ok; hostname")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "exec-ok\nberth-pod" {
			t.Errorf("exec --sync: want exec-ok and the pod's hostname: %s", r)
		}
		r = c.run("exec", "--sync", main, "sh", "-c", "exit 4")
		if r.code == 0 || !strings.Contains(r.stderr, "exited with 4") {
			t.Errorf("exec --sync: want exit status 4 reported: %s", r)
		}
		// Streaming exec goes through containerd's stream server (127.0.0.1).
		// main has a PID namespace of its own (as the kubelet asks by
		// default), where its shell is PID 1.
		r = must(t, c.run("exec", main, "cat", "/proc/1/comm"))
		if strings.TrimSpace(r.stdout) != "sh" {
			t.Errorf("exec: /proc/1/comm of main: %s", r)
		}
	})

	t.Run("shared network namespace", func(t *testing.T) {
		c.t = t
		nsOf := func(id string) string {
			return strings.TrimSpace(must(t, c.run("exec", "--sync", id, "readlink", "/proc/self/ns/net")).stdout)
		}
		a, b := nsOf(main), nsOf(side)
		if a == "" || a != b {
			t.Errorf("main and side do not share the pod's network namespace: %q %q", a, b)
		}
		var host unix.Stat_t
		if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
			t.Fatal(err)
		}
		if a == fmt.Sprintf("net:[%d]", host.Ino) {
			t.Errorf("the pod runs in the host's network namespace")
		}
		r := must(t, c.run("exec", "--sync", side, "ip", "-4", "addr", "show", "eth0"))
		if !strings.Contains(r.stdout, ps.Status.Network.IP+"/") {
			t.Errorf("side does not have the pod IP %s: %s", ps.Status.Network.IP, r)
		}
	})

	t.Run("logs", func(t *testing.T) {
		c.t = t
		rig.WaitFor(t, "main's log", time.Minute, func() bool {
			return strings.Contains(c.run("logs", main).stdout, "hello from main")
		})
		if r := c.run("logs", side); !strings.Contains(r.stdout, "hello from side") {
			t.Errorf("side's log: %s", r)
		}
	})

	t.Run("stats", func(t *testing.T) {
		c.t = t
		var st struct {
			Stats []struct {
				Attributes struct {
					ID string `json:"id"`
				} `json:"attributes"`
				CPU struct {
					UsageCoreNanoSeconds struct {
						Value string `json:"value"`
					} `json:"usageCoreNanoSeconds"`
				} `json:"cpu"`
				Memory struct {
					WorkingSetBytes struct {
						Value string `json:"value"`
					} `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"stats"`
		}
		r := must(t, c.run("stats", "--output", "json", "--id", main))
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("stats: %v: %s", err, r.stdout)
		}
		if len(st.Stats) != 1 || st.Stats[0].Attributes.ID != main {
			t.Fatalf("stats of main: %s", r.stdout)
		}
		s := st.Stats[0]
		if v := s.CPU.UsageCoreNanoSeconds.Value; v == "" || v == "0" {
			t.Errorf("no CPU usage for main: %s", r.stdout)
		}
		if v := s.Memory.WorkingSetBytes.Value; v == "" || v == "0" {
			t.Errorf("no memory usage for main: %s", r.stdout)
		}
	})

	t.Run("stop rm", func(t *testing.T) {
		c.t = t
		must(t, c.run("stop", "--timeout", "30", main))
		var cs containerStatus
		c.inspect("inspect", main, &cs)
		if cs.Status.State != "CONTAINER_EXITED" || cs.Status.ExitCode != 0 {
			t.Errorf("after stop: want exited 0 (SIGTERM reached the trap), have %s %d", cs.Status.State, cs.Status.ExitCode)
		}
		if !strings.Contains(c.run("logs", main).stdout, "got TERM") {
			t.Errorf("main did not see SIGTERM")
		}
		must(t, c.run("rm", main))
		if _, err := os.Stat(filepath.Join(c.runtimeRoot(), "k8s.io", main)); err == nil {
			t.Errorf("berth's state of main survived crictl rm")
		}
		if out := c.run("ps", "--all", "--quiet").stdout; strings.Contains(out, main) || !strings.Contains(out, side) {
			t.Errorf("after rm main: crictl ps -a lists %q", out)
		}
		// The sandbox and side are untouched.
		c.inspect("inspectp", pod, &ps)
		if ps.Status.State != "SANDBOX_READY" {
			t.Errorf("pod state after rm main: %q", ps.Status.State)
		}
		must(t, c.run("exec", "--sync", side, "true"))
	})

	t.Run("stopp rmp", func(t *testing.T) {
		c.t = t
		must(t, c.run("stopp", pod))
		var cs containerStatus
		c.inspect("inspect", side, &cs)
		if cs.Status.State != "CONTAINER_EXITED" {
			t.Errorf("side after stopp: %q", cs.Status.State)
		}
		must(t, c.run("rmp", pod))
		if out := c.run("pods", "--quiet").stdout; strings.TrimSpace(out) != "" {
			t.Errorf("pods after rmp: %q", out)
		}
		for _, id := range []string{pod, side} {
			if _, err := os.Stat(filepath.Join(c.runtimeRoot(), "k8s.io", id)); err == nil {
				t.Errorf("berth's state of %s survived rmp", id)
			}
		}
		for _, p := range netnsPaths {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("the pod's network namespace %s survived rmp", p)
			}
		}
		var left []string
		for _, d := range cgroupDirs(t, c.cgroup) {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if e.IsDir() {
					left = append(left, filepath.Join(d, e.Name()))
				}
			}
		}
		if len(left) != 0 {
			t.Errorf("cgroups of the pod survived rmp: %v", left)
		}
	})
}
