package containers

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// newVolumeEnv is a berth with its own state and data roots and no image:
// the volume commands need none. The data root is removed at the end.
func newVolumeEnv(t *testing.T) *rig.ContainerEnv {
	t.Helper()
	e := rig.NewEnv(t)
	data, err := os.MkdirTemp("/var/tmp", "berth-it-vol")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	return &rig.ContainerEnv{Env: e, Data: data}
}

// volumeNames lists `volume ls -q` with the given flags.
func volumeNames(c *rig.ContainerEnv, flags ...string) []string {
	c.T.Helper()
	return strings.Fields(c.Must(append([]string{"volume", "ls", "-q"}, flags...)...))
}

func volumeInspect(c *rig.ContainerEnv, names ...string) []map[string]any {
	c.T.Helper()
	var out []map[string]any
	b := c.Must(append([]string{"volume", "inspect"}, names...)...)
	if err := json.Unmarshal([]byte(b), &out); err != nil {
		c.T.Fatalf("volume inspect %v: %v\n%s", names, err, b)
	}
	return out
}

func TestVolumeCreateLsInspectRm(t *testing.T) {
	c := newVolumeEnv(t)
	if out := c.Must("volume", "create", "--label", "app=web", "--label", "tier", "data"); out != "data\n" {
		t.Errorf("create printed %q", out)
	}
	// Idempotent, as in Docker; --name is Docker's old spelling.
	if out := c.Must("volume", "create", "--name", "data"); out != "data\n" {
		t.Errorf("second create printed %q", out)
	}
	anon := strings.TrimSpace(c.Must("volume", "create"))
	if len(anon) != 64 || strings.Trim(anon, "0123456789abcdef") != "" {
		t.Errorf("anonymous name %q", anon)
	}
	c.Must("volume", "create", "--label", "app=db", "other")

	want := []string{anon, "data", "other"}
	sort.Strings(want)
	if got := volumeNames(c); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ls -q: %v, want %v", got, want)
	}
	// Rows are sorted by name; the anonymous volume's random name may sort
	// before or after "data".
	lines := strings.Split(strings.TrimRight(c.Must("volume", "ls"), "\n"), "\n")
	var rows []string
	for _, l := range lines {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	wantRows := []string{"DRIVER VOLUME NAME"}
	for _, n := range want {
		wantRows = append(wantRows, "local "+n)
	}
	if strings.Join(rows, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("ls table:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}
	if out := c.Must("volume", "ls", "--format", "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Label \"app\"}}", "--filter", "name=^da"); out != "data|local|local|web\n" {
		t.Errorf("ls --format: %q", out)
	}
	if out := c.Must("volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}", "--filter", "label=tier"); !strings.Contains(out, "NAME") ||
		!strings.Contains(out, "app=web,tier=") || strings.Contains(out, "other") {
		t.Errorf("ls table format: %q", out)
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{[]string{"label=app"}, "data other"},
		{[]string{"label=app=db"}, "other"},
		{[]string{"label=app", "label=tier"}, "data"},       // label filters all hold
		{[]string{"name=data", "name=other"}, "data other"}, // name filters any
		{[]string{"name=data", "label=app=db"}, ""},
		{[]string{"driver=local", "name=^other$"}, "other"},
		{[]string{"dangling=true", "label=app"}, "data other"}, // no container uses any
		{[]string{"dangling=false"}, ""},
	} {
		var flags []string
		for _, f := range tc.filters {
			flags = append(flags, "--filter", f)
		}
		if got := strings.Join(volumeNames(c, flags...), " "); got != tc.want {
			t.Errorf("ls %v: %q, want %q", tc.filters, got, tc.want)
		}
	}

	vols := volumeInspect(c, "data", "other")
	if len(vols) != 2 {
		t.Fatalf("inspect: %v", vols)
	}
	v := vols[0]
	keys := slices.Sorted(maps.Keys(v))
	if strings.Join(keys, ",") != "CreatedAt,Driver,Labels,Mountpoint,Name,Options,Scope" {
		t.Errorf("inspect keys: %v", keys)
	}
	if v["Name"] != "data" || v["Driver"] != "local" || v["Scope"] != "local" ||
		v["Mountpoint"] != filepath.Join(c.Data, "volumes", "data", "_data") || v["Labels"].(map[string]any)["app"] != "web" {
		t.Errorf("inspect: %v", v)
	}
	if ts, err := time.Parse(time.RFC3339, v["CreatedAt"].(string)); err != nil || time.Since(ts) > time.Hour {
		t.Errorf("CreatedAt %v: %v", v["CreatedAt"], err)
	}
	if fi, err := os.Stat(v["Mountpoint"].(string)); err != nil || !fi.IsDir() {
		t.Errorf("mountpoint: %v", err)
	}
	if out := c.Must("volume", "inspect", "--format", "{{.Name}} {{.Labels.app}}", "data"); out != "data web\n" {
		t.Errorf("inspect --format: %q", out)
	}
	// A missing volume: Docker's status 1, the others still shown.
	r := c.Berth("volume", "inspect", "data", "nope")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no such volume: nope") || !strings.Contains(r.Stdout, `"Name": "data"`) {
		t.Errorf("inspect missing: %+v", r)
	}

	if out := c.Must("volume", "rm", "data", anon); out != "data\n"+anon+"\n" {
		t.Errorf("rm printed %q", out)
	}
	r = c.Berth("volume", "rm", "data")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no such volume: data") {
		t.Errorf("rm missing: %+v", r)
	}
	if out := c.Must("volume", "rm", "-f", "data", "other"); out != "data\nother\n" {
		t.Errorf("rm -f printed %q", out)
	}
	if got := volumeNames(c); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Data, "volumes")); len(ents) != 1 || ents[0].Name() != ".lock" {
		t.Errorf("volumes dir holds %v", ents)
	}
}

