package quadlet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dirs are where the generator looks for .container files, the first
// winning for a name found in several: berth's own directory, then
// Quadlet's. $BERTH_QUADLET_DIR, when set, replaces both (tests).
func Dirs() []string {
	if d := os.Getenv("BERTH_QUADLET_DIR"); d != "" {
		return []string{d}
	}
	return []string{"/etc/berth/systemd", "/etc/containers/systemd"}
}

// Generate writes a service unit into out for each .container file of
// dirs, and links those [Install] names into TARGET.wants/ and
// TARGET.requires/. A file that cannot be converted is reported on log
// and skipped (the others are still written), and Generate then returns
// an error; warnings go to log too (systemd puts a generator's output in
// the journal).
func Generate(dirs []string, out, berth string, log io.Writer) error {
	seen := map[string]bool{}
	failed := 0
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			fmt.Fprintf(log, "berth-generator: %v\n", err)
			failed++
			continue
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".container") && !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			base := strings.TrimSuffix(n, ".container")
			if seen[base] {
				fmt.Fprintf(log, "berth-generator: %s: skipped, %s.container of an earlier directory wins\n", filepath.Join(dir, n), base)
				continue
			}
			seen[base] = true
			src := filepath.Join(dir, n)
			if err := generateOne(src, base, out, berth, log); err != nil {
				fmt.Fprintf(log, "berth-generator: %s: %v\n", src, err)
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d .container file(s) not converted", failed)
	}
	return nil
}

func generateOne(src, base, out, berth string, log io.Writer) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	f, err := Parse(r)
	r.Close()
	if err != nil {
		return err
	}
	u, err := Convert(base, src, f, berth, func(msg string) {
		fmt.Fprintf(log, "berth-generator: %s: warning: %s\n", src, msg)
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, u.Name), []byte(u.Text), 0o644); err != nil {
		return fmt.Errorf("write unit: %w", err)
	}
	for _, l := range []struct {
		suffix  string
		targets []string
	}{{".wants", u.Wants}, {".requires", u.Requires}} {
		for _, t := range l.targets {
			if !validName(t) || !strings.Contains(t, ".") {
				return fmt.Errorf("[Install]: %q is not a unit name", t)
			}
			dir := filepath.Join(out, t+l.suffix)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("link into %s: %w", t, err)
			}
			link := filepath.Join(dir, u.Name)
			if err := os.Symlink("../"+u.Name, link); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("link into %s: %w", t, err)
			}
		}
	}
	return nil
}
