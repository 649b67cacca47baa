package main

import (
	"os/exec"
	"strings"
	"testing"
)

// berth itself does not link the Dockerfile machinery: every berth
// process (run, run -d and its monitor, oci) would load and initialise it
// at start. berth build runs it in the build helper, which does.
func TestBuildMachineryOnlyInBuildHelper(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain here (as in the VM tests); the host suite checks this")
	}
	banned := []string{
		"github.com/berth-project/berth/build",
		"github.com/berth-project/berth/buildctx",
		"github.com/moby/buildkit/",
		"github.com/moby/patternmatcher",
		"google.golang.org/protobuf/",
	}
	deps := func(tags string) map[string]bool {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", ".").Output()
		if err != nil {
			t.Fatalf("go list -tags %q: %v", tags, err)
		}
		m := map[string]bool{}
		for _, p := range strings.Fields(string(out)) {
			m[p] = true
		}
		return m
	}
	linked := func(pkgs map[string]bool, b string) bool {
		for p := range pkgs {
			if p == b || strings.HasSuffix(b, "/") && strings.HasPrefix(p, b) {
				return true
			}
		}
		return false
	}
	lean, helper := deps("urfave_cli_no_docs"), deps("urfave_cli_no_docs,berth_build")
	for _, b := range banned {
		if linked(lean, b) {
			t.Errorf("berth links %s", b)
		}
		if !linked(helper, b) {
			t.Errorf("the build helper does not link %s", b)
		}
	}
}
