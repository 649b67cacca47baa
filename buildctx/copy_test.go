package buildctx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCopySemantics(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a.txt":          "A",
		"b.txt":          "B",
		"tree/x":         "X",
		"tree/sub/y":     "Y",
		"tree/link":      "->x",
		"tree/emptydir/": "",
	})
	os.Chmod(filepath.Join(dir, "tree/x"), 0o751)
	os.Lchown(filepath.Join(dir, "a.txt"), 1000, 1000)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "a.txt"), old, old)
	c := openCtx(t, dir, "")
	root := t.TempDir()
	dst := openDst(t, root)

	// A file into a directory (trailing slash), parents made 0755 root's.
	copyTo(t, c, dst, "/new/parents/", CopyOptions{}, "a.txt")
	p := filepath.Join(root, "new/parents/a.txt")
	if readFile(t, p) != "A" {
		t.Error("content")
	}
	st := lstat(t, p)
	if st.Uid != 0 || st.Gid != 0 || st.Mode&0o7777 != 0o644 || st.Mtim.Sec != old.Unix() {
		t.Errorf("a.txt: uid %d gid %d mode %o mtime %d: want root's, 0644, mtime kept", st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Sec)
	}
	for _, d := range []string{"new", "new/parents"} {
		if st := lstat(t, filepath.Join(root, d)); st.Mode&0o7777 != 0o755 || st.Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want 0755 root", d, st.Mode&0o7777, st.Uid)
		}
	}
	// A file to a file name; an existing file is replaced.
	copyTo(t, c, dst, "/renamed", CopyOptions{}, "a.txt")
	copyTo(t, c, dst, "/renamed", CopyOptions{}, "b.txt")
	if readFile(t, filepath.Join(root, "renamed")) != "B" {
		t.Error("/renamed should hold b.txt")
	}
	// An existing directory without a trailing slash is copied into.
	copyTo(t, c, dst, "/new", CopyOptions{}, "b.txt")
	if readFile(t, filepath.Join(root, "new/b.txt")) != "B" {
		t.Error("/new/b.txt")
	}
	// Several sources need a directory ending in "/".
	if err := c.Copy(dst, "/multi", resolve(t, c, "a.txt", "b.txt"), CopyOptions{}); err == nil || !strings.Contains(err.Error(), "must be a directory and end with a /") {
		t.Errorf("several sources to a file: %v", err)
	}
	copyTo(t, c, dst, "/multi/", CopyOptions{}, "a.txt", "b.txt")
	if !exists(filepath.Join(root, "multi/a.txt")) || !exists(filepath.Join(root, "multi/b.txt")) {
		t.Error("/multi/ holds both")
	}
	// A wildcard with several matches copies into a directory.
	copyTo(t, c, dst, "/wild", CopyOptions{}, "*.txt")
	if !exists(filepath.Join(root, "wild/a.txt")) || !exists(filepath.Join(root, "wild/b.txt")) {
		t.Error("/wild holds both matches")
	}
	// A directory's content, not the directory itself; links stay links.
	copyTo(t, c, dst, "/app", CopyOptions{}, "tree")
	if readFile(t, filepath.Join(root, "app/x")) != "X" || readFile(t, filepath.Join(root, "app/sub/y")) != "Y" {
		t.Error("tree content")
	}
	if exists(filepath.Join(root, "app/tree")) {
		t.Error("the directory itself was copied")
	}
	if l, err := os.Readlink(filepath.Join(root, "app/link")); err != nil || l != "x" {
		t.Errorf("link: %q %v", l, err)
	}
	if st := lstat(t, filepath.Join(root, "app/x")); st.Mode&0o7777 != 0o751 {
		t.Errorf("mode of x %o", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(root, "app/emptydir")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Error("empty dir")
	}
	// A directory merges into a symlink to a directory (merged /usr),
	// which stays a symlink; a symlink to a file in the way of a
	// directory is replaced.
	writeTree(t, root, map[string]string{"usr/lib/existing": "e", "lib": "->usr/lib", "etc/conf": "->/usr/lib/existing"})
	tree2 := t.TempDir()
	writeTree(t, tree2, map[string]string{"lib/new.so": "so", "etc/conf/x": "x"})
	c2 := openCtx(t, tree2, "")
	copyTo(t, c2, dst, "/", CopyOptions{}, ".")
	if readFile(t, filepath.Join(root, "usr/lib/new.so")) != "so" || readFile(t, filepath.Join(root, "usr/lib/existing")) != "e" {
		t.Error("lib/ not merged into usr/lib")
	}
	if st := lstat(t, filepath.Join(root, "lib")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Error("the /lib symlink was replaced")
	}
	if readFile(t, filepath.Join(root, "etc/conf/x")) != "x" || readFile(t, filepath.Join(root, "usr/lib/existing")) != "e" {
		t.Error("a symlink to a file in the way of a directory")
	}
	// A file cannot replace the root.
	if err := c.Copy(dst, "/", resolve(t, c, "a.txt"), CopyOptions{}); err != nil {
		t.Errorf("a file to / goes into /: %v", err)
	}
}

