package hostcg

import "testing"

func TestParseMountinfo(t *testing.T) {
	mp, fs, opts, ok := parseMountinfoLine(`32 31 0:29 / /sys/fs/cgroup/cpu\040x rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct`)
	if !ok || mp != "/sys/fs/cgroup/cpu x" || fs != "cgroup" || opts != "rw,cpu,cpuacct" {
		t.Fatalf("got %q %q %q %v", mp, fs, opts, ok)
	}
	if _, _, _, ok := parseMountinfoLine("garbage"); ok {
		t.Fatal("parsed garbage")
	}
}
