package containers

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/tests/rig"
)

// -v with a missing host path creates the directory, as Docker does;
// --mount type=bind does not; a run refused for a bad flag creates none.
func TestRunVolumeCreatesHostDir(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := filepath.Join(t.TempDir(), "made", "here")
	c.Must("run", "--rm", "-v", host+":/data", rig.TestImage, "sh", "-c", "echo hi > /data/f")
	if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "hi\n" {
		t.Errorf("-v with a missing host dir: %q %v", b, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	r := c.Berth("run", "--rm", "--mount", "type=bind,src="+missing+",dst=/data", rig.TestImage, "true")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("--mount with a missing source: %+v", r)
	}
	r = c.Berth("run", "--rm", "-v", missing+":/data", "--memory", "lots", rig.TestImage, "true")
	if !rig.UsageError(r) {
		t.Errorf("-v with a bad --memory: %+v", r)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused run left %s (%v)", missing, err)
	}
}

// --device makes the node in the container and lets the device cgroup
// (v1 devices.allow, v2 the eBPF program) allow only the access asked
// for; --device-cgroup-rule allows a node the container makes itself.
// /dev/kmsg (c 1:11) is not among the devices every container may use;
// opening it write-only for no write is harmless.
func TestRunDevice(t *testing.T) {
	c := rig.NewContainerEnv(t)
	open := `stat -c '%F %t:%T' /dev/k && : > /dev/k && echo open-ok`
	out := c.Must("run", "--rm", "--device", "/dev/kmsg:/dev/k:rw", rig.TestImage, "sh", "-c", open)
	if out != "character special file 1:b\nopen-ok\n" {
		t.Errorf("--device /dev/kmsg:/dev/k:rw: %q", out)
	}
	r := c.Berth("run", "--rm", "--device", "/dev/kmsg:/dev/k:r", rig.TestImage, "sh", "-c", open)
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "not permitted") {
		t.Errorf("--device ...:r allowed a write open: %+v", r)
	}
	c.Must("create", "--name", "dev", "--device", "/dev/kmsg:/dev/k:r", "--device-cgroup-rule", "c 1:11 w", rig.TestImage, "true")
	if got := c.Field("dev", "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}"); got != `[{"CgroupPermissions":"r","PathInContainer":"/dev/k","PathOnHost":"/dev/kmsg"}] ["c 1:11 w"]` {
		t.Errorf("inspect: %s", got)
	}
	c.Must("rm", "dev")
	mk := `mknod /dev/k2 c 1 11 && : > /dev/k2 && echo open-ok`
	if out := c.Must("run", "--rm", "--device-cgroup-rule", "c 1:11 w", rig.TestImage, "sh", "-c", mk); out != "open-ok\n" {
		t.Errorf("--device-cgroup-rule 'c 1:11 w': %q", out)
	}
	if r := c.Berth("run", "--rm", rig.TestImage, "sh", "-c", mk); r.Code == 0 {
		t.Errorf("a node made without a rule could be opened: %+v", r)
	}
	for _, bad := range [][]string{
		{"--device", "/etc/passwd"}, {"--device", "/dev/nonexistent"}, {"--device", "dev/kmsg"},
		{"--device", "/dev/kmsg:/dev/k:rx"}, {"--device-cgroup-rule", "c 1:11"}, {"--device-cgroup-rule", "x 1:11 r"},
		{"--device-cgroup-rule", "c one:11 r"},
	} {
		r := c.Berth(append(append([]string{"run", "--name", "bad"}, bad...), rig.TestImage, "true")...)
		if !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
		if c.Berth("inspect", "bad").Code == 0 {
			t.Errorf("run %v left a container", bad)
			c.Berth("rm", "bad")
		}
	}
}

