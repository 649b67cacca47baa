package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func init() {
	register(Suite{
		Name: "oci-run",
		Help: "`oci run` of a busybox bundle running /bin/true, wall time exec to exit: berth vs runc (and crun)",
		Run:  ociRun,
	})
}

// ociTool is an OCI runtime command line: argv prefix before "run"/"delete".
type ociTool struct {
	name   string
	prefix []string
}

func (t ociTool) id(i int) string {
	return fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), t.name, i)
}

func (e *Env) ociCmd(t ociTool, args ...string) *exec.Cmd {
	argv := append(append([]string(nil), t.prefix...), args...)
	cmd := exec.CommandContext(e.Ctx, argv[0], argv[1:]...)
	cmd.Dir = e.Tmp
	return cmd
}

func (e *Env) ociContender(t ociTool, bundle string) Contender {
	return Contender{
		Name: t.name,
		Run: func(i int) error {
			var stderr bytes.Buffer
			cmd := e.ociCmd(t, "run", "--bundle", bundle, t.id(i))
			cmd.Stderr = &stderr // stdin and stdout: /dev/null
			if err := cmd.Run(); err != nil {
				if e.Verbose {
					fmt.Fprintf(e.Out, "  failed: %s\n", strings.Join(cmd.Args, " "))
				}
				return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return nil
		},
		Cleanup: func(i int) {
			_ = e.ociCmd(t, "delete", "-f", t.id(i)).Run()
		},
	}
}

func ociRun(e *Env) error {
	bundle, err := e.Bundle("oci-run-bundle", false, "/bin/true")
	if err != nil {
		return err
	}
	tools := []ociTool{
		{name: "berth", prefix: e.BerthOCI},
	}
	for _, name := range []string{"runc", "crun"} {
		tools = append(tools, ociTool{name: name, prefix: []string{name, "--root", filepath.Join(e.Tmp, name+"-root")}})
	}

	var cs []Contender
	var missing []Result
	for _, t := range tools {
		if _, err := exec.LookPath(t.prefix[0]); err != nil {
			missing = append(missing, Result{Name: t.name, Err: errors.New("not installed")})
			continue
		}
		cs = append(cs, e.ociContender(t, bundle))
	}
	if len(cs) == 0 {
		return errors.New("no OCI runtime to measure")
	}
	fmt.Fprintf(e.Out, "bundle %s, %d warm-up + %d measured runs per tool, alternating\n", bundle, e.Warmup, e.N)
	rs := append(e.Compare(cs), missing...)
	e.Table(rs)
	e.Ratio(rs, "berth", "runc", 0.60)
	if e.Ctx.Err() != nil {
		return e.Ctx.Err()
	}
	return nil
}
