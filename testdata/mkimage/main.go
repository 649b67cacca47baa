// Command mkimage writes the busybox test image as a docker save archive,
// without network:
//
//	mkimage [-busybox PATH] [-probe PATH] [-cmd "WORD ..."] OUT.tar [TAG]
//
// Layer 1 is Debian's static busybox (/bin/busybox and a symlink per
// applet from `busybox --list`, all in /bin as in Docker's busybox image),
// /etc/passwd and /etc/group (root, nobody 65534, app 1000 with a
// supplementary group extra 2000), /tmp (1777), /home/app (1000:1000),
// /root and empty /dev /proc /sys /run. Layer 2 is the probe at /probe and
// /data/from-image.txt. TAG defaults to berth-test/busybox:latest.
//
// Every time stamp is the epoch and entries are sorted, so the same
// busybox and probe always give the same bytes, hence the same image ID.
// Owners are set per entry, which GNU tar can only take from the disk.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultTag names the image when no TAG is given.
const DefaultTag = "berth-test/busybox:latest"

// FromImageText is the content of /data/from-image.txt.
const FromImageText = "from the image\n"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is every mtime and the image's creation time.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mkimage [flags] OUT.tar [TAG]")
		fs.PrintDefaults()
	}
	busybox := fs.String("busybox", envOr("BUSYBOX", "/bin/busybox"), "static busybox binary (Debian's busybox-static)")
	probe := fs.String("probe", envOr("PROBE", "bin/probe"), "static probe binary (make build)")
	cmd := fs.String("cmd", "", "the image's command, words split on spaces (default sh)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return errors.New("want OUT.tar and an optional TAG")
	}
	tag := DefaultTag
	if fs.NArg() == 2 {
		tag = fs.Arg(1)
	}
	out := fs.Arg(0)
	var buf bytes.Buffer
	if err := Build(&buf, Options{Busybox: *busybox, Probe: *probe, Tag: tag, Cmd: strings.Fields(*cmd)}); err != nil {
		return err
	}
	// Write then rename, so a failed run leaves no half archive behind.
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Options says where the binaries come from and how to tag the image.
type Options struct {
	Busybox string
	Probe   string
	Tag     string
	Cmd     []string // the image's command; nil means sh
}

// entry is one file, directory or symlink of a layer.
type entry struct {
	name     string // relative, no leading or trailing slash
	typ      byte
	mode     int64
	uid, gid int
	link     string
	data     []byte
}

// Build writes the image archive to w.
func Build(w io.Writer, o Options) error {
	l1, err := baseLayer(o.Busybox)
	if err != nil {
		return err
	}
	l2, err := probeLayer(o.Probe)
	if err != nil {
		return err
	}
	layers := [][]byte{}
	for _, l := range [][]entry{l1, l2} {
		b, err := layerTar(l)
		if err != nil {
			return err
		}
		layers = append(layers, b)
	}
	return writeArchive(w, layers, o.Tag, o.Cmd)
}

