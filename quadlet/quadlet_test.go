package quadlet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	f, err := Parse(strings.NewReader("# c\n[Unit]\nDescription = a  b \n; c\n[Container]\nExec=sh \\\n  -c \\\n# skipped\n  x\nVolume=/a:/b\nVolume=/c:/d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sections) != 2 || f.Sections[0].Name != "Unit" || f.Sections[0].Entries[0] != (Entry{"Description", "a  b", 3}) {
		t.Fatalf("parsed %+v", f.Sections)
	}
	c := f.Section("Container")
	want := []Entry{{"Exec", "sh  -c  x", 6}, {"Volume", "/a:/b", 10}, {"Volume", "/c:/d", 11}}
	if !reflect.DeepEqual(c.Entries, want) {
		t.Errorf("container entries %+v, want %+v", c.Entries, want)
	}
	for _, bad := range []string{"Key=v\n", "[Unit\n", "[Unit]\nnovalue\n", "[Unit]\n=v\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) took it", bad)
		}
	}
}

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a "b c" 'd "e"' f\ g h\\i`: {"a", "b c", `d "e"`, "f g", `h\i`},
		`  `:                        nil,
		`A="x y"z`:                  {"A=x yz"},
	} {
		got, err := Words(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Words(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"open`, `end\`} {
		if _, err := Words(bad); err == nil {
			t.Errorf("Words(%q) took it", bad)
		}
	}
}

func convert(t *testing.T, text string) (*Unit, []string, error) {
	t.Helper()
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var warns []string
	u, err := Convert("web", "/etc/containers/systemd/web.container", f, "/usr/bin/berth", func(s string) { warns = append(warns, s) })
	return u, warns, err
}

func TestConvert(t *testing.T) {
	u, warns, err := convert(t, `[Unit]
