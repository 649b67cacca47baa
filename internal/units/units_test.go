package units

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "10b": 10, "1k": 1024, "1K": 1024, "1kb": 1024, "1KiB": 1024,
		"64m": 64 << 20, "64MB": 64 << 20, "2g": 2 << 30, "1.5g": 3 << 29, "1 gb": 1 << 30, "1t": 1 << 40,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1", "1x", "1.2.3m", ".5m", "1e3", "1ib", "10000000p", "1mm"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) should fail", in)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{"-1": -1, " -1 ": -1, "1.5g": 3 << 29, "512k": 512 << 10} {
		if got, err := ParseLimit(in); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-2", "-1m", ""} {
		if _, err := ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) should fail", in)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 1500000: "1.5MB", 7.25e9: "7.25GB", 3e15: "3PB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBytesSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1KiB", 3 << 19: "1.5MiB", 2 << 30: "2GiB", 2048 << 40: "2048TiB"} {
		if got := BytesSize(n); got != want {
			t.Errorf("BytesSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "Less than a second", time.Second: "1 second", 30 * time.Second: "30 seconds",
		90 * time.Second: "About a minute", 5 * time.Minute: "5 minutes", 50 * time.Minute: "50 minutes",
		65 * time.Minute: "About an hour", 5 * time.Hour: "5 hours", 72 * time.Hour: "3 days",
		21 * 24 * time.Hour: "3 weeks", 90 * 24 * time.Hour: "3 months", 3 * 365 * 24 * time.Hour: "3 years",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := Ago(time.Time{}); got != "N/A" {
		t.Errorf("Ago(zero) = %q, want N/A", got)
	}
	if got := Ago(time.Now().Add(-3 * time.Hour)); got != "3 hours ago" {
		t.Errorf("Ago(3h) = %q", got)
	}
}
