package runtime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/seccomp"
)

func TestSeccompProgramTravels(t *testing.T) {
	f, err := seccomp.Prepare(seccomp.DefaultProfile(DefaultCaps))
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := f.Program()
	in := initproto.Config{Seccomp: prog, Spec: &specs.Spec{}}
	b, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out initproto.Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]unix.SockFilter(out.Seccomp), prog) {
		t.Fatalf("program changed on the way: %d instructions in, %d out", len(prog), len(out.Seccomp))
	}
	if len(b) > 10*len(prog)+1024 {
		t.Errorf("config of %d bytes for %d instructions: not the compact form", len(b), len(prog))
	}
	var bad initproto.Config
	err = json.Unmarshal([]byte(`{"seccomp":"AAAA"}`), &bad)
	if err == nil || !strings.Contains(err.Error(), "whole instructions") {
		t.Errorf("a 3-byte program: %v", err)
	}
}
