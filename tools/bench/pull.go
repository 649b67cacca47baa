package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/image"
)

func init() {
	register(Suite{
		Name: "pull",
		Help: "pull + unpack of a ~200 MB, 5-layer image from a loopback docker-registry: berth pull vs skopeo copy + umoci unpack",
		Run:  pullBench,
	})
}

// startBenchRegistry runs Debian's docker-registry on a free loopback port.
func startBenchRegistry(e *Env) (string, func(), error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, errors.New("docker-registry not installed (make deps)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(e.Tmp, "registry")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\n", dir, addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(15 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("docker-registry did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// benchLayer is a tar of files of 1 MiB, half random, half text, so it
// compresses about as well as real image content.
func benchLayer(n, files int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	text := bytes.Repeat([]byte("lorem ipsum dolor sit amet, consectetur adipiscing elit\n"), 1<<19/56+1)[:1<<19]
	for i := 0; i < files; i++ {
		body := make([]byte, 1<<20)
		if _, err := rand.Read(body[:1<<19]); err != nil {
			return nil, err
		}
		copy(body[1<<19:], text)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/file%03d", n, i), Mode: 0o644, Size: int64(len(body)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}

func pushBenchImage(e *Env, ref string) error {
	s, err := image.Open(filepath.Join(e.Tmp, "pull-src"))
	if err != nil {
		return err
	}
	var layers []image.LayerDesc
	var parent digest.Digest
	for i := 0; i < 5; i++ {
		tb, err := benchLayer(i, 40)
		if err != nil {
			return err
		}
		l, err := s.AddLayer(parent, bytes.NewReader(tb))
		if err != nil {
			return err
		}
		layers = append(layers, l)
		if parent == "" {
			parent = l.DiffID
		} else {
			parent = digest.FromString(parent.String() + " " + l.DiffID.String())
		}
	}
	if _, err := s.Create(ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}, layers, ref); err != nil {
		return err
	}
	_, err = s.Push(e.Ctx, ref, image.PushOptions{RemoteOptions: image.RemoteOptions{InsecureTLS: true, Keychain: &image.Keychain{}, Quiet: true}})
	return err
}

// trash removes run outputs in the background, so deleting one run's
// output is not timed; a run waits for pending deletions first.
type trash struct {
	wg  sync.WaitGroup
	dir string
	n   int
}

func (t *trash) throw(p string) {
	t.n++
	dst := filepath.Join(t.dir, fmt.Sprint(t.n))
	if err := os.Rename(p, dst); err != nil {
		return
	}
	t.wg.Add(1)
	go func() { defer t.wg.Done(); os.RemoveAll(dst) }()
}

func runQuiet(ctx context.Context, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func pullBench(e *Env) error {
	addr, stop, err := startBenchRegistry(e)
	if err != nil {
		return err
	}
	defer stop()
	ref := addr + "/bench/big:1"
	fmt.Fprintf(e.Out, "building and pushing a 5-layer ~200 MB image to %s ...\n", addr)
	if err := pushBenchImage(e, ref); err != nil {
		return fmt.Errorf("push bench image: %w", err)
	}
	tr := &trash{dir: filepath.Join(e.Tmp, "trash")}
	if err := os.MkdirAll(tr.dir, 0o700); err != nil {
		return err
	}
	defer tr.wg.Wait()
	out := func(tool string, i int) string { return filepath.Join(e.Tmp, fmt.Sprintf("pull-%s-%d", tool, i)) }
	cs := []Contender{{
		Name: "berth",
		Run: func(i int) error {
			tr.wg.Wait()
			return runQuiet(e.Ctx, e.Berth, "--data-root", out("berth", i), "pull", "-q", "--tls-verify=false", ref)
		},
	}, {
		Name: "skopeo+umoci",
		Run: func(i int) error {
			tr.wg.Wait()
			d := out("skopeo", i)
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
			if err := runQuiet(e.Ctx, "skopeo", "copy", "-q", "--src-tls-verify=false", "docker://"+ref, "oci:"+filepath.Join(d, "oci")+":big"); err != nil {
				return err
			}
			return runQuiet(e.Ctx, "umoci", "unpack", "--image", filepath.Join(d, "oci")+":big", filepath.Join(d, "bundle"))
		},
	}}
	// Each run's output goes to the trash after the run; the deletion
	// happens in the background while the other tool runs.
	for k := range cs {
		name, run := cs[k].Name, cs[k].Run
		tool := map[string]string{"berth": "berth", "skopeo+umoci": "skopeo"}[name]
		cs[k].Run = func(i int) error {
			err := run(i)
			if err == nil {
				tr.throw(out(tool, i)) // a rename; the deletion is not timed
			}
			return err
		}
		cs[k].Cleanup = func(i int) { tr.throw(out(tool, i)) }
	}
	var missing []Result
	for _, t := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, Result{Name: "skopeo+umoci", Err: fmt.Errorf("%s not installed", t)})
			cs = cs[:1]
		}
	}
	fmt.Fprintf(e.Out, "%d warm-up + %d measured runs per tool, alternating\n", e.Warmup, e.N)
	rs := append(e.Compare(cs), missing...)
	e.Table(rs)
	e.Ratio(rs, "berth", "skopeo+umoci", 0.5)
	return e.Ctx.Err()
}
