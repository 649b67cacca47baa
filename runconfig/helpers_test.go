package runconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeVols is a volume store in memory: existing volumes are known by
// name; Ensure "creates" the others (nothing on disk).
type fakeVols struct {
	existing map[string]bool
	calls    []string
	anon     int
	failOn   string // Ensure of this name fails
}

func (f *fakeVols) Ensure(name string) (string, string, bool, error) {
	f.calls = append(f.calls, name)
	if name == f.failOn && f.failOn != "" || name == "" && f.failOn == "<anon>" {
		return "", "", false, errors.New("disk full")
	}
	created := false
	if name == "" {
		f.anon++
		name = "anon" + string(rune('0'+f.anon))
		created = true
	} else if !f.existing[name] {
		if f.existing == nil {
			f.existing = map[string]bool{}
		}
		f.existing[name] = true
		created = true
	}
	return name, "/var/lib/berth/volumes/" + name + "/_data", created, nil
}

// opts is a minimal valid Options.
func opts(cmd ...string) *Options {
	if len(cmd) == 0 {
		cmd = []string{"sh"}
	}
	return &Options{Config: container.Config{Cmd: cmd}}
}

func specOf(t *testing.T, o *Options) *specs.Spec {
	t.Helper()
	s, _, err := Spec(testID, o, &fakeVols{})
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	return s
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error %q is not one line", what, err)
	}
}

func findMount(s *specs.Spec, dst string) *specs.Mount {
	var found *specs.Mount
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			if found != nil {
				return &specs.Mount{Type: "DUPLICATE"}
			}
			found = &s.Mounts[i]
		}
	}
	return found
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func env(s *specs.Spec, k string) (string, bool) {
	for _, e := range s.Process.Env {
		if ek, v, _ := strings.Cut(e, "="); ek == k {
			return v, true
		}
	}
	return "", false
}

// writeFile writes a file in a temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// blockDevice finds a block device of the host, or skips.
func blockDevice(t *testing.T) string {
	t.Helper()
	ents, _ := os.ReadDir("/dev")
	for _, e := range ents {
		if e.Type()&os.ModeDevice != 0 && e.Type()&os.ModeCharDevice == 0 {
			p := "/dev/" + e.Name()
			if _, _, err := statBlockDevice(p); err == nil {
				return p
			}
		}
	}
	t.Skip("no block device in /dev")
	return ""
}

func imageConfig() ocispec.ImageConfig {
	return ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"},
		Env:     []string{"PATH=/img/bin"},
		Volumes: map[string]struct{}{"/data": {}, "/logs": {}},
	}
}

// badSpec is a change to the options that Spec must refuse with an error
// containing want.
type badSpec struct {
	name string
	set  func(o *Options)
	want string
}

// specRefuses checks each case: Spec fails with the wanted error, returns
// neither spec nor mounts with it, and has made no volume.
func specRefuses(t *testing.T, cases []badSpec) {
	t.Helper()
	for _, tt := range cases {
		o := opts("sh")
		tt.set(o)
		vols := &fakeVols{}
		s, mps, err := Spec(testID, o, vols)
		wantErr(t, tt.name, err, tt.want)
		if s != nil || mps != nil {
			t.Errorf("%s: a spec or mounts came back with the error", tt.name)
		}
		if len(vols.calls) > 0 {
			t.Errorf("%s: volumes were made before the error: %q", tt.name, vols.calls)
		}
	}
}
