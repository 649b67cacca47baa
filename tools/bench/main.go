// Command bench is the driver behind `make bench`: it times berth side by
// side with reference tools in the same run and prints medians and ratios.
//
//	go run ./tools/bench [-suite oci-run,...|all] [-n 25] [-warmup 2] [-list]
//
// Benchmarks are not tests: nothing here fails on a time threshold. The
// exit status is non-zero only when the harness itself cannot work (no
// bundle, no temp dir, unknown suite ...); a tool that fails to run is
// reported as unavailable.
//
// Adding a suite: put a file suite_<name>.go in this directory whose init
// calls register(Suite{Name: ..., Help: ..., Run: func(*Env) error}). A
// suite gets an *Env with the flags, a private temp dir (removed at the
// end), the berth binary, helpers to make bundles (Env.Bundle) and to time
// tools in alternation (Env.Compare), and prints its own table
// (Env.Table, Env.Ratio).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Suite is one named benchmark.
type Suite struct {
	Name string
	Help string
	Run  func(*Env) error
}

var suites = map[string]Suite{}

// register adds a suite; suite files call it from init.
func register(s Suite) {
	if _, dup := suites[s.Name]; dup {
		// Programming error in this tool: report it loudly at start.
		fmt.Fprintf(os.Stderr, "bench: suite %q registered twice\n", s.Name)
		os.Exit(2)
	}
	suites[s.Name] = s
}

func suiteNames() []string {
	names := make([]string, 0, len(suites))
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Env is what a suite gets to work with.
type Env struct {
	Ctx    context.Context
	Out    io.Writer
	N      int    // measured runs per tool
	Warmup int    // unmeasured runs per tool first
	Repo   string // repository root (has go.mod)
	Tmp    string // private temp dir of this bench run, removed at exit
	// Berth is the absolute path of the berth binary.
	Berth string
	// BerthOCI is the argv prefix of berth's OCI runtime face
	// ([Berth, "oci"] unless -berth-cmd replaced it).
	BerthOCI []string
	Verbose  bool

	mkbundle string
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	os.Exit(code)
}

func run() (int, error) {
	var (
		suiteFlag = flag.String("suite", "oci-run", "comma-separated suites to run, or \"all\"")
		n         = flag.Int("n", 25, "measured runs per tool (at least 20 recommended)")
		warmup    = flag.Int("warmup", 2, "warm-up runs per tool, not measured")
		berth     = flag.String("berth", "bin/berth", "berth binary (built with `go build` into the temp dir if missing)")
		berthCmd  = flag.String("berth-cmd", "", "argv prefix used instead of -berth, space separated (e.g. \"runc --root /tmp/x\" to test the harness)")
		list      = flag.Bool("list", false, "list suites and exit")
		verbose   = flag.Bool("v", false, "print every sample")
	)
	flag.Parse()
	if *list {
		for _, name := range suiteNames() {
			fmt.Printf("%-12s %s\n", name, suites[name].Help)
		}
		return 0, nil
	}
	if *n < 1 || *warmup < 0 {
		return 2, errors.New("-n must be >= 1 and -warmup >= 0")
	}
	var selected []Suite
	if *suiteFlag == "all" {
		for _, name := range suiteNames() {
			selected = append(selected, suites[name])
		}
	} else {
		for _, name := range strings.Split(*suiteFlag, ",") {
			s, ok := suites[strings.TrimSpace(name)]
			if !ok {
				return 2, fmt.Errorf("unknown suite %q (have: %s)", name, strings.Join(suiteNames(), ", "))
			}
			selected = append(selected, s)
		}
	}

	repo, err := findRepo()
	if err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return 1, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := &Env{Ctx: ctx, Out: os.Stdout, N: *n, Warmup: *warmup, Repo: repo, Tmp: tmp, Verbose: *verbose}
	if *berthCmd != "" {
		env.BerthOCI = strings.Fields(*berthCmd)
		if p, err := filepath.Abs(filepath.Join(repo, *berth)); err == nil {
			env.Berth = p
		}
	} else {
		b, err := env.berthBinary(*berth)
		if err != nil {
			return 1, err
		}
		env.Berth = b
		env.BerthOCI = []string{b, "oci"}
	}

	failed := false
	for _, s := range selected {
		fmt.Fprintf(env.Out, "== %s: %s\n", s.Name, s.Help)
		if err := s.Run(env); err != nil {
			fmt.Fprintf(os.Stderr, "bench: suite %s: %v\n", s.Name, err)
			failed = true
		}
		if ctx.Err() != nil {
			return 130, errors.New("interrupted")
		}
		fmt.Fprintln(env.Out)
	}
	if failed {
		return 1, nil
	}
	return 0, nil
}

// findRepo walks up from the working directory to the directory with go.mod.
func findRepo() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working dir: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run from the berth repository", wd)
		}
	}
}

// berthBinary returns the absolute path of berth, building it into the temp
// dir when the given path does not exist.
func (e *Env) berthBinary(p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(e.Repo, p)
	}
	p = filepath.Clean(p)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	out := filepath.Join(e.Tmp, "berth")
	fmt.Fprintf(os.Stderr, "bench: %s missing, building %s\n", p, out)
	if err := e.goBuild(out, "."); err != nil {
		return "", err
	}
	return out, nil
}

func (e *Env) goBuild(out, pkg string, flags ...string) error {
	cmd := exec.CommandContext(e.Ctx, "go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = e.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Bundle makes an OCI bundle in a fresh directory under Tmp running args,
// with testdata/mkbundle (busybox rootfs, `runc spec` defaults unless
// specFromBerth). It returns the bundle directory.
func (e *Env) Bundle(name string, specFromBerth bool, args ...string) (string, error) {
	if e.mkbundle == "" {
		// A prebuilt mkbundle beside this binary (the VM image has no go).
		if exe, err := os.Executable(); err == nil {
			if cand := filepath.Join(filepath.Dir(exe), "mkbundle"); fileExists(cand) {
				e.mkbundle = cand
			}
		}
	}
	if e.mkbundle == "" {
		out := filepath.Join(e.Tmp, "mkbundle")
		if err := e.goBuild(out, "./testdata/mkbundle"); err != nil {
			return "", err
		}
		e.mkbundle = out
	}
	dir := filepath.Join(e.Tmp, name)
	berth := ""
	if specFromBerth {
		berth = e.Berth
	}
	probe := filepath.Join(e.Repo, "bin", "probe")
	if _, err := os.Stat(probe); err != nil {
		probe = ""
	}
	cargs := append([]string{
		"-mkrootfs", filepath.Join(e.Repo, "testdata", "mkrootfs.sh"),
		"-probe", probe, "-berth", berth, dir,
	}, args...)
	cmd := exec.CommandContext(e.Ctx, e.mkbundle, cargs...)
	cmd.Dir = e.Repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkbundle %s: %w: %s", dir, err, strings.TrimSpace(string(b)))
	}
	return dir, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