// --cidfile gets the id; an existing file is refused, as Docker does; a
// run that fails removes the file it made. --pidfile (podman's spelling
// of --pid-file) holds the container's pid and goes with rm.
func TestRunCIDFileAndPidFile(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := t.TempDir()
	cid, pidf := filepath.Join(dir, "cid"), filepath.Join(dir, "pid")
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "ids", "--cidfile", cid, "--pidfile", pidf, rig.TestImage, "sleep", "300"))
	if got := rig.ReadFile(t, cid); got != id {
		t.Errorf("--cidfile holds %q, want %q", got, id)
	}
	if got, want := strings.TrimSpace(rig.ReadFile(t, pidf)), c.Field("ids", "{{.State.Pid}}"); got != want {
		t.Errorf("--pidfile holds %q, inspect says %s", got, want)
	}
	r := c.Berth("run", "-d", "--name", "again", "--cidfile", cid, rig.TestImage, "sleep", "300")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "container ID file found") {
		t.Errorf("--cidfile of an existing file: %+v", r)
	}
	if c.Berth("inspect", "again").Code == 0 || rig.ReadFile(t, cid) != id {
		t.Errorf("the refused run made a container or changed %s", cid)
	}
	c.Must("rm", "-f", "ids")
	if _, err := os.Stat(pidf); !os.IsNotExist(err) {
		t.Errorf("rm left the pid file (%v)", err)
	}
	// A run that fails after the file was made (the device is looked
	// for once the image is found) removes it.
	cid2 := filepath.Join(dir, "cid2")
	if r := c.Berth("create", "--cidfile", cid2, "--device", "/dev/nonexistent", rig.TestImage, "true"); !rig.UsageError(r) {
		t.Errorf("create with a missing device: %+v", r)
	}
	if _, err := os.Stat(cid2); !os.IsNotExist(err) {
		t.Errorf("a failed create left %s (%v)", cid2, err)
	}
}

// --cpu-period and --cpu-quota reach the CFS files; --memory-swappiness
// memory.swappiness on v1 (on v2 it is discarded with a warning, as
// Docker); --cpu-rt-runtime the real-time runtime where the kernel has
// real-time group scheduling, refused elsewhere.
func TestRunCPUAndSwappinessFlags(t *testing.T) {
	c := rig.NewContainerEnv(t)
	r := c.Berth("run", "-d", "--name", "cpu", "--cpu-period", "50000", "--cpu-quota", "25000", "--memory-swappiness", "10",
		rig.TestImage, "sleep", "300")
	if r.Code != 0 {
		t.Fatalf("run: %+v", r)
	}
	id := strings.TrimSpace(r.Stdout)
	cg := "/berth/" + id
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		if got := rig.HostCgroupFile(t, cg, "cpu.max", ""); got != "25000 50000" {
			t.Errorf("cpu.max %q", got)
		}
		if !strings.Contains(r.Stderr, "swappiness") {
			t.Errorf("no warning that swappiness is discarded on v2: %q", r.Stderr)
		}
		// Absent (<no value>) or null (<nil>): either way not the 10 asked for.
		if got := c.Field("cpu", "{{.HostConfig.MemorySwappiness}}"); got != "<nil>" && got != "<no value>" {
			t.Errorf("inspect swappiness on v2: %s", got)
		}
	} else {
		for f, want := range map[string]string{"cpu/cpu.cfs_period_us": "50000", "cpu/cpu.cfs_quota_us": "25000", "memory/memory.swappiness": "10"} {
			if got := rig.HostCgroupFile(t, cg, "", f); got != want {
				t.Errorf("%s: %q, want %s", f, got, want)
			}
		}
		if got := c.Field("cpu", "{{.HostConfig.MemorySwappiness}}"); got != "10" {
			t.Errorf("inspect swappiness: %s", got)
		}
	}
	if got := c.Field("cpu", "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}}"); got != "50000 25000" {
		t.Errorf("inspect: %s", got)
	}
	c.Must("rm", "-f", "cpu")

	if !cgroupfs.RealtimeSupported() {
		r := c.Berth("run", "--rm", "--cpu-rt-runtime", "10000", rig.TestImage, "true")
		if !rig.UsageError(r) || !strings.Contains(r.Stderr, "real-time") {
			t.Errorf("--cpu-rt-runtime without real-time group scheduling: %+v", r)
		}
	} else {
		// A parent with a real-time budget of its own (a new cgroup has
		// none), made and removed by the test in every hierarchy.
		parent := "/berth-rt-test-" + rig.Itoa(os.Getpid())
		t.Cleanup(func() {
			for _, d := range rig.CgroupDirs(parent) {
				_ = os.Remove(d)
			}
		})
		pdir := filepath.Join("/sys/fs/cgroup/cpu", parent)
		if err := os.Mkdir(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pdir, "cpu.rt_runtime_us"), []byte("20000"), 0o644); err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(c.Must("run", "-d", "--cgroup-parent", parent, "--cpu-rt-runtime", "10000", rig.TestImage, "sleep", "300"))
		if got := rig.HostCgroupFile(t, parent+"/berth-"+id, "", "cpu/cpu.rt_runtime_us"); got != "10000" {
			t.Errorf("cpu.rt_runtime_us %q", got)
		}
		c.Must("rm", "-f", id)
	}
	for _, bad := range [][]string{
		{"--cpus", "1", "--cpu-quota", "50000"}, {"--cpus", "1", "--cpu-period", "50000"}, {"--cpu-period", "10"},
		{"--cpu-quota", "5"}, {"--memory-swappiness", "101"}, {"--cpu-rt-runtime", "-5"}, {"--cpu-period", "x"},
	} {
		r := c.Berth(append(append([]string{"run", "--name", "bad"}, bad...), rig.TestImage, "true")...)
		if !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
		if c.Berth("inspect", "bad").Code == 0 {
			t.Errorf("run %v left a container", bad)
			c.Berth("rm", "bad")
		}
	}
}