Description=web
[Container]
Image=busybox
ContainerName=web-%i
Exec=sh -c "echo $HOME; sleep 1"
Volume=/srv:/srv:ro
PublishPort=127.0.0.1:8080:80
Network=none
Environment=A=1 "B=two words"
EnvironmentFile=/etc/web.env
Label=tier=front
Notify=yes
BerthArgs=--init --memory 64m
GlobalArgs=--root /run/x
Frobnicate=1
[Service]
Restart=always
TimeoutStopSec=30
[Install]
WantedBy=multi-user.target default.target
RequiredBy=x.target
[Weird]
a=b
`)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "web.service" || !reflect.DeepEqual(u.Wants, []string{"multi-user.target", "default.target"}) || !reflect.DeepEqual(u.Requires, []string{"x.target"}) {
		t.Errorf("unit %s wants %v requires %v", u.Name, u.Wants, u.Requires)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "Frobnicate") || !strings.Contains(warns[1], "[Weird]") {
		t.Errorf("warnings %q", warns)
	}
	for _, line := range []string{
		"[Unit]\nDescription=web\nSourcePath=/etc/containers/systemd/web.container\nWants=network-online.target\nAfter=network-online.target\n",
		"[Service]\nRestart=always\nTimeoutStopSec=30\nType=notify\nKillMode=mixed\nDelegate=yes\nSyslogIdentifier=%N\nNotifyAccess=main\n",
		"\nExecStartPre=-/usr/bin/berth --root /run/x rm -f web-%i\n",
		"\nExecStart=/usr/bin/berth --root /run/x run --rm --name web-%i --cgroups=split --sdnotify=container --volume /srv:/srv:ro --publish 127.0.0.1:8080:80 --network none --env A=1 --env \"B=two words\" --env-file /etc/web.env --label tier=front --init --memory 64m busybox sh -c \"echo $$HOME; sleep 1\"\n",
		"\nExecStop=-/usr/bin/berth --root /run/x stop web-%i\n",
		"\nExecStopPost=-/usr/bin/berth --root /run/x rm -f web-%i\nSuccessExitStatus=143\n",
		"\n[Install]\nWantedBy=multi-user.target default.target\nRequiredBy=x.target\n",
		"[X-Container]\nImage=busybox\n",
	} {
		if !strings.Contains(u.Text, line) {
			t.Errorf("unit lacks\n%s\nunit:\n%s", line, u.Text)
		}
	}
	if strings.Contains(u.Text, "[Weird]") {
		t.Errorf("unknown section passed through:\n%s", u.Text)
	}
	// Without Notify, berth says READY=1 itself once the container runs;
	// the default name is Quadlet's.
	u, _, err = convert(t, "[Container]\nImage=busybox\n")
	if err != nil || !strings.Contains(u.Text, "run --rm --name systemd-%N --cgroups=split --sdnotify=conmon busybox\n") {
		t.Errorf("minimal: %v\n%v", err, u)
	}
}

// The health keys become run's flags, and Notify=healthy its
// --sdnotify=healthy (berth in the foreground sends READY=1).
func TestConvertHealth(t *testing.T) {
	u, _, err := convert(t, "[Container]\nImage=a\nNotify=healthy\nHealthCmd=test -e /ok\nHealthInterval=5s\nHealthRetries=2\nHealthOnFailure=kill\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u.Text, "--sdnotify=healthy --health-cmd \"test -e /ok\" --health-interval 5s --health-retries 2 --health-on-failure kill a\n") ||
		!strings.Contains(u.Text, "NotifyAccess=main\n") {
		t.Errorf("unit:\n%s", u.Text)
	}
}

func TestConvertRefuses(t *testing.T) {
	for text, want := range map[string]string{
		"[Container]\nImage=a\nNotify=healthy\n[Service]\nType=exec\n": "Type=notify",
		"[Container]\nImage=a\nNotify=maybe\n":                         "want true or false",
		"[Container]\nExec=true\n":                                     "no Image=",
		"[Unit]\nDescription=x\n":                                      "no [Container]",
		"[Container]\nImage=a\n[Service]\nExecStart=/bin/true\n":       "generator's",
		"[Container]\nImage=a\n[Service]\nKillMode=process\n":          "KillMode=process",
		"[Container]\nImage=a\nNotify=true\n[Service]\nType=simple\n":  "Type=notify",
		"[Container]\nImage=a\nExec=\"open\n":                          "unterminated",
	} {
		_, _, err := convert(t, text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one about %q", text, err, want)
		}
	}
}

func TestGenerate(t *testing.T) {
	in1, in2, out := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(in1, "a.container", "[Container]\nImage=one\n[Install]\nWantedBy=multi-user.target\n")
	write(in2, "a.container", "[Container]\nImage=two\n")
	write(in2, "b.container", "[Container]\nImage=b\nNotify=maybe\n")
	write(in2, "c.container", "[Container]\nImage=c\nOdd=1\n")
	write(in2, "notes.txt", "ignored")
	var log strings.Builder
	err := Generate([]string{in1, in2, filepath.Join(in1, "missing")}, out, "/usr/bin/berth", &log)
	if err == nil || !strings.Contains(err.Error(), "1 .container") {
		t.Errorf("Generate: %v, want one file failed", err)
	}
	a, _ := os.ReadFile(filepath.Join(out, "a.service"))
	if !strings.Contains(string(a), " one\n") {
		t.Errorf("a.service is not the first directory's:\n%s", a)
	}
	if l, err := os.Readlink(filepath.Join(out, "multi-user.target.wants", "a.service")); err != nil || l != "../a.service" {
		t.Errorf("wants link: %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(out, "b.service")); err == nil {
		t.Error("b.service written despite Notify=maybe")
	}
	if _, err := os.Stat(filepath.Join(out, "c.service")); err != nil {
		t.Errorf("c.service (an unknown key only) not written: %v", err)
	}
	for _, want := range []string{"b.container: line 3: Notify=: \"maybe\": want true or false", "c.container: warning: line 3: unknown key Odd=", "a.container: skipped"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}
