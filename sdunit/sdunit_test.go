package sdunit

import (
	"strings"
	"testing"
)

func TestCommandQuoting(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"/bin/berth", "run", "img"}, "/bin/berth run img"},
		{[]string{"sh", "-c", "echo $HOME 50%"}, `sh -c "echo $$HOME 50%%"`},
		{[]string{"a b", `q"x`, `back\slash`, "", ";"}, `"a b" "q\"x" "back\\slash" "" ";"`},
		{[]string{"line\nbreak"}, `"line\nbreak"`},
	} {
		if got := Command(tc.words); got != tc.want {
			t.Errorf("Command(%q) = %s, want %s", tc.words, got, tc.want)
		}
	}
}

func TestUnitNew(t *testing.T) {
	u, err := Unit(Options{Container: "web", Unit: "container-web.service", Berth: "/usr/bin/berth",
		Global: []string{"--root", "/run/b"}, Restart: "on-failure", StopTimeout: 10, New: true,
		RunArgs: []string{"-e", "A=1", "busybox", "sh", "-c", "echo $A"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStartPre=-/usr/bin/berth --root /run/b rm -f web\n",
		`ExecStart=/usr/bin/berth --root /run/b run --rm --sdnotify=conmon --name web -e A=1 busybox sh -c "echo $$A"` + "\n",
		"Type=notify\n", "NotifyAccess=main\n", "KillMode=mixed\n", "SuccessExitStatus=143\n",
		"Restart=on-failure\n", "TimeoutStopSec=70\n", "WantedBy=default.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(u, "PIDFile=") || strings.Contains(u, "forking") {
		t.Errorf("a --new unit is Type=notify only:\n%s", u)
	}
}

func TestUnitExisting(t *testing.T) {
	o := Options{Container: "abc", Unit: "container-abc.service", Berth: "/usr/bin/berth", Restart: "always", StopTimeout: 5}
	if _, err := Unit(o); err == nil || !strings.Contains(err.Error(), "--pid-file") {
		t.Fatalf("a container without a pid file: %v, want an error naming --pid-file", err)
	}
	o.PIDFile = "/run/abc.pid"
	u, err := Unit(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/bin/berth start abc\n", "ExecStop=/usr/bin/berth stop -t 5 abc\n",
		"PIDFile=/run/abc.pid\n", "Type=forking\n", "Restart=always\n", "TimeoutStopSec=65\n",
		"KillMode=mixed\n", "SuccessExitStatus=143\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
}

func TestUnitRefuses(t *testing.T) {
	if _, err := Unit(Options{Berth: "/b", Restart: "sometimes", New: true}); err == nil {
		t.Error("restart policy sometimes accepted")
	}
	if _, err := Unit(Options{Berth: "berth", Restart: "no", New: true}); err == nil {
		t.Error("a relative berth path accepted")
	}
}
