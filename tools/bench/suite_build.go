package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// buildFiles is the size of the context of the build suite's rebuild.
const buildFiles = 20000

func init() {
	register(Suite{
		Name: "build",
		Help: "berth build against buildah bud --layers (runc, overlay storage) of one 6-step Dockerfile: cold (--no-cache), warm rebuild with nothing changed, rebuild after touching one file of a 20,000-file context and after changing its content",
		Run:  buildBench,
	})
}

const benchDockerfile = `ARG BASE
FROM $BASE
ENV MODE=bench
WORKDIR /srv
COPY files/ /srv/files/
RUN ls /srv/files | wc -l > /srv/count
CMD ["cat", "/srv/count"]
`

func buildBench(e *Env) error {
	ce, err := e.containers()
	if err != nil {
		return err
	}
	defer ce.close()
	ctxDir := filepath.Join(e.Tmp, "build-ctx")
	if err := os.MkdirAll(filepath.Join(ctxDir, "files"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(benchDockerfile), 0o644); err != nil {
		return err
	}
	for i := 0; i < buildFiles; i++ {
		if err := os.WriteFile(filepath.Join(ctxDir, "files", fmt.Sprintf("f%05d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			return err
		}
	}
	// A file written in the last moment is always re-read (its metadata
	// could miss a change in the same tick): let the context age.
	time.Sleep(200 * time.Millisecond)

	run := func(cmd *exec.Cmd) error {
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Env = append(os.Environ(), "BERTH_DEFAULT_NETWORK=none")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, oneLine(stderr.String()))
		}
		return nil
	}
	berth := func(extra ...string) func(int) error {
		return func(int) error {
			args := append([]string{"build", "-q", "--build-arg", "BASE=" + ce.image}, extra...)
			return run(ce.berth(append(args, ctxDir)...))
		}
	}
	var missing []Result
	var bh []string
	if _, err := exec.LookPath("buildah"); err != nil {
		missing = append(missing, Result{Name: "buildah", Err: errors.New("not installed")})
	} else {
		bh = []string{"buildah", "--root", filepath.Join(e.Tmp, "bh-root"), "--runroot", filepath.Join(e.Tmp, "bh-run"), "--storage-driver", "overlay"}
		defer func() {
			_ = exec.Command(bh[0], append(bh[1:], "rmi", "-a", "-f")...).Run()
			unmountUnder(filepath.Join(e.Tmp, "bh-root"))
		}()
		pull := exec.CommandContext(e.Ctx, bh[0], append(bh[1:], "pull", "-q", "docker-archive:"+filepath.Join(e.Tmp, "busybox.tar"))...)
		if err := run(pull); err != nil {
			missing = append(missing, Result{Name: "buildah", Err: err})
			bh = nil
		}
	}
	buildah := func(extra ...string) func(int) error {
		return func(int) error {
			args := append(append(bh[1:len(bh):len(bh)], "bud", "-q", "--runtime", "runc", "--network", "none", "--layers", "--pull=never", "--build-arg", "BASE=localhost/"+ce.image), extra...)
			return run(exec.CommandContext(e.Ctx, bh[0], append(args, ctxDir)...))
		}
	}
	phase := func(name string, target float64, berthRun, buildahRun func(int) error) {
		fmt.Fprintf(e.Out, "-- %s: %d warm-up + %d measured runs per tool, alternating\n", name, e.Warmup, e.N)
		cs := []Contender{{Name: "berth", Run: berthRun}}
		if bh != nil {
			cs = append(cs, Contender{Name: "buildah", Run: buildahRun})
		}
		rs := append(e.Compare(cs), missing...)
		e.Table(rs)
		e.Ratio(rs, "berth", "buildah", target)
	}
	phase("cold (--no-cache)", 0.8, berth("--no-cache"), buildah("--no-cache"))
	phase("warm, nothing changed", 0.2, berth(), buildah())
	touch := func(build func(int) error) func(int) error {
		return func(i int) error {
			t := time.Now().Add(-time.Hour).Add(time.Duration(i) * time.Second)
			if err := os.Chtimes(filepath.Join(ctxDir, "files", "f00000"), t, t); err != nil {
				return err
			}
			return build(i)
		}
	}
	phase("rebuild after touching one file", 0.3, touch(berth()), touch(buildah()))
	// A changed file invalidates the COPY and the RUN after it: both
	// tools copy the 20,000 files again.
	edit := func(build func(int) error) func(int) error {
		return func(i int) error {
			if err := os.WriteFile(filepath.Join(ctxDir, "files", "f00001"), []byte(fmt.Sprintf("edit %d\n", i)), 0o644); err != nil {
				return err
			}
			return build(i)
		}
	}
	phase("rebuild after changing one file's content", 0.3, edit(berth()), edit(buildah()))
	return e.Ctx.Err()
}

// unmountUnder detaches the mounts buildah's store leaves below dir,
// deepest first, so the bench's temp dir can be removed.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "bench: unmount %s: %v\n", m, err)
		}
	}
}
