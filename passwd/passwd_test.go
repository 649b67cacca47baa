package passwd

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const passwdFile = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
bad:x:notanumber:1::/:/bin/sh
short:x:5
1234:x:2000:2000::/home/numname:/bin/sh
nohome:x:3000:3000:::/bin/sh
`

const groupFile = `root:x:0:root
wheel:x:10:root,app
audio:x:29:app
staff:x:50:
app:x:1000:
video:x:44: daemon , app
brokengid:x:zz:app
`

func mkroot(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if group != "" {
		if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte(group), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookup(t *testing.T) {
	root := mkroot(t, passwdFile, groupFile)
	tests := []struct {
		user   string
		extra  []string
		uid    uint32
		gid    uint32
		groups []uint32
		home   string
	}{
		{"", nil, 0, 0, []uint32{0, 10}, "/root"},
		{"root", nil, 0, 0, []uint32{0, 10}, "/root"},
		{"0", nil, 0, 0, []uint32{0, 10}, "/root"},
		{"app", nil, 1000, 1000, []uint32{10, 29, 44}, "/home/app"},
		{"1000", nil, 1000, 1000, []uint32{10, 29, 44}, "/home/app"},
		{"daemon", nil, 1, 1, []uint32{44}, "/usr/sbin"},
		// An explicit group replaces the primary gid and, as runc, the
		// supplementary groups of /etc/group.
		{"app:staff", nil, 1000, 50, nil, "/home/app"},
		{"app:77", nil, 1000, 77, nil, "/home/app"},
		{"1000:audio", nil, 1000, 29, nil, "/home/app"},
		// Numeric ids need no entry.
		{"4242", nil, 4242, 0, nil, "/"},
		{"4242:4343", nil, 4242, 4343, nil, "/"},
		{"4242:wheel", nil, 4242, 10, nil, "/"},
		// A name that looks like a number is matched by name first.
		{"1234", nil, 2000, 2000, nil, "/home/numname"},
		{"nohome", nil, 3000, 3000, nil, "/"},
		// --group-add: names and numbers, no duplicates.
		{"app", []string{"staff", "99", "wheel"}, 1000, 1000, []uint32{10, 29, 44, 50, 99}, "/home/app"},
		{"4242", []string{"audio"}, 4242, 0, []uint32{29}, "/"},
	}
	for _, tt := range tests {
		uid, gid, groups, home, err := Lookup(root, tt.user, tt.extra)
		if err != nil {
			t.Errorf("Lookup(%q, %v): %v", tt.user, tt.extra, err)
			continue
		}
		if uid != tt.uid || gid != tt.gid || home != tt.home || !reflect.DeepEqual(groups, tt.groups) {
			t.Errorf("Lookup(%q, %v) = %d, %d, %v, %q; want %d, %d, %v, %q",
				tt.user, tt.extra, uid, gid, groups, home, tt.uid, tt.gid, tt.groups, tt.home)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	root := mkroot(t, passwdFile, groupFile)
	tests := []struct {
		user  string
		extra []string
		want  string
	}{
		{"nobody", nil, "unable to find user nobody"},
		{"app:nogroup", nil, "unable to find group nogroup"},
		{"app:", nil, "empty group"},
		{":10", nil, "empty user name"},
		{"4294967296", nil, "out of range"},
		{"2147483648", nil, "out of range"},
		{"app:99999999999", nil, "out of range"},
		{"app", []string{"nogroup"}, "unable to find group nogroup"},
		{"app", []string{"brokengid"}, "unable to find group brokengid"},
	}
	for _, tt := range tests {
		_, _, _, _, err := Lookup(root, tt.user, tt.extra)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Lookup(%q, %v) error = %v, want it to contain %q", tt.user, tt.extra, err, tt.want)
		}
	}
}

func TestLookupNoFiles(t *testing.T) {
	root := t.TempDir()
	uid, gid, groups, home, err := Lookup(root, "", nil)
	if err != nil || uid != 0 || gid != 0 || groups != nil || home != "/" {
		t.Errorf("empty root, default user: %d %d %v %q %v", uid, gid, groups, home, err)
	}
	uid, gid, _, _, err = Lookup(root, "33:44", []string{"5"})
	if err != nil || uid != 33 || gid != 44 {
		t.Errorf("empty root, 33:44: %d %d %v", uid, gid, err)
	}
	if _, _, _, _, err := Lookup(root, "www", nil); err == nil {
		t.Error("a user name without /etc/passwd should fail")
	}
	if _, _, _, _, err := Lookup(root, "0:www", nil); err == nil {
		t.Error("a group name without /etc/group should fail")
	}
}

// Symlinks in the image are resolved inside the root: an absolute link
// or a ../ chain must not reach the host's files.
func TestLookupSymlinkStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:0:0::/evil:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		filepath.Join(outside, "passwd"),
		"../../../../../../../../" + strings.TrimPrefix(filepath.Join(outside, "passwd"), "/"),
	} {
		root := mkroot(t, "", "")
		if err := os.Symlink(target, filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := Lookup(root, "evil", nil); err == nil {
			t.Errorf("symlink %s: the host's passwd was read", target)
		}
		// The same path inside the root is what the link means.
		inRoot := filepath.Join(root, outside)
		if err := os.MkdirAll(inRoot, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(inRoot, "passwd"), []byte("good:x:7:8::/good:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		uid, gid, _, home, err := Lookup(root, "good", nil)
		if err != nil || uid != 7 || gid != 8 || home != "/good" {
			t.Errorf("symlink %s: in-root target: %d %d %q %v", target, uid, gid, home, err)
		}
	}
}

func TestLookupNotRegular(t *testing.T) {
	root := mkroot(t, "", "")
	if err := syscall.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if _, _, _, _, err := Lookup(root, "app", nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO /etc/passwd: err = %v", err)
	}
	root = mkroot(t, "", "")
	if err := os.Mkdir(filepath.Join(root, "etc/passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := Lookup(root, "app", nil); err == nil {
		t.Error("a directory /etc/passwd should fail")
	}
}

func TestHomeOf(t *testing.T) {
	db := []byte("# comment\nroot:x:0:0:root:/root:/bin/sh\n\nnohome:x:7:7:::/bin/sh\nbad:x:abc:1::/bad:/bin/sh\nshort:x:9:9:/short\nu:x:1000:1000:U:/home/u:/bin/sh\n")
	for uid, want := range map[uint32]string{0: "/root", 1000: "/home/u", 7: "/", 9: "/", 42: "/"} {
		if got := HomeOf(db, uid); got != want {
			t.Errorf("HomeOf(%d) = %q, want %q", uid, got, want)
		}
	}
	if got := HomeOf(nil, 0); got != "/" {
		t.Errorf("HomeOf(no file) = %q", got)
	}
}

func TestWithHome(t *testing.T) {
	env := []string{"PATH=/bin", "HOMEDIR=/x"}
	got := WithHome(env, "/root")
	if len(got) != 3 || got[2] != "HOME=/root" {
		t.Errorf("WithHome added %v", got)
	}
	if len(env) != 2 {
		t.Errorf("WithHome changed its input: %v", env)
	}
	set := []string{"HOME=/mine"}
	if got := WithHome(set, "/root"); len(got) != 1 || got[0] != "HOME=/mine" {
		t.Errorf("WithHome overrode HOME: %v", got)
	}
	if got := WithHome([]string{"HOME="}, "/root"); len(got) != 1 {
		t.Errorf("an empty HOME is a set HOME: %v", got)
	}
}

// HomeOf (the runtime's) and Lookup (the CLI's) agree on HOME for a uid.
func TestHomeOfAgreesWithLookup(t *testing.T) {
	pw := "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nnohome:x:7:7:::/bin/sh\n"
	root := mkroot(t, pw, "root:x:0:\n")
	for _, uid := range []uint32{0, 1000, 7, 55} {
		_, _, _, home, err := Lookup(root, strconv.Itoa(int(uid)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := HomeOf([]byte(pw), uid); got != home {
			t.Errorf("uid %d: HomeOf %q, Lookup %q", uid, got, home)
		}
	}
}
