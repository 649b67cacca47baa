package notifymsg

import "testing"

func TestRewrite(t *testing.T) {
	cases := map[string]string{
		"READY=1":                                "READY=1\nMAINPID=42\n",
		"READY=1\nMAINPID=1\n":                   "READY=1\nMAINPID=42\n",
		"STATUS=up\nEXTEND_TIMEOUT_USEC=5000000": "STATUS=up\nEXTEND_TIMEOUT_USEC=5000000\nMAINPID=42\n",
		"\n\nWATCHDOG=1\n\n":                     "WATCHDOG=1\nMAINPID=42\n",
		"":                                       "",
		"MAINPID=7\n":                            "",
	}
	for in, want := range cases {
		if got := string(Rewrite([]byte("x"), []byte(in), 42)); got != "x"+want {
			t.Errorf("Rewrite(%q) = %q, want %q", in, got, "x"+want)
		}
	}
	if got := string(Rewrite(nil, []byte("READY=1"), 0)); got != "READY=1\nMAINPID=0\n" {
		t.Errorf("pid 0: %q", got)
	}
}