func TestVolumePrune(t *testing.T) {
	c := newVolumeEnv(t)
	anon := strings.TrimSpace(c.Must("volume", "create"))
	c.Must("volume", "create", "--label", "keep", "kept")
	c.Must("volume", "create", "--label", "env=test", "named")
	mp := strings.TrimSpace(c.Must("volume", "inspect", "-f", "{{.Mountpoint}}", anon))
	if err := os.WriteFile(filepath.Join(mp, "f"), make([]byte, 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	// Unconfirmed: nothing goes.
	if r := c.BerthIn([]byte("n\n"), "volume", "prune"); r.Code != 0 || len(volumeNames(c)) != 3 {
		t.Errorf("unconfirmed prune: %+v", r)
	}
	// Plain prune takes anonymous volumes only (Docker ≥ 23).
	out := c.Must("volume", "prune", "-f")
	if out != "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 2kB\n" {
		t.Errorf("prune:\n%s", out)
	}
	if got := volumeNames(c); strings.Join(got, " ") != "kept named" {
		t.Errorf("after prune: %v", got)
	}
	if out := c.Must("volume", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("empty prune: %q", out)
	}
	out = c.Must("volume", "prune", "-a", "-f", "--filter", "label!=keep")
	if !strings.HasPrefix(out, "Deleted Volumes:\nnamed\n\n") {
		t.Errorf("prune -a label!=keep:\n%s", out)
	}
	// Confirmed on stdin; the all filter is -a.
	r := c.BerthIn([]byte("y\n"), "volume", "prune", "--filter", "all=true", "--filter", "label=keep")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Deleted Volumes:\nkept\n") {
		t.Errorf("confirmed prune: %+v", r)
	}
	if got := volumeNames(c); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
}

func TestVolumeBadInput(t *testing.T) {
	c := newVolumeEnv(t)
	for _, args := range [][]string{
		{"volume", "create", "a b"},
		{"volume", "create", "../escape"},
		{"volume", "create", "-x"},
		{"volume", "create", ".hidden"},
		{"volume", "create", strings.Repeat("n", 256)},
		{"volume", "create", "one", "two"},
		{"volume", "create", "one", "--label", "a=b"},
		{"volume", "create", "--name", "one", "two"},
		{"volume", "create", "--driver", "nfs", "x"},
		{"volume", "create", "--opt", "type=tmpfs", "x"},
		{"volume", "create", "--label", "=v", "x"},
		{"volume", "create", "--bogus", "x"},
		{"volume", "ls", "--filter", "bogus=1"},
		{"volume", "ls", "--filter", "name"},
		{"volume", "ls", "--filter", "name=["},
		{"volume", "ls", "--filter", "dangling=maybe"},
		{"volume", "ls", "--filter", "label!=x"},
		{"volume", "ls", "--format", "{{.Nope"},
		{"volume", "ls", "extra"},
		{"volume", "inspect"},
		{"volume", "rm"},
		{"volume", "prune", "-f", "--filter", "dangling=true"},
		{"volume", "prune", "-f", "--filter", "all=maybe"},
	} {
		r := c.Berth(args...)
		if !rig.UsageError(r) {
			t.Errorf("berth %q: exit %d stdout %q stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	// Nothing was made: input is checked before any store is opened.
	if ents, _ := os.ReadDir(c.Data); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("bad input left %v in the data root", names)
	}
}

func TestVolumeConcurrentCreate(t *testing.T) {
	c := newVolumeEnv(t)
	var wg sync.WaitGroup
	outs := make([]string, 6)
	errs := make([]error, 6)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Cmd("volume", "create", "shared").CombinedOutput()
			outs[i], errs[i] = string(b), err
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil || outs[i] != "shared\n" {
			t.Errorf("create %d: %v %q", i, errs[i], outs[i])
		}
	}
	if got := volumeNames(c); strings.Join(got, " ") != "shared" {
		t.Errorf("volumes: %v", got)
	}
	ents, _ := os.ReadDir(filepath.Join(c.Data, "volumes"))
	for _, e := range ents {
		if e.Name() != ".lock" && e.Name() != "shared" {
			t.Errorf("left in the volumes dir: %s", e.Name())
		}
	}
	c.Must("volume", "rm", "shared")
}

// TestVolumeInUse checks what a container's use changes: rm refuses (even
// with -f), dangling filters, prune skips it.
func TestVolumeInUse(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("volume", "create", "used")
	c.Must("volume", "create", "free")
	name := c.ID("voluser")
	c.Must("create", "--name", name, "-v", "used:/data", rig.TestImage, "true")
	if got := strings.Join(volumeNames(c, "--filter", "dangling=false"), " "); got != "used" {
		t.Errorf("dangling=false: %q", got)
	}
	if got := strings.Join(volumeNames(c, "--filter", "dangling=true"), " "); got != "free" {
		t.Errorf("dangling=true: %q", got)
	}
	for _, args := range [][]string{{"volume", "rm", "used"}, {"volume", "rm", "-f", "used"}} {
		r := c.Berth(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "volume used is in use by container "+name) {
			t.Errorf("%v: %+v", args, r)
		}
	}
	out := c.Must("volume", "prune", "-a", "-f")
	if !strings.HasPrefix(out, "Deleted Volumes:\nfree\n\n") {
		t.Errorf("prune -a:\n%s", out)
	}
	c.Must("rm", name)
	if got := strings.Join(volumeNames(c, "--filter", "dangling=true"), " "); got != "used" {
		t.Errorf("after rm, dangling=true: %q", got)
	}
	c.Must("volume", "rm", "used")
}
