package main

import (
	"reflect"
	"testing"
)

func TestRerunArgs(t *testing.T) {
	for _, tc := range []struct {
		cmd, want []string
	}{
		{[]string{"/b", "--root", "/r", "run", "-d", "--rm", "--name", "web", "-e", "A=1", "img", "sh", "-c", "x -d"},
			[]string{"-e", "A=1", "img", "sh", "-c", "x -d"}},
		{[]string{"/b", "container", "create", "-dit", "--name=w", "-dp", "80:80", "--sdnotify=container", "--restart", "always", "img"},
			[]string{"-p", "80:80", "img"}},
		{[]string{"/b", "create", "--cgroups", "split", "-v", "/a:/b", "--init", "img", "--", "--rm"},
			[]string{"-v", "/a:/b", "--init", "img", "--", "--rm"}},
		{[]string{"/b", "run", "--cidfile", "/run/x.cid", "--device", "/dev/kmsg:r", "--cpu-quota=5000", "img"},
			[]string{"--device", "/dev/kmsg:r", "--cpu-quota=5000", "img"}},
	} {
		got, err := rerunArgs(tc.cmd)
		if err != nil {
			t.Errorf("%q: %v", tc.cmd, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rerunArgs(%q) = %q, want %q", tc.cmd, got, tc.want)
		}
	}
	for _, bad := range [][]string{nil, {"/b"}, {"/b", "ps"}} {
		if _, err := rerunArgs(bad); err == nil {
			t.Errorf("rerunArgs(%q) took it", bad)
		}
	}
}