// blockDevice is a block device node of this machine: the one under /,
// else any with a node in /dev.
func blockDevice(t *testing.T) (path string, majmin string) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err == nil {
		mm := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		if p := devNode(mm); p != "" {
			return p, mm
		}
	}
	ents, _ := os.ReadDir("/sys/dev/block")
	for _, e := range ents {
		if p := devNode(e.Name()); p != "" {
			return p, e.Name()
		}
	}
	t.Fatal("no block device on this machine")
	return "", ""
}

// devNode is /dev/DEVNAME of block device majmin, if the node is there.
func devNode(majmin string) string {
	b, err := os.ReadFile("/sys/dev/block/" + majmin + "/uevent")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			var st unix.Stat_t
			if unix.Stat("/dev/"+n, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
				return "/dev/" + n
			}
		}
	}
	return ""
}

// --blkio-weight-device reaches the per-device weight where the host has
// a weight file (BFQ, or v2's io.weight); where it has none the start is
// refused, not silently unlimited.
func TestRunBlkioWeightDevice(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dev, majmin := blockDevice(t)
	id := strings.TrimSpace(c.Must("run", "-d", rig.TestImage, "sleep", "300"))
	var file string
	for _, p := range []string{"/sys/fs/cgroup/berth/" + id + "/io.bfq.weight", "/sys/fs/cgroup/berth/" + id + "/io.weight",
		"/sys/fs/cgroup/blkio/berth/" + id + "/blkio.weight_device", "/sys/fs/cgroup/blkio/berth/" + id + "/blkio.bfq.weight"} {
		if _, err := os.Stat(p); err == nil {
			file = filepath.Base(p)
			break
		}
	}
	c.Must("rm", "-f", id)
	r := c.Berth("run", "-d", "--name", "wd", "--blkio-weight-device", dev+":300", rig.TestImage, "sleep", "300")
	// A weight file whose device has no weight policy (a RAM disk under
	// v2's io.weight, as in the VMs) refuses the write: refused too, not
	// silently unweighted.
	if file == "" || r.Code != 0 && strings.Contains(r.Stderr, "not supported") {
		if r.Code == 0 || !strings.Contains(r.Stderr, "weight") {
			t.Errorf("--blkio-weight-device with no weight file: %+v", r)
		}
	} else {
		if r.Code != 0 {
			t.Fatalf("run: %+v", r)
		}
		cg := "/berth/" + strings.TrimSpace(r.Stdout)
		got := rig.HostCgroupFile(t, cg, file, "blkio/"+file)
		if !strings.Contains(got, majmin+" 300") && !strings.Contains(got, majmin+" "+rig.Itoa(1+(300-10)*9999/990)) {
			t.Errorf("%s: %q, want %s's weight", file, got, majmin)
		}
	}
	if got := c.Field("wd", "{{json .HostConfig.BlkioWeightDevice}}"); got != `[{"Path":"`+dev+`","Weight":300}]` {
		t.Errorf("inspect: %s", got)
	}
	c.Must("rm", "-f", "wd")
	for _, bad := range []string{"/etc/passwd:300", dev + ":5", dev, dev + ":heavy"} {
		if r := c.Berth("run", "--rm", "--blkio-weight-device", bad, rig.TestImage, "true"); !rig.UsageError(r) {
			t.Errorf("--blkio-weight-device %s: %+v", bad, r)
		}
	}
}