func TestCopyChownChmod(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "f", "d/g": "g"})
	c := openCtx(t, dir, "")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nstaff:x:50:app\n",
	})
	dst := openDst(t, root)
	check := func(p string, uid, gid, mode uint32) {
		t.Helper()
		st := lstat(t, filepath.Join(root, p))
		if st.Uid != uid || st.Gid != gid || st.Mode&0o7777 != mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", p, st.Uid, st.Gid, st.Mode&0o7777, uid, gid, mode)
		}
	}
	copyTo(t, c, dst, "/n1", CopyOptions{Chown: "1000:1001"}, "f")
	check("n1", 1000, 1001, 0o644)
	copyTo(t, c, dst, "/n2", CopyOptions{Chown: "1234"}, "f")
	check("n2", 1234, 1234, 0o644)
	copyTo(t, c, dst, "/n3", CopyOptions{Chown: "app"}, "f")
	check("n3", 1001, 1001, 0o644)
	copyTo(t, c, dst, "/n4", CopyOptions{Chown: "app:staff", Chmod: "4750"}, "f")
	check("n4", 1001, 50, 0o4750)
	copyTo(t, c, dst, "/dir/", CopyOptions{Chown: "app:staff", Chmod: "0700"}, "d")
	check("dir", 1001, 50, 0o700)
	check("dir/g", 1001, 50, 0o700)
	for _, bad := range []CopyOptions{{Chown: "nobody"}, {Chown: "app:nogroup"}, {Chown: ":1"}, {Chmod: "9"}, {Chmod: "u+x"}, {Chmod: "17777"}} {
		if err := c.Copy(dst, "/bad", resolve(t, c, "f"), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if exists(filepath.Join(root, "bad")) {
		t.Error("a refused copy left a file")
	}
}

// COPY --from: a root filesystem as the source keeps owners and resolves
// its absolute symlinks inside itself; hard links stay links.
func TestCopyFromRoot(t *testing.T) {
	stage := t.TempDir()
	writeTree(t, stage, map[string]string{
		"usr/bin/tool": "tool",
		"bin":          "->/usr/bin",
		"data/a":       "a",
	})
	os.Lchown(filepath.Join(stage, "usr/bin/tool"), 7, 8)
	os.Link(filepath.Join(stage, "data/a"), filepath.Join(stage, "data/b"))
	c, err := OpenRoot(stage, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	root := t.TempDir()
	dst := openDst(t, root)
	copyTo(t, c, dst, "/out/", CopyOptions{}, "/bin/tool", "../../data")
	if st := lstat(t, filepath.Join(root, "out/tool")); st.Uid != 7 || st.Gid != 8 {
		t.Errorf("owner not kept: %d:%d", st.Uid, st.Gid)
	}
	a, b := lstat(t, filepath.Join(root, "out/a")), lstat(t, filepath.Join(root, "out/b"))
	if a.Ino != b.Ino {
		t.Error("hard link not kept")
	}
	d1, _ := c.Checksum(resolve(t, c, "/bin/tool"))
	os.Lchown(filepath.Join(stage, "usr/bin/tool"), 7, 9)
	if d2, _ := c.Checksum(resolve(t, c, "/bin/tool")); d1 == d2 {
		t.Error("owner change did not change the key")
	}
}

// A crafted destination root, with symlinks to the host's directories
// where the copy goes, gets everything written inside itself.
func TestCopyDestSymlinkAttack(t *testing.T) {
	host := t.TempDir() // stands for the host's /
	writeTree(t, host, map[string]string{"etc/passwd": "daemon:x:1:1::/:/bin/sh\n", "victim": "untouched"})
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"payload": "pwned", "tree/f": "pwned"})
	c := openCtx(t, dir, "")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"abs":        "->" + host,                   // absolute link to the host
		"rel":        "->../../../../../../" + host, // relative climb out
		"victim":     "->" + filepath.Join(host, "victim"),
		"etc/passwd": "->" + filepath.Join(host, "etc/passwd"),
		"dirlink":    "->" + filepath.Join(host, "etc"),
		"deep":       "->" + host,
	})
	dst := openDst(t, root)
	copyTo(t, c, dst, "/abs/etc/", CopyOptions{}, "payload")
	copyTo(t, c, dst, "/rel/etc/", CopyOptions{}, "payload")
	copyTo(t, c, dst, "/victim", CopyOptions{}, "payload")
	copyTo(t, c, dst, "/dirlink/", CopyOptions{}, "tree")
	copyTo(t, c, dst, "/abs/sub", CopyOptions{}, "tree")
	// A directory of the source meeting a symlink of the root.
	deep := t.TempDir()
	writeTree(t, deep, map[string]string{"deep/etc/f2": "pwned", "dirlink/f3": "pwned"})
	cd := openCtx(t, deep, "")
	copyTo(t, cd, dst, "/", CopyOptions{}, ".")
	if err := c.Copy(dst, "/n", resolve(t, c, "payload"), CopyOptions{Chown: "daemon"}); err == nil || !strings.Contains(err.Error(), "unable to find user daemon") {
		t.Errorf("chown read a passwd outside the root? %v", err)
	}
	if got := readFile(t, filepath.Join(host, "victim")); got != "untouched" {
		t.Errorf("host victim overwritten: %q", got)
	}
	var found []string
	filepath.Walk(host, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 2 {
		t.Errorf("files appeared on the host side: %v", found)
	}
	// The writes landed inside the root, where the links lead when read
	// with the root as "/".
	for _, p := range []string{host + "/etc/payload", host + "/etc/f", host + "/sub/f", host + "/etc/f2", host + "/etc/f3"} {
		if readFile(t, filepath.Join(root, p)) != "pwned" {
			t.Errorf("%s missing inside the root", p)
		}
	}
	if st := lstat(t, filepath.Join(root, "victim")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Error("the link at /victim should be replaced by the file")
	}
}

