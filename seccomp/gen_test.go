package seccomp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// TestGeneratedTablesUpToDate regenerates the syscall tables and compares
// them with the committed file.
func TestGeneratedTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool")
	}
	out := filepath.Join(t.TempDir(), "z.go")
	cmd := exec.Command("go", "run", "./internal/mksyscalls", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("generator unavailable: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zsyscalls_linux.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("zsyscalls_linux.go is stale: run go generate ./seccomp/")
	}
}

func TestUnknownNameLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	oldOut, oldLevel := logrus.StandardLogger().Out, logrus.GetLevel()
	logrus.SetOutput(&buf)
	logrus.SetLevel(logrus.DebugLevel)
	defer func() {
		logrus.SetOutput(oldOut)
		logrus.SetLevel(oldLevel)
	}()
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"definitely_not_a_syscall", "getpid"}, Action: specs.ActErrno},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "definitely_not_a_syscall") || strings.Contains(buf.String(), `"getpid"`) {
		t.Fatalf("debug log: %q", buf.String())
	}
}
