package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-project/berth/internal/liveness"
)

func TestValidateID(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "-x", "_x", ".x", "+x", "a b", "x\n", "a:b", "é", "aé"} {
		if ValidateID(bad) == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
	for _, good := range []string{"a", "web-1", "A.b_c+d", "0123456789abcdef"} {
		if err := ValidateID(good); err != nil {
			t.Errorf("ValidateID(%q): %v", good, err)
		}
	}
}

func TestCreateSaveLoadList(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Create("c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&Container{ID: "c1", Bundle: "/b", Pid: 42}); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if _, err := s.Create("c1"); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate create: got %v, want ErrExist", err)
	}
	c, err := s.Load("c1")
	if err != nil || c.Bundle != "/b" || c.Pid != 42 {
		t.Fatalf("Load: %+v %v", c, err)
	}
	if err := os.Mkdir(filepath.Join(s.Root, "norecord"), 0o700); err != nil {
		t.Fatal(err)
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Fatalf("List: %v %v", ids, err)
	}
	if _, err := s.Load("nope"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load missing: %v", err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir("c1")); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestAliveSelf(t *testing.T) {
	start, zombie, err := liveness.StartTime(os.Getpid())
	if err != nil || zombie || start == 0 {
		t.Fatalf("StartTime(self) = %d %v %v", start, zombie, err)
	}
	c := &Container{Pid: os.Getpid(), PidStart: start}
	if !c.Alive() {
		t.Fatal("self not alive")
	}
	c.PidStart++
	if c.Alive() {
		t.Fatal("a different start time must not count as alive")
	}
}