// --pull: never refuses a missing image without asking a registry,
// missing (the default) asks none for a local image, always asks one
// every time. The registry is go-containerregistry's on 127.0.0.1.
// --platform accepts only the host's platform.
func TestRunPullAndPlatform(t *testing.T) {
	c := rig.NewContainerEnv(t)
	var manifests atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			manifests.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/t/busybox:1"
	c.Must("tag", rig.TestImage, ref)
	c.Must("push", "-q", "--tls-verify=false", ref)

	manifests.Store(0)
	if r := c.Berth("run", "--rm", "--pull", "never", strings.TrimSuffix(ref, ":1")+":2", "true"); !rig.UsageError(r) || !strings.Contains(r.Stderr, "no such image") {
		t.Errorf("--pull never of a missing image: %+v", r)
	}
	c.Must("run", "--rm", ref, "true")
	c.Must("run", "--rm", "--pull", "missing", ref, "true")
	if n := manifests.Load(); n != 0 {
		t.Errorf("--pull never/missing asked the registry %d times", n)
	}
	c.Must("run", "--rm", "--pull", "always", ref, "true")
	if manifests.Load() == 0 {
		t.Error("--pull always did not ask the registry")
	}
	c.Must("run", "--rm", "--platform", goruntime.GOOS+"/"+goruntime.GOARCH, rig.TestImage, "true")
	other := "linux/arm64"
	if goruntime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	for _, bad := range [][]string{{"--pull", "sometimes"}, {"--platform", other}, {"--platform", "linux"}, {"--platform", "windows/" + goruntime.GOARCH}} {
		if r := c.Berth(append(append([]string{"run", "--rm"}, bad...), rig.TestImage, "true")...); !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
	}
}

