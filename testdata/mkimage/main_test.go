package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testOptions uses Debian's busybox and, for the probe, bin/probe when
// built or else this (static, CGO_ENABLED=0) test binary: only its bytes
// matter here.
func testOptions(t *testing.T) Options {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox: apt-get install busybox-static")
	}
	probe := filepath.Join("..", "..", "bin", "probe")
	if _, err := os.Stat(probe); err != nil {
		if probe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	return Options{Busybox: "/bin/busybox", Probe: probe, Tag: DefaultTag}
}

func build(t *testing.T, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Build(&buf, o); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes()
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tar by name, and the names in order.
func readTar(t *testing.T, b []byte) (map[string]tarFile, []string) {
	t.Helper()
	files := map[string]tarFile{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar %s: %v", h.Name, err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want the epoch", h.Name, h.ModTime)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if _, dup := files[name]; dup {
			t.Errorf("%s twice", name)
		}
		files[name] = tarFile{h, data}
		names = append(names, name)
	}
}

func TestDeterministic(t *testing.T) {
	o := testOptions(t)
	a, b := build(t, o), build(t, o)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds differ")
	}
}

func TestContents(t *testing.T) {
	o := testOptions(t)
	outer, _ := readTar(t, build(t, o))

	var manifest []manifestEntry
	if err := json.Unmarshal(outer["manifest.json"].data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 2 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != DefaultTag {
		t.Fatalf("manifest.json: %+v", manifest)
	}
	m := manifest[0]
	cfgRaw := outer[m.Config].data
	if m.Config != sha(cfgRaw)+".json" {
		t.Errorf("config %s is not named by its digest %s", m.Config, sha(cfgRaw))
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || cfg.RootFS.Type != "layers" || len(cfg.History) != 2 {
		t.Errorf("config: %s", cfgRaw)
	}
	if c := cfg.Config; len(c.Cmd) != 1 || c.Cmd[0] != "sh" || c.WorkingDir != "/" || len(c.Env) != 1 || !strings.HasPrefix(c.Env[0], "PATH=") {
		t.Errorf("run config: %+v", c)
	}
	if strings.Contains(string(cfgRaw), "Volumes") {
		t.Errorf("config declares volumes: %s", cfgRaw)
	}
	if len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("diff_ids: %v", cfg.RootFS.DiffIDs)
	}
	var layers []map[string]tarFile
	for i, name := range m.Layers {
		b := outer[name].data
		if got := "sha256:" + sha(b); got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: sha256 %s, diff_id %s", i, got, cfg.RootFS.DiffIDs[i])
		}
		files, names := readTar(t, b)
		if !sort.StringsAreSorted(names) {
			t.Errorf("layer %d entries not sorted: %v", i, names)
		}
		layers = append(layers, files)
	}

	base := layers[0]
	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	if f := base["bin/busybox"]; !bytes.Equal(f.data, bb) || f.hdr.Mode != 0o755 {
		t.Errorf("bin/busybox: mode %o, same bytes %v", f.hdr.Mode, bytes.Equal(f.data, bb))
	}
	out, err := exec.Command(o.Busybox, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if f, ok := base["bin/"+a]; !ok || f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != "busybox" {
			t.Errorf("applet %s: no bin/%s -> busybox", a, a)
		}
	}
	for _, want := range []struct {
		name     string
		mode     int64
		uid, gid int
	}{
		{"home/app", 0o755, 1000, 1000},
		{"tmp", 0o1777, 0, 0},
		{"root", 0o700, 0, 0},
		{"etc/passwd", 0o644, 0, 0},
		{"etc/group", 0o644, 0, 0},
	} {
		f, ok := base[want.name]
		if !ok {
			t.Errorf("layer 1 lacks %s", want.name)
			continue
		}
		if f.hdr.Mode != want.mode || f.hdr.Uid != want.uid || f.hdr.Gid != want.gid {
			t.Errorf("%s: mode %o %d:%d, want %o %d:%d", want.name, f.hdr.Mode, f.hdr.Uid, f.hdr.Gid, want.mode, want.uid, want.gid)
		}
	}
	for name, lines := range map[string][]string{
		"etc/passwd": {"root:x:0:0:", "nobody:x:65534:65534:", "app:x:1000:1000:app:/home/app:/bin/sh"},
		"etc/group":  {"root:x:0:", "nogroup:x:65534:", "app:x:1000:app", "extra:x:2000:app"},
	} {
		for _, l := range lines {
			if !strings.Contains(string(base[name].data), l) {
				t.Errorf("%s lacks %q:\n%s", name, l, base[name].data)
			}
		}
	}

	top := layers[1]
	pb, err := os.ReadFile(o.Probe)
	if err != nil {
		t.Fatal(err)
	}
	if f := top["probe"]; !bytes.Equal(f.data, pb) || f.hdr.Mode != 0o755 {
		t.Errorf("probe: mode %o, same bytes %v", f.hdr.Mode, bytes.Equal(f.data, pb))
	}
	if got := string(top["data/from-image.txt"].data); got != FromImageText {
		t.Errorf("data/from-image.txt: %q", got)
	}
	if len(top) != 3 {
		t.Errorf("layer 2 has %d entries, want data, data/from-image.txt, probe", len(top))
	}
}

func TestTag(t *testing.T) {
	o := testOptions(t)
	o.Tag = "localhost:5000/x/y:v1"
	outer, _ := readTar(t, build(t, o))
	var repos map[string]map[string]string
	if err := json.Unmarshal(outer["repositories"].data, &repos); err != nil {
		t.Fatalf("repositories: %v", err)
	}
	if _, ok := repos["localhost:5000/x/y"]["v1"]; !ok {
		t.Errorf("repositories: %v", repos)
	}
	if !strings.Contains(string(outer["manifest.json"].data), `"RepoTags":["localhost:5000/x/y:v1"]`) {
		t.Errorf("manifest.json: %s", outer["manifest.json"].data)
	}
}

func TestRejectsDynamicBinary(t *testing.T) {
	o := testOptions(t)
	dyn := "/bin/ls" // dynamically linked on Debian
	f, err := elf.Open(dyn)
	if err != nil {
		t.Skipf("no %s to try: %v", dyn, err)
	}
	defer f.Close()
	if !hasInterp(f) {
		t.Skipf("%s is static here", dyn)
	}
	o.Probe = dyn
	err = Build(io.Discard, o)
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("Build with a dynamic probe: %v", err)
	}
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