// A device node where a file goes is replaced, never opened or written.
func TestCopyReplacesDevice(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "data"})
	c := openCtx(t, dir, "")
	root := t.TempDir()
	if err := unix.Mknod(filepath.Join(root, "dev0"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	dst := openDst(t, root)
	copyTo(t, c, dst, "/dev0", CopyOptions{}, "f")
	copyTo(t, c, dst, "/fifo", CopyOptions{}, "f") // would block if opened
	for _, p := range []string{"dev0", "fifo"} {
		if readFile(t, filepath.Join(root, p)) != "data" {
			t.Errorf("%s not replaced", p)
		}
	}
}

// Extended attributes travel with a copy, file capabilities too, even
// with --chown (chown drops capabilities, so they are set after it); a
// change to them changes the checksum.
func TestCopyXattrs(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ping": "binary"})
	p := filepath.Join(dir, "ping")
	if err := unix.Setxattr(p, "user.berth", []byte("v1"), 0); err != nil {
		t.Fatalf("user xattrs on %s: %v", dir, err)
	}
	// vfs_cap_data v2, effective, permitted cap_net_raw (13).
	capNetRaw := []byte{0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(p, "security.capability", capNetRaw, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * racyWindow)
	c := openCtx(t, dir, "")
	sum1 := checksum(t, c, "ping")
	root := t.TempDir()
	copyTo(t, c, openDst(t, root), "/bin/", CopyOptions{Chown: "1000:1000"}, "ping")
	get := func(name string) string {
		buf := make([]byte, 64)
		n, err := unix.Getxattr(filepath.Join(root, "bin/ping"), name, buf)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(buf[:n])
	}
	if got := get("user.berth"); got != "v1" {
		t.Errorf("user.berth = %q", got)
	}
	if got := get("security.capability"); got != string(capNetRaw) {
		t.Errorf("security.capability = %q, want %q", got, capNetRaw)
	}
	if st := lstat(t, filepath.Join(root, "bin/ping")); st.Uid != 1000 {
		t.Errorf("uid %d", st.Uid)
	}
	unix.Setxattr(p, "user.berth", []byte("v2"), 0)
	if checksum(t, c, "ping") == sum1 {
		t.Error("an xattr change did not change the checksum")
	}
}

// COPY --exclude: patterns below a directory source (with "!"
// exceptions), and against a file source's name.
func TestCopyExclude(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"src/a.go": "a", "src/a_test.go": "t", "src/notes.txt": "n", "src/keep.txt": "k",
		"src/vendor/x.go": "x", "src/vendor/x.txt": "xt",
		"home.txt": "h", "home.md": "m",
	})
	c := openCtx(t, dir, "")
	srcs, err := c.ResolveExclude("COPY", []string{"src", "hom*"}, []string{"*_test.go", "*.txt", "!keep.txt", "vendor", "!vendor/*.go"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rels(srcs); strings.Join(got, ",") != "src,home.md" {
		t.Errorf("sources %v: home.txt should be excluded", got)
	}
	all := resolve(t, c, "src", "hom*")
	sumAll, _ := c.Checksum(all)
	sumEx, err := c.Checksum(srcs)
	if err != nil || sumAll == sumEx {
		t.Errorf("--exclude should change the key: %v", err)
	}
	root := t.TempDir()
	if err := c.Copy(openDst(t, root), "/out/", srcs, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			r, _ := filepath.Rel(root, p)
			got = append(got, r)
		}
		return nil
	})
	if want := "out/a.go,out/home.md,out/keep.txt,out/vendor/x.go"; strings.Join(got, ",") != want {
		t.Errorf("copied %v, want %s", got, want)
	}
	if _, err := c.ResolveExclude("COPY", []string{"src"}, []string{"["}); err == nil {
		t.Error("a bad --exclude pattern accepted")
	}
}

