// Command mkbundle makes an OCI bundle for tests, demos and benchmarks:
//
//	mkbundle [flags] DIR [CMD ARGS...]
//
// It runs testdata/mkrootfs.sh to fill DIR/rootfs with busybox (and the
// probe), then writes DIR/config.json from a runtime's default spec with
// process.args set to CMD ARGS (default: /probe if the probe was copied,
// else /bin/sh) and process.terminal false.
//
// The default spec comes from `$BERTH oci spec --rootless=false` (BERTH
// defaults to bin/berth) when that works, else from `runc spec`.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
}

type options struct {
	probe    string
	mkrootfs string
	berth    string
	tty      bool
	rw       bool
	hostname string
	verbose  bool
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("mkbundle", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mkbundle [flags] DIR [CMD ARGS...]")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.probe, "probe", envOr("PROBE", "bin/probe"), "probe binary to copy to /probe (skipped if missing; \"\" for none)")
	fs.StringVar(&o.mkrootfs, "mkrootfs", os.Getenv("MKROOTFS"), "path of mkrootfs.sh (default: found from the working directory or this program)")
	fs.StringVar(&o.berth, "berth", envOr("BERTH", "bin/berth"), "berth binary whose `oci spec` gives the default config (runc spec if it fails)")
	fs.BoolVar(&o.tty, "tty", false, "set process.terminal")
	fs.BoolVar(&o.rw, "rw", false, "make the root filesystem writable (root.readonly=false)")
	fs.StringVar(&o.hostname, "hostname", "", "set hostname in the config")
	fs.BoolVar(&o.verbose, "v", false, "say where the spec came from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return errors.New("missing bundle directory")
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("bundle dir: %w", err)
	}
	cmdArgs := fs.Args()[1:]

	if err := makeRootfs(&o, dir); err != nil {
		return err
	}
	if len(cmdArgs) == 0 {
		cmdArgs = []string{"/bin/sh"}
		if _, err := os.Stat(filepath.Join(dir, "rootfs", "probe")); err == nil {
			cmdArgs = []string{"/probe"}
		}
	}
	spec, from, err := defaultSpec(o.berth, dir)
	if err != nil {
		return err
	}
	if o.verbose {
		fmt.Fprintln(os.Stderr, "mkbundle: default spec from", from)
	}
	if err := edit(spec, &o, cmdArgs); err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// findMkrootfs looks for testdata/mkrootfs.sh above the working directory
// and next to (or above) this executable.
func findMkrootfs() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			for _, c := range []string{
				filepath.Join(d, "testdata", "mkrootfs.sh"),
				filepath.Join(d, "mkrootfs.sh"),
			} {
				if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
					return c, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("testdata/mkrootfs.sh not found: run from the repository or pass -mkrootfs")
}

func makeRootfs(o *options, dir string) error {
	script := o.mkrootfs
	if script == "" {
		s, err := findMkrootfs()
		if err != nil {
			return err
		}
		script = s
	}
	args := []string{filepath.Join(dir, "rootfs")}
	if o.probe != "" {
		if _, err := os.Stat(o.probe); err == nil {
			abs, err := filepath.Abs(o.probe)
			if err != nil {
				return fmt.Errorf("probe path: %w", err)
			}
			args = append(args, "--probe", abs)
		} else if o.probe != "bin/probe" {
			return fmt.Errorf("probe %s: %w", o.probe, err)
		}
	}
	cmd := exec.Command(script, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", script, strings.Join(args, " "), err)
	}
	return nil
}

// defaultSpec returns the default config of berth (if it works) or runc,
// generated in dir, as a generic JSON object so no field is lost.
func defaultSpec(berth, dir string) (map[string]any, string, error) {
	var errs []error
	if berth != "" {
		if p, err := exec.LookPath(berth); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			spec, err := specFrom(dir, p, "oci", "spec", "--rootless=false")
			if err == nil {
				return spec, p + " oci spec", nil
			}
			errs = append(errs, err)
		}
	}
	spec, err := specFrom(dir, "runc", "spec")
	if err == nil {
		return spec, "runc spec", nil
	}
	errs = append(errs, err)
	return nil, "", fmt.Errorf("no default spec: %w", errors.Join(errs...))
}

func specFrom(dir, bin string, args ...string) (map[string]any, error) {
	cfg := filepath.Join(dir, "config.json")
	if err := os.Remove(cfg); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old config: %w", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(cfg)
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s %s wrote no config: %w", bin, strings.Join(args, " "), err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decode %s spec: %w", bin, err)
	}
	return spec, nil
}

func edit(spec map[string]any, o *options, args []string) error {
	proc, ok := spec["process"].(map[string]any)
	if !ok {
		return errors.New("default spec has no process object")
	}
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	proc["args"] = a
	proc["terminal"] = o.tty
	if root, ok := spec["root"].(map[string]any); ok {
		root["path"] = "rootfs"
		if o.rw {
			root["readonly"] = false
		}
	} else {
		spec["root"] = map[string]any{"path": "rootfs", "readonly": !o.rw}
	}
	if o.hostname != "" {
		spec["hostname"] = o.hostname
	}
	return nil
}
