package containerinit

import "testing"

func TestRoomForThreads(t *testing.T) {
	for _, c := range []struct {
		value string
		n     int
		want  bool
	}{
		{"1", 7, false},
		{"14", 7, false},
		{"15", 7, true},
		{"50", 7, true},
		{"50", 0, false}, // thread count unknown
		{"max", 7, true},
	} {
		if got := roomForThreads(c.value, c.n); got != c.want {
			t.Errorf("roomForThreads(%q, %d) = %v, want %v", c.value, c.n, got, c.want)
		}
	}
}

func TestThreadsCountsOwn(t *testing.T) {
	if n := (&initConfig{}).threads(); n < 1 {
		t.Errorf("threads() = %d, want at least this one", n)
	}
}
