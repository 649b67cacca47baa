package engines

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// buildahDockerfile uses the instructions whose result both builders
// record the same way.
const buildahDockerfile = `ARG BASE
FROM $BASE
ENV APP_HOME=/srv/app MODE=test
WORKDIR $APP_HOME
COPY --chown=1000:2000 a.txt ./
COPY sub/ sub/
RUN echo made > made.txt && rm /data/from-image.txt && mkdir -p /var/x && ln -s /srv/app/a.txt /var/x/link
LABEL org.example.name=built org.example.v=2
EXPOSE 8080 53/udp
VOLUME /srv/data
STOPSIGNAL SIGUSR1
USER app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["id"]
`

// comparedConfig is what must be the same in berth's and buildah's image
// of the same Dockerfile (created_by and times may differ).
type comparedConfig struct {
	User         string
	ExposedPorts map[string]struct{}
	Env          []string
	Entrypoint   []string
	Cmd          []string
	Volumes      map[string]struct{}
	WorkingDir   string
	Labels       map[string]string
	StopSignal   string
}

// TestBuildLikeBuildah builds one Dockerfile with berth build and with
// buildah bud (chroot isolation) and compares the configs, the number of
// layers and the files in each layer.
func TestBuildLikeBuildah(t *testing.T) {
	need(t, "buildah")
	busybox, _ := imageTars(t)
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	for name, content := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n", "Dockerfile": buildahDockerfile} {
		p := filepath.Join(ctx, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	bh := []string{"--root", filepath.Join(dir, "bh-root"), "--runroot", filepath.Join(dir, "bh-run"), "--storage-driver", "vfs"}
	defer run(t, nil, "buildah", append(bh, "rmi", "-a", "-f")...)
	mustRun(t, "buildah", append(bh, "pull", "-q", "docker-archive:"+busybox)...)
	mustRun(t, "buildah", append(bh, "bud", "-q", "--isolation", "chroot", "--layers", "--build-arg", "BASE=localhost/"+testImage, "-t", "cmp:1", ctx)...)
	var bhInspect struct {
		OCIv1 struct {
			Config comparedConfig `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, "buildah", append(bh, "inspect", "--type", "image", "cmp:1")...)), &bhInspect); err != nil {
		t.Fatal(err)
	}
	bhTar := filepath.Join(dir, "buildah.tar")
	mustRun(t, "buildah", append(bh, "push", "cmp:1", "docker-archive:"+bhTar+":cmp:1")...)

	br := []string{"--root", filepath.Join(dir, "berth-run"), "--data-root", filepath.Join(dir, "berth-data")}
	env := []string{"BERTH_DEFAULT_NETWORK=none"}
	if r := run(t, env, berthBin, append(br, "load", "-q", "-i", busybox)...); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(t, env, berthBin, append(br, "build", "-q", "--build-arg", "BASE="+testImage, "-t", "cmp:1", ctx)...); r.code != 0 {
		t.Fatal(r)
	}
	r := run(t, env, berthBin, append(br, "image", "inspect", "cmp:1")...)
	var berthInspect []struct{ Config comparedConfig }
	if err := json.Unmarshal([]byte(r.stdout), &berthInspect); err != nil || len(berthInspect) != 1 {
		t.Fatalf("%v: %s", err, r)
	}
	berthTar := filepath.Join(dir, "berth.tar")
	if r := run(t, env, berthBin, append(br, "save", "-o", berthTar, "cmp:1")...); r.code != 0 {
		t.Fatal(r)
	}

	want := bhInspect.OCIv1.Config
	delete(want.Labels, "io.buildah.version")
	got := berthInspect[0].Config
	if !reflect.DeepEqual(got, want) {
		t.Errorf("configs differ:\nberth   %+v\nbuildah %+v", got, want)
	}
	bl, hl := archiveLayers(t, berthTar), archiveLayers(t, bhTar)
	// buildah's chroot isolation leaves the files it mounted over
	// (/etc/hosts ...) in a RUN's layer; Docker's builders do not.
	for i := range hl {
		var kept []string
		for _, e := range hl[i] {
			switch strings.Fields(e)[0] {
			case "etc/hostname", "etc/hosts", "etc/resolv.conf":
				continue
			}
			kept = append(kept, e)
		}
		hl[i] = kept
	}
	// WORKDIR $APP_HOME makes a missing directory: BuildKit, and berth,
	// give it a layer of its own, buildah makes it in the next step's
	// layer. Directories are not compared, so that layer is the one of
	// berth's with no entry; leave it out.
	var kept [][]string
	for _, l := range bl {
		if len(l) > 0 {
			kept = append(kept, l)
		}
	}
	if len(bl)-len(kept) != 1 {
		t.Errorf("berth made %d layers of directories only, want 1 (WORKDIR)", len(bl)-len(kept))
	}
	bl = kept
	if len(bl) != len(hl) {
		t.Fatalf("berth made %d layers, buildah %d", len(bl), len(hl))
	}
	for i := range bl {
		if !reflect.DeepEqual(bl[i], hl[i]) {
			t.Errorf("layer %d differs:\nberth   %v\nbuildah %v", i, bl[i], hl[i])
		}
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := run(t, nil, name, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	return r.stdout
}

// archiveLayers lists, per layer of the only image of a docker save
// archive, its entries other than directories (whose copied-up parents
// builders record differently): "path type uid:gid", sorted.
func archiveLayers(t *testing.T, archive string) [][]string {
	t.Helper()
	files := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "./")] = b
		}
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("%s: manifest.json: %v", archive, err)
	}
	var out [][]string
	for _, l := range manifest[0].Layers {
		data, ok := files[l]
		if !ok {
			t.Fatalf("%s: no layer %s", archive, l)
		}
		var r io.Reader = strings.NewReader(string(data))
		if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		var entries []string
		lt := tar.NewReader(bufio.NewReader(r))
		for {
			h, err := lt.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: layer %s: %v", archive, l, err)
			}
			if h.Typeflag == tar.TypeDir {
				continue
			}
			entries = append(entries, strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")+" "+string(h.Typeflag)+" "+
				strconv.Itoa(h.Uid)+":"+strconv.Itoa(h.Gid)+" "+h.Linkname)
		}
		sort.Strings(entries)
		out = append(out, entries)
	}
	return out
}
