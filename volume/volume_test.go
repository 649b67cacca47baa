package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entries lists the volumes directory, the lock file aside, to show what
// an operation left behind.
func entries(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != lockName {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestCreateIsIdempotent(t *testing.T) {
	s := open(t)
	v, err := s.Create("data", map[string]string{"k": "v"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Labels["k"] != "v" || v.Anonymous ||
		v.Mountpoint != filepath.Join(s.Root(), "data", "_data") || time.Since(v.CreatedAt) > time.Minute {
		t.Errorf("create: %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("mountpoint: %v %v", fi, err)
	}
	// Docker returns the existing volume; the second call's labels do not apply.
	again, err := s.Create("data", map[string]string{"other": "x"}, nil)
	if err != nil || again.Mountpoint != v.Mountpoint || !again.CreatedAt.Equal(v.CreatedAt) || len(again.Labels) != 1 {
		t.Errorf("second create: %+v %v", again, err)
	}
	name, path, created, err := s.Ensure("data")
	if err != nil || created || name != "data" || path != v.Mountpoint {
		t.Errorf("ensure existing: %s %s %v %v", name, path, created, err)
	}
	name, path, created, err = s.Ensure("fresh")
	if err != nil || !created || name != "fresh" || path != filepath.Join(s.Root(), "fresh", "_data") {
		t.Errorf("ensure new: %s %s %v %v", name, path, created, err)
	}
	if got, _ := s.Get("fresh"); got == nil || got.Anonymous {
		t.Errorf("a named volume made by Ensure is anonymous: %+v", got)
	}
	if got := entries(t, s); strings.Join(got, " ") != "data fresh" {
		t.Errorf("store holds %v", got)
	}
}

func TestAnonymous(t *testing.T) {
	s := open(t)
	for _, mk := range []func() (string, error){
		func() (string, error) { v, err := s.Create("", nil, nil); return nameOf(v), err },
		func() (string, error) { n, _, created, err := s.Ensure(""); return n, errIf(!created, err) },
	} {
		n, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Get(n)
		if err != nil || len(n) != 64 || strings.Trim(n, "0123456789abcdef") != "" || !v.Anonymous {
			t.Errorf("anonymous volume %q: %+v %v", n, v, err)
		}
	}
	if vols, _ := s.List(); len(vols) != 2 || vols[0].Name == vols[1].Name {
		t.Errorf("two anonymous volumes expected: %v", vols)
	}
}

func nameOf(v *Volume) string {
	if v == nil {
		return ""
	}
	return v.Name
}

func errIf(cond bool, err error) error {
	if err == nil && cond {
		return errors.New("not created")
	}
	return err
}

func TestNames(t *testing.T) {
	s := open(t)
	for _, good := range []string{"a", "A", "0", "a1_.-x", "x..y", strings.Repeat("n", 255)} {
		if _, err := s.Create(good, nil, nil); err != nil {
			t.Errorf("name %q refused: %v", good, err)
		}
	}
	for _, e := range entries(t, s) {
		if err := s.Remove(e, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"../x", "..", ".", "a/b", "/abs", "-x", "_x", ".hidden", ".lock", "a b", "a\nb", "é", "a:b",
		strings.Repeat("n", 256)} {
		_, err := s.Create(bad, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "invalid volume name") {
			t.Errorf("name %q: %v", bad, err)
		}
		if _, _, _, err := s.Ensure(bad); err == nil {
			t.Errorf("Ensure(%q) accepted", bad)
		}
		if _, err := s.Get(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", bad, err)
		}
		if err := s.Remove(bad, true); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q): %v", bad, err)
		}
	}
	if _, err := s.Create("x", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"}); err == nil || !strings.Contains(err.Error(), `"device"`) {
		t.Errorf("driver options: %v", err)
	}
	if got := entries(t, s); len(got) != 0 {
		t.Errorf("refused creates left %v", got)
	}
}

func TestGetNotFound(t *testing.T) {
	s := open(t)
	_, err := s.Get("nope")
	if !errors.Is(err, ErrNotFound) || err.Error() != "no such volume: nope" {
		t.Errorf("get: %v", err)
	}
	if _, err := s.Size("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("size: %v", err)
	}
	// A directory without metadata is not a volume.
	os.Mkdir(filepath.Join(s.Root(), "stray"), 0o700)
	if _, err := s.Get("stray"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stray dir: %v", err)
	}
	if vols, err := s.List(); err != nil || len(vols) != 0 {
		t.Errorf("list: %v %v", vols, err)
	}
}

func TestMetadata(t *testing.T) {
	s := open(t)
	v, err := s.Create("m", map[string]string{"a": "1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Root(), "m", "volume.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["CreatedAt"]; !ok || raw["Labels"].(map[string]any)["a"] != "1" {
		t.Errorf("volume.json: %s", b)
	}
	// Docker's inspect object: its keys, CreatedAt to the second.
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(out, &got)
	keys := slices.Sorted(maps.Keys(got))
	if strings.Join(keys, ",") != "CreatedAt,Driver,Labels,Mountpoint,Name,Options,Scope" {
		t.Errorf("inspect keys %v", keys)
	}
	if ts, err := time.Parse(time.RFC3339, got["CreatedAt"].(string)); err != nil || ts.Unix() != v.CreatedAt.Unix() {
		t.Errorf("CreatedAt %v: %v", got["CreatedAt"], err)
	}
	// Volumes made by earlier builds spelled the time created_at.
	os.MkdirAll(filepath.Join(s.Root(), "old", "_data"), 0o755)
	os.WriteFile(filepath.Join(s.Root(), "old", "volume.json"), []byte(`{"created_at":"2020-01-02T03:04:05Z","labels":{"x":"y"},"anonymous":true}`), 0o600)
	old, err := s.Get("old")
	if err != nil || old.CreatedAt.Year() != 2020 || old.Labels["x"] != "y" || !old.Anonymous {
		t.Errorf("legacy metadata: %+v %v", old, err)
	}
	// Unreadable metadata: listed as missing, yet removable.
	os.WriteFile(filepath.Join(s.Root(), "m", "volume.json"), []byte("{"), 0o600)
	if _, err := s.Get("m"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("corrupt metadata: %v", err)
	}
	if vols, err := s.List(); err != nil || len(vols) != 1 || vols[0].Name != "old" {
		t.Errorf("list with a corrupt volume: %v %v", vols, err)
	}
	if err := s.Remove("m", false); err != nil {
		t.Errorf("remove corrupt: %v", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s := open(t)
	var wg sync.WaitGroup
	created := make(chan bool, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, c, err := s.Ensure("same")
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d creators", n)
	}
	if got := entries(t, s); strings.Join(got, " ") != "same" {
		t.Errorf("store holds %v", got)
	}
}

// TestHelperEnsure is run by TestConcurrentCreateProcesses in child
// processes: it creates the volume and says whether it made it.
func TestHelperEnsure(t *testing.T) {
	root := os.Getenv("BERTH_VOLUME_HELPER_ROOT")
	if root == "" {
		t.Skip("helper for TestConcurrentCreateProcesses")
	}
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Start together, to race.
	for time.Now().UnixNano() < mustAtoi64(t, os.Getenv("BERTH_VOLUME_HELPER_AT")) {
		time.Sleep(time.Millisecond)
	}
	name, _, created, err := s.Ensure("shared")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT %s %v\n", name, created)
}

func mustAtoi64(t *testing.T, s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentCreateProcesses(t *testing.T) {
	dataRoot := t.TempDir()
	at := time.Now().Add(300 * time.Millisecond).UnixNano()
	const n = 6
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEnsure$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BERTH_VOLUME_HELPER_ROOT="+dataRoot, fmt.Sprint("BERTH_VOLUME_HELPER_AT=", at))
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helper: %v\n%s", err, b)
			}
			outs[i] = string(b)
		}()
	}
	wg.Wait()
	creators := 0
	for _, o := range outs {
		switch {
		case strings.Contains(o, "RESULT shared true"):
			creators++
		case !strings.Contains(o, "RESULT shared false"):
			t.Errorf("helper said %q", o)
		}
	}
	if creators != 1 {
		t.Errorf("%d processes made the volume", creators)
	}
	s, _ := Open(dataRoot, nil)
	if got := entries(t, s); strings.Join(got, " ") != "shared" {
		t.Errorf("store holds %v", got)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	s := open(t)
	// Something not a volume is in the way: the rename fails.
	if err := os.MkdirAll(filepath.Join(s.Root(), "blocked", "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("blocked", nil, nil); err == nil || !strings.Contains(err.Error(), "create volume blocked") {
		t.Errorf("create over a stray directory: %v", err)
	}
	if got := entries(t, s); strings.Join(got, " ") != "blocked" {
		t.Errorf("failed create left %v", got)
	}
}

func TestSweep(t *testing.T) {
	s := open(t)
	// What crashed processes left: a half-made volume, a half-deleted one.
	for _, d := range []string{".new-123/_data", ".gone-old-1/_data/x"} {
		os.MkdirAll(filepath.Join(s.Root(), d), 0o700)
	}
	// One being deleted right now by a live process, which holds its flock.
	busy := filepath.Join(s.Root(), ".gone-busy-2")
	os.MkdirAll(busy, 0o700)
	f, err := os.Open(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if vols, _ := s.List(); len(vols) != 0 {
		t.Errorf("leftovers listed as volumes: %v", vols)
	}
	if _, err := s.Create("v", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, s); strings.Join(got, " ") != ".gone-busy-2 v" {
		t.Errorf("after sweep: %v", got)
	}
}

func TestRemoveInUse(t *testing.T) {
	s := open(t)
	s.Create("data", nil, nil)
	s.Create("free", nil, nil)
	s.users = usersFunc(func(n string) ([]string, error) {
		if n == "data" {
			return []string{"web", "db"}, nil
		}
		return nil, nil
	})
	err := s.Remove("data", false)
	if !errors.Is(err, ErrInUse) || err.Error() != "volume data is in use by container web, db" {
		t.Errorf("remove in use: %v", err)
	}
	var iu *InUseError
	if !errors.As(err, &iu) || iu.Name != "data" || len(iu.Users) != 2 {
		t.Errorf("InUseError: %#v", err)
	}
	if _, err := s.Get("data"); err != nil {
		t.Errorf("refused remove removed: %v", err)
	}
	if err := s.Remove("free", false); err != nil {
		t.Errorf("remove free: %v", err)
	}
	os.WriteFile(filepath.Join(s.Root(), "data", "_data", "f"), []byte("x"), 0o644)
	if err := s.Remove("data", true); err != nil {
		t.Errorf("remove -f: %v", err)
	}
	if err := s.Remove("data", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	s.Create("x", nil, nil)
	s.users = usersFunc(func(string) ([]string, error) { return nil, errors.New("boom") })
	if err := s.Remove("x", false); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("hook error: %v", err)
	}
	if got := entries(t, s); strings.Join(got, " ") != "x" {
		t.Errorf("store holds %v", got)
	}
}

func TestPrune(t *testing.T) {
	s := open(t)
	anon, _, _, _ := s.Ensure("")
	usedAnon, _, _, _ := s.Ensure("")
	s.Create("named", map[string]string{"keep": "yes"}, nil)
	s.Create("named2", nil, nil)
	s.Create("used", nil, nil)
	s.users = usersFunc(func(n string) ([]string, error) {
		if n == "used" || n == usedAnon {
			return []string{"c1"}, nil
		}
		return nil, nil
	})
	os.WriteFile(filepath.Join(s.Root(), anon, "_data", "f"), make([]byte, 1000), 0o644)
	removed, size, err := s.Prune(false)
	if err != nil || strings.Join(removed, " ") != anon || size != 1000 {
		t.Errorf("prune: %v %d %v", removed, size, err)
	}
	removed, _, err = s.PruneMatching(true, func(v *Volume) bool { return v.Labels["keep"] == "" })
	if err != nil || strings.Join(removed, " ") != "named2" {
		t.Errorf("prune -a, keep=yes kept: %v %v", removed, err)
	}
	removed, _, err = s.Prune(true)
	if err != nil || strings.Join(removed, " ") != "named" {
		t.Errorf("prune -a: %v %v", removed, err)
	}
	var left []string
	vols, _ := s.List()
	for _, v := range vols {
		left = append(left, v.Name)
	}
	want := []string{usedAnon, "used"}
	sort.Strings(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want the used ones %v", left, want)
	}
}

func TestSize(t *testing.T) {
	s := open(t)
	v, _ := s.Create("s", nil, nil)
	d := v.Mountpoint
	os.WriteFile(filepath.Join(d, "a"), make([]byte, 100), 0o644)
	os.Link(filepath.Join(d, "a"), filepath.Join(d, "hard"))
	os.MkdirAll(filepath.Join(d, "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "sub", "b"), make([]byte, 20), 0o644)
	os.Symlink("abc", filepath.Join(d, "link")) // its size is its target's length
	if n, err := s.Size("s"); err != nil || n != 123 {
		t.Errorf("size %d %v, want 123", n, err)
	}
}

type usersFunc func(string) ([]string, error)

func (f usersFunc) VolumeUsers(n string) ([]string, error) { return f(n) }