func dir(name string, mode int64, uid, gid int) entry {
	return entry{name: name, typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

const passwd = `root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
`

const group = `root:x:0:
nogroup:x:65534:
app:x:1000:app
extra:x:2000:app
`

func baseLayer(busybox string) ([]entry, error) {
	bb, err := readStatic(busybox, "busybox (apt-get install busybox-static)")
	if err != nil {
		return nil, err
	}
	// Ask this busybox for its applets rather than keep a list that
	// would drift from the Debian package.
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	es := []entry{
		dir("bin", 0o755, 0, 0),
		file("bin/busybox", 0o755, bb),
		dir("dev", 0o755, 0, 0),
		dir("etc", 0o755, 0, 0),
		file("etc/group", 0o644, []byte(group)),
		file("etc/passwd", 0o644, []byte(passwd)),
		dir("home", 0o755, 0, 0),
		dir("home/app", 0o755, 1000, 1000),
		dir("proc", 0o555, 0, 0),
		dir("root", 0o700, 0, 0),
		dir("run", 0o755, 0, 0),
		dir("sys", 0o555, 0, 0),
		dir("tmp", 0o1777, 0, 0),
	}
	seen := map[string]bool{}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || seen[a] || strings.ContainsAny(a, "/") {
			continue
		}
		seen[a] = true
		es = append(es, symlink("bin/"+a, "busybox"))
	}
	if !seen["sh"] {
		return nil, fmt.Errorf("%s has no sh applet", busybox)
	}
	return es, nil
}

func probeLayer(probe string) ([]entry, error) {
	pb, err := readStatic(probe, "probe (make build)")
	if err != nil {
		return nil, err
	}
	return []entry{
		dir("data", 0o755, 0, 0),
		file("data/from-image.txt", 0o644, []byte(FromImageText)),
		file("probe", 0o755, pb),
	}, nil
}

// readStatic reads an executable that must run in an image with no libc.
func readStatic(p, what string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not an ELF executable: %w", what, p, err)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s %s is dynamically linked; the image has no libc", what, p)
		}
	}
	return b, nil
}

// layerTar writes entries sorted by name (a parent sorts before its
// children) with fixed times and numeric owners only.
func layerTar(es []entry) ([]byte, error) {
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range es {
		if i > 0 && es[i-1].name == e.name {
			return nil, fmt.Errorf("layer lists %s twice", e.name)
		}
		h := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			Size:     int64(len(e.data)),
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if e.typ == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Image config, as the fields of the OCI/Docker image config we set.
type imageConfig struct {
	Created      string        `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runConfig     `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []historyItem `json:"history"`
}

type runConfig struct {
	Env        []string `json:"Env"`
	Cmd        []string `json:"Cmd"`
	WorkingDir string   `json:"WorkingDir"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyItem struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
	Comment   string `json:"comment,omitempty"`
}

type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeArchive lays the image out as `docker save` (before Docker 25)
// does: HEX.json config, HEX/layer.tar per layer (HEX = diff id), a
// manifest.json and a repositories file.
func writeArchive(w io.Writer, layers [][]byte, tag string, cmd []string) error {
	created := epoch.Format(time.RFC3339)
	if len(cmd) == 0 {
		cmd = []string{"sh"}
	}
	cfg := imageConfig{
		Created:      created,
		Architecture: "amd64",
		OS:           "linux",
		Config:       runConfig{Env: []string{defaultPath}, Cmd: cmd, WorkingDir: "/"},
		RootFS:       rootFS{Type: "layers"},
		History: []historyItem{
			{Created: created, CreatedBy: "mkimage: busybox-static, /etc/passwd, /etc/group", Comment: "berth test image"},
			{Created: created, CreatedBy: "mkimage: /probe, /data/from-image.txt"},
		},
	}
	files := map[string][]byte{}
	var layerNames []string
	for _, l := range layers {
		h := sha(l)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, "sha256:"+h)
		name := h + "/layer.tar"
		files[name] = l
		layerNames = append(layerNames, name)
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	cfgName := sha(cb) + ".json"
	files[cfgName] = cb
	mb, err := json.Marshal([]manifestEntry{{Config: cfgName, RepoTags: []string{tag}, Layers: layerNames}})
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	files["manifest.json"] = mb
	if repo, t, ok := splitTag(tag); ok {
		top := strings.TrimSuffix(layerNames[len(layerNames)-1], "/layer.tar")
		rb, err := json.Marshal(map[string]map[string]string{repo: {t: top}})
		if err != nil {
			return fmt.Errorf("repositories: %w", err)
		}
		files["repositories"] = rb
	}

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, n := range names {
		if d := filepath.Dir(n); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
		b := files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// splitTag splits repo:tag; a colon before the last slash is a registry
// port, not a tag.
func splitTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}