// COPY <<EOF: heredoc files.
func TestCopyInline(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/passwd": "app:x:10:20::/:/bin/sh\n", "existing/": "", "evil": "->/"})
	dst := openDst(t, root)
	if err := CopyInline(dst, "/conf.txt", []Inline{{Name: "EOF", Data: []byte("one\n")}}, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(root, "conf.txt")) != "one\n" {
		t.Error("/conf.txt")
	}
	if st := lstat(t, filepath.Join(root, "conf.txt")); st.Mode&0o7777 != 0o644 || st.Uid != 0 {
		t.Errorf("mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	if err := CopyInline(dst, "/existing", []Inline{{Name: "A", Data: []byte("a")}, {Name: "B", Data: []byte("b")}}, CopyOptions{Chown: "app", Chmod: "600"}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(root, "existing/B")); st.Mode&0o7777 != 0o600 || st.Uid != 10 {
		t.Errorf("existing/B: mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	if err := CopyInline(dst, "/evil/x/", []Inline{{Name: "f", Data: []byte("f")}}, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(root, "x/f")) {
		t.Error("/evil/x/f should land at the root's /x/f")
	}
	if err := CopyInline(dst, "/d/", []Inline{{Name: "..", Data: nil}}, CopyOptions{}); err == nil {
		t.Error("a heredoc named .. accepted")
	}
}

// COPY --parents keeps the sources' paths, or their part after a "/./".
func TestCopyParents(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"x/y/z.txt": "z", "x/y/w.txt": "w", "a/b/dir/f": "f"})
	c := openCtx(t, dir, "")
	root := t.TempDir()
	dst := openDst(t, root)
	copyTo(t, c, dst, "/p/", CopyOptions{Parents: true}, "x/y/*.txt", "a/b/dir")
	copyTo(t, c, dst, "/q/", CopyOptions{Parents: true}, "./x/./y/z.txt", "a/./b/dir")
	for _, p := range []string{"p/x/y/z.txt", "p/x/y/w.txt", "p/a/b/dir/f", "q/y/z.txt", "q/b/dir/f"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s missing", p)
		}
	}
}