// --volumes-from mounts another container's volumes and bind mounts (not
// its tmpfs), with their mode or the :ro/:rw given; the new container's
// own mount of a path wins; its --rm leaves the other's anonymous volume.
func TestRunVolumesFrom(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := t.TempDir()
	c.Must("create", "--name", "data", "-v", "vf-named:/vol", "-v", host+":/bind:ro", "-v", "/anon", "--tmpfs", "/scratch", rig.TestImage, "true")
	anon := c.Field("data", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`)
	check := `echo a > /vol/f && echo b > /anon/f && (touch /bind/x 2>/dev/null && echo bind-rw || echo bind-ro) && (grep -q " /scratch " /proc/mounts && echo scratch || echo no-scratch)`
	if out := c.Must("run", "--rm", "--volumes-from", "data", rig.TestImage, "sh", "-c", check); out != "bind-ro\nno-scratch\n" {
		t.Errorf("--volumes-from data: %q", out)
	}
	if out := c.Must("run", "--rm", "--volumes-from", "data:rw", rig.TestImage, "sh", "-c", "cat /vol/f /anon/f && touch /bind/x && echo ok"); out != "a\nb\nok\n" {
		t.Errorf("--volumes-from data:rw: %q", out)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err != nil {
		t.Errorf("the write through the inherited bind mount is not on the host: %v", err)
	}
	if r := c.Berth("run", "--rm", "--volumes-from", "data:ro", rig.TestImage, "touch", "/vol/g"); r.Code == 0 {
		t.Errorf("--volumes-from data:ro: the volume was writable")
	}
	if out := c.Must("run", "--rm", "--volumes-from", "data", "-v", "vf-other:/vol", rig.TestImage, "sh", "-c", "ls /vol"); out != "" {
		t.Errorf("-v over an inherited path: /vol holds %q, want vf-other's nothing", out)
	}
	if got := c.Must("volume", "ls", "-q"); !strings.Contains(got, anon) || anon == "" {
		t.Errorf("the --rm containers removed data's anonymous volume %q: %q", anon, got)
	}
	for _, bad := range []string{"nosuch", "data:rx", ":ro"} {
		if r := c.Berth("run", "--rm", "--volumes-from", bad, rig.TestImage, "true"); !rig.UsageError(r) {
			t.Errorf("--volumes-from %s: %+v", bad, r)
		}
	}
	c.Must("rm", "-v", "data")
}

// ps --filter publish= and expose= (PORT[-END][/PROTO], tcp by default),
// ancestor= and volume=; ps -s shows the changes and the virtual size.
func TestPsPortFiltersAndSize(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "web", "--network", "bridge", "-p", "127.0.0.1:18080:80", "--expose", "9000/udp", "-v", "ps-vol:/data", rig.TestImage, "true")
	c.Must("create", "--name", "plain", "--network", "none", "--expose", "9000", rig.TestImage, "true")
	names := func(f string) string {
		return strings.Join(strings.Fields(c.Must("ps", "-a", "--format", "{{.Names}}", "--filter", f)), ",")
	}
	for _, tc := range []struct{ f, want string }{
		{"publish=80", "web"}, {"publish=80/tcp", "web"}, {"publish=70-90", "web"}, {"publish=80/udp", ""},
		{"publish=18080", ""}, {"publish=9000", ""}, {"expose=80", "web"}, {"expose=9000", "plain"},
		{"expose=9000/udp", "web"}, {"expose=8000-9999/tcp", "plain"}, {"ancestor=" + rig.TestImage, "plain,web"},
		{"volume=ps-vol", "web"}, {"volume=/data", "web"}, {"network=bridge", "web"},
	} {
		if got := names(tc.f); got != tc.want {
			t.Errorf("ps --filter %s: %q, want %q", tc.f, got, tc.want)
		}
	}
	for _, bad := range []string{"publish=http", "expose=80/xyz", "publish=90-80"} {
		if r := c.Berth("ps", "-a", "--filter", bad); !rig.UsageError(r) {
			t.Errorf("ps --filter %s: %+v", bad, r)
		}
	}
	c.Must("rm", "web")
	c.Must("run", "--name", "sz", rig.TestImage, "sh", "-c", "head -c 300000 /dev/zero > /big")
	out := c.Must("ps", "-a", "-s", "--filter", "name=sz")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "SIZE") {
		t.Fatalf("ps -s: %q", out)
	}
	size := c.Must("ps", "-a", "-s", "--filter", "name=sz", "--format", "{{.Size}}")
	m := regexp.MustCompile(`^([0-9.]+)kB \(virtual ([0-9.]+)MB\)\n$`).FindStringSubmatch(size)
	var rw, virt float64
	if m != nil {
		rw, _ = strconv.ParseFloat(m[1], 64)
		virt, _ = strconv.ParseFloat(m[2], 64)
	}
	if rw < 300 || rw > 400 || virt < 1 {
		t.Errorf("ps -s SIZE %q: want about 300kB (virtual the image's MBs more)", size)
	}
}

// system df counts the layers images share once; -v shows each image's
// shared and unique size, each container and each volume.
func TestSystemDfSharedLayersAndVerbose(t *testing.T) {
	c := rig.NewContainerEnv(t)
	base := c.Must("image", "inspect", "-f", "{{.Size}}", rig.TestImage)
	c.Must("run", "--name", "w", rig.TestImage, "sh", "-c", "head -c 500000 /dev/urandom > /f")
	c.Must("commit", "w", "df-big:1")
	c.Must("rm", "w")
	big := c.Must("image", "inspect", "-f", "{{.Size}}", "df-big:1")
	b, _ := strconv.ParseInt(strings.TrimSpace(base), 10, 64)
	g, _ := strconv.ParseInt(strings.TrimSpace(big), 10, 64)
	if b == 0 || g < b+500000 {
		t.Fatalf("image sizes: base %q, committed %q", base, big)
	}
	c.Must("volume", "create", "df-vol")
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "up", "-v", "df-vol:/v", rig.TestImage, "sleep", "300"))
	out := c.Must("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}")
	want := fmt.Sprintf("Images|2|1|%s|%s\n", units.HumanSize(g), units.HumanSize(g-b))
	if !strings.HasPrefix(out, want) {
		t.Errorf("system df: %q, want the images line %q (shared layers once; only df-big's own layer reclaimable)", out, want)
	}
	v := c.Must("system", "df", "-v")
	norm := regexp.MustCompile(` {2,}`).ReplaceAllString(v, "|")
	for _, w := range []string{
		"Images space usage:", "REPOSITORY|TAG|IMAGE ID|CREATED|SIZE|SHARED SIZE|UNIQUE SIZE|CONTAINERS",
		"df-big|1|", fmt.Sprintf("|%s|%s|%s|0\n", units.HumanSize(g), units.HumanSize(b), units.HumanSize(g-b)),
		fmt.Sprintf("|%s|%s|0B|1\n", units.HumanSize(b), units.HumanSize(b)),
		"Containers space usage:", id[:12] + "|" + rig.TestImage, "|1|", "|up\n",
		"Local Volumes space usage:", "VOLUME NAME|LINKS|SIZE", "df-vol|1|0B\n",
	} {
		if !strings.Contains(norm, w) {
			t.Errorf("system df -v has no %q:\n%s", w, v)
		}
	}
	if r := c.Berth("system", "df", "-v", "--format", "json"); !rig.UsageError(r) {
		t.Errorf("df -v --format: %+v", r)
	}
	c.Must("rm", "-f", "up")
}

// --cgroupns host shares the host's cgroup namespace (private is the
// default); --userns takes host (and maps: TestRunUserNamespaceIDMaps).
func TestRunCgroupnsAndUserns(t *testing.T) {
	c := rig.NewContainerEnv(t)
	hostNS, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(c.Must("run", "--rm", "--cgroupns", "host", rig.TestImage, "readlink", "/proc/self/ns/cgroup")); out != hostNS {
		t.Errorf("--cgroupns host: %s, host %s", out, hostNS)
	}
	if out := strings.TrimSpace(c.Must("run", "--rm", "--cgroupns", "private", rig.TestImage, "readlink", "/proc/self/ns/cgroup")); out == hostNS {
		t.Errorf("--cgroupns private: the host's namespace %s", out)
	}
	c.Must("run", "--rm", "--userns", "host", rig.TestImage, "true")
	c.Must("create", "--name", "ns", "--cgroupns", "host", rig.TestImage, "true")
	if got := c.Field("ns", "{{.HostConfig.CgroupnsMode}}"); got != "host" {
		t.Errorf("inspect CgroupnsMode %q", got)
	}
	c.Must("rm", "ns")
	for _, bad := range [][]string{
		{"--cgroupns", "shared"}, {"--userns", "keep-id"}, {"--userns", "auto"}, {"--userns", "private"},
	} {
		if r := c.Berth(append(append([]string{"run", "--rm"}, bad...), rig.TestImage, "true")...); !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
	}
	if out := c.Must("ps", "-aq"); out != "" {
		t.Errorf("refused options left containers: %q", out)
	}
}

// -a attaches only the streams named (the others are discarded); it
// cannot go with -d.
func TestRunAttachStreams(t *testing.T) {
	c := rig.NewContainerEnv(t)
	sh := []string{rig.TestImage, "sh", "-c", "echo out; echo err >&2"}
	r := c.Berth(append([]string{"run", "--rm", "-a", "stdout"}, sh...)...)
	if r.Code != 0 || r.Stdout != "out\n" || r.Stderr != "" {
		t.Errorf("-a stdout: %+v", r)
	}
	r = c.Berth(append([]string{"run", "--rm", "--attach", "STDERR"}, sh...)...)
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "err\n" {
		t.Errorf("-a stderr: %+v", r)
	}
	r = c.BerthIn([]byte("piped\n"), "run", "--rm", "-i", "-a", "stdin", "-a", "stdout", rig.TestImage, "cat")
	if r.Code != 0 || r.Stdout != "piped\n" {
		t.Errorf("-i -a stdin -a stdout: %+v", r)
	}
	for _, bad := range [][]string{{"-a", "stdout", "-d"}, {"-a", "stdlog"}} {
		if r := c.Berth(append(append([]string{"run", "--rm"}, bad...), rig.TestImage, "true")...); !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
	}
}

// --sig-proxy=false: the signals berth gets (SIGUSR1, SIGTERM) do not
// reach the container, which runs on until stopped; by default they do.
// With -t the flag is accepted and changes nothing (Docker never proxies
// to a terminal's container).
func TestRunSigProxy(t *testing.T) {
	c := rig.NewContainerEnv(t)
	trap := []string{rig.TestImage, "sh", "-c", `rm -f /ready; trap "exit 7" USR1; trap "exit 9" TERM; touch /ready; while :; do sleep 0.1; done`}
	for _, tc := range []struct {
		sig  unix.Signal
		exit string
	}{{unix.SIGUSR1, "7"}, {unix.SIGTERM, "9"}} {
		for _, proxy := range []bool{true, false} {
			name := fmt.Sprintf("sp%d%t", tc.sig, proxy)
			cmd := c.Cmd(append([]string{"run", "--name", name, "--sig-proxy=" + strconv.FormatBool(proxy)}, trap...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			waitTrap(c, name)
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if proxy {
				<-done
				if got := c.Field(name, "{{.State.ExitCode}}"); got != tc.exit {
					t.Errorf("--sig-proxy=true: exit %s, want %s (%v passed on)", got, tc.exit, tc.sig)
				}
				continue
			}
			time.Sleep(time.Second)
			if got := c.Field(name, "{{.State.Running}}"); got != "true" {
				t.Errorf("--sig-proxy=false: the container ended after berth got %v (running %s)", tc.sig, got)
			}
			c.Must("kill", "-s", "KILL", name)
			<-done
			if got := c.Field(name, "{{.State.ExitCode}}"); got != "137" {
				t.Errorf("--sig-proxy=false: exit %s after kill, want 137", got)
			}
		}
	}
	if r := c.Berth("run", "--rm", "-t", "--sig-proxy=false", rig.TestImage, "echo", "ok"); r.Code != 0 || r.Stdout != "ok\r\n" {
		t.Errorf("-t --sig-proxy=false: %+v", r)
	}
}

// hasSysResource tells whether this process (and so the berth it runs)
// holds CAP_SYS_RESOURCE.
func hasSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// withoutSysResource runs cmd with CAP_SYS_RESOURCE out of its bounding
// set, so that berth, root, runs without it, and returns its stdout.
func withoutSysResource(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The bounding set belongs to a thread and a child inherits its
		// forking thread's. This thread is never unlocked, so it ends
		// with the goroutine instead of going back to the pool.
		goruntime.LockOSThread()
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_RESOURCE, 0, 0, 0); err != nil {
			done <- result{nil, fmt.Errorf("drop CAP_SYS_RESOURCE: %w", err)}
			return
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%v: %w: %s", cmd.Args, err, stderr.String())
		}
		done <- result{out, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return string(r.out)
}

// quotaFS mounts a new loop filesystem of kind ext4 or xfs with project
// quotas on, for the test's whole life; it returns a data root on it.
func quotaFS(t *testing.T, kind string) string {
	t.Helper()
	mkfs := map[string][]string{
		"ext4": {"mkfs.ext4", "-q", "-F", "-O", "project,quota"},
		"xfs":  {"mkfs.xfs", "-q", "-f"},
	}[kind]
	if _, err := exec.LookPath(mkfs[0]); err != nil {
		if os.Getenv("BERTH_VM") != "" {
			t.Fatalf("%s is missing in the VM (testdata/vm/run.sh copies it from the host: make deps)", mkfs[0])
		}
		t.Skipf("%s is not installed (make deps): cannot make a %s filesystem with project quotas", mkfs[0], kind)
	}
	dir, err := os.MkdirTemp("/var/tmp", "berth-it-quota")
	if err != nil {
		t.Fatal(err)
	}
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	// xfs wants 300 MB at least; the file is sparse.
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(320 << 20)
		f.Close()
	}
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	if b, err := exec.Command(mkfs[0], append(mkfs[1:], img)...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("%s: %v %s", mkfs[0], err, b)
	}
	if err := os.Mkdir(mnt, 0o700); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	if b, err := exec.Command("mount", "-o", "loop,prjquota", img, mnt).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		// Kernels built without quota support (CONFIG_QUOTA, XFS_QUOTA)
		// refuse these mounts: nothing can enforce a limit there. The
		// VMs' Debian kernel has it (testdata/vm loads loop, xfs and
		// quota_v2): there this is the test's failure, not a skip.
		if os.Getenv("BERTH_VM") != "" {
			t.Fatalf("mount %s with project quotas in the VM: %v %s", kind, err, strings.TrimSpace(string(b)))
		}
		t.Skipf("this kernel does not mount %s with project quotas, so no limit can be checked here: %v %s", kind, err, strings.TrimSpace(string(b)))
	}
	t.Cleanup(func() {
		// -d frees the loop device (busybox's umount does not on its own).
		if b, err := exec.Command("umount", "-d", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, b)
			return
		}
		os.RemoveAll(dir)
	})
	return filepath.Join(mnt, "data")
}

// --storage-opt size= is a real limit of the container's own files on a
// data root with project quotas (ext4 and xfs made by the test), and
// refused with a clear message where the data root has none.
func TestRunStorageOptSize(t *testing.T) {
	c := rig.NewContainerEnv(t)
	r := c.Berth("run", "--rm", "--name", "sz", "--storage-opt", "size=8m", rig.TestImage, "true")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "project quota") {
		t.Errorf("--storage-opt size without project quotas: %+v", r)
	}
	if c.Berth("inspect", "sz").Code == 0 {
		t.Error("the refused run left a container")
	}
	for _, bad := range []string{"size=lots", "size=0", "quota=1g"} {
		if r := c.Berth("run", "--rm", "--storage-opt", bad, rig.TestImage, "true"); !rig.UsageError(r) {
			t.Errorf("--storage-opt %s: %+v", bad, r)
		}
	}
	for _, kind := range []string{"ext4", "xfs"} {
		t.Run(kind, func(t *testing.T) {
			q := rig.NewContainerEnvIn(t, quotaFS(t, kind))
			write := `head -c 4000000 /dev/zero > /f1 && echo small-ok; head -c 12000000 /dev/zero > /f2 2>/dev/null && echo big-ok || echo big-refused`
			limited := []string{"run", "--rm", "--storage-opt", "size=8m", rig.TestImage, "sh", "-c", write}
			if kind == "ext4" && hasSysResource(t) {
				// ext4 lets a holder of CAP_SYS_RESOURCE past its quotas,
				// and overlayfs writes the container's files with berth's
				// credentials: berth refuses the limit. (The VMs' root has
				// the capability; the hosts' has not.)
				if r := q.Berth(limited...); !rig.UsageError(r) || !strings.Contains(r.Stderr, "CAP_SYS_RESOURCE") {
					t.Errorf("--storage-opt size on ext4 with CAP_SYS_RESOURCE: %+v, want a refusal", r)
				}
				// Without it, as on the hosts, the limit holds.
				if out := withoutSysResource(t, q.Cmd(limited...)); out != "small-ok\nbig-refused\n" {
					t.Errorf("--storage-opt size=8m on ext4, berth without CAP_SYS_RESOURCE: %q", out)
				}
			} else if out := q.Must(limited...); out != "small-ok\nbig-refused\n" {
				t.Errorf("--storage-opt size=8m on %s: %q", kind, out)
			}
			if out := q.Must("run", "--rm", rig.TestImage, "sh", "-c", write); out != "small-ok\nbig-ok\n" {
				t.Errorf("no --storage-opt on %s: %q", kind, out)
			}
		})
	}
}