// A device node swapped in for a source file after the walk saw a
// regular file is refused without being opened: no driver sees an open
// (watched by inotify, which reports every successful open of the node).
func TestCopySourceDeviceNeverOpened(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "data"})
	c := openCtx(t, dir, "")
	if !c.nodev {
		t.Log("no nodev mount here: the /proc reopen path is tested")
	}
	// Through the context's own handle, as the walk reaches it.
	cfd, err := unix.Openat(int(c.root.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	n := &node{rel: "f", sub: "f", dirfd: cfd, name: "f", self: -1}
	if err := unix.Fstatat(cfd, "f", &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	// The swap: /dev/null's numbers where the file was.
	if err := os.Remove(filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "f"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, filepath.Join(dir, "f"), unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	a, err := prepareAttrs(openDst(t, root), CopyOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	links := &hardlinks{m: map[[2]uint64]int{}}
	defer links.close()
	if err := c.copyNode(rfd, "f", n, a, links); err == nil {
		t.Error("a device in place of the source was copied")
	}
	buf := make([]byte, 4096)
	if k, err := unix.Read(in, buf); err == nil && k > 0 {
		t.Errorf("the device node was opened (%d bytes of inotify events)", k)
	} else if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read inotify: %v", err)
	}
	_, _ = c.Checksum(resolve(t, c, "f")) // stat'ed as a device: hashed by its numbers, never opened
	if k, err := unix.Read(in, buf); err == nil && k > 0 {
		t.Errorf("the checksum opened the device node")
	}
}

// Files created with their final mode when the umask keeps it whole, and
// left unchowned when they are ours, still end up with exactly the
// source's mode and root's owner: a mode the umask would narrow, set-id
// bits, and a set-group-ID destination directory (whose group a new
// file would take) are all handled.
func TestCopyModesAndOwnersExact(t *testing.T) {
	dir := t.TempDir()
	modes := map[string]uint32{"rw": 0o666, "plain": 0o644, "exec": 0o755, "suid": 0o4755, "none": 0o000}
	for name, m := range modes {
		p := filepath.Join(dir, "src", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, os.FileMode(m&0o777)|map[bool]os.FileMode{true: os.ModeSetuid}[m&0o4000 != 0]); err != nil {
			t.Fatal(err)
		}
	}
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	c := openCtx(t, dir, "")
	root := t.TempDir()
	sg := filepath.Join(root, "sg")
	if err := os.Mkdir(sg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sg, 0, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sg, 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	dst := openDst(t, root)
	copyTo(t, c, dst, "/plain/", CopyOptions{}, "src")
	copyTo(t, c, dst, "/sg/", CopyOptions{}, "src")
	copyTo(t, c, dst, "/sg/deep/", CopyOptions{}, "src")
	for _, d := range []string{"plain", "sg", "sg/deep"} {
		for name, m := range modes {
			st := lstat(t, filepath.Join(root, d, name))
			if st.Mode&0o7777 != m {
				t.Errorf("%s/%s: mode %o, want %o", d, name, st.Mode&0o7777, m)
			}
			if st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s/%s: owner %d:%d, want 0:0", d, name, st.Uid, st.Gid)
			}
		}
	}
}
