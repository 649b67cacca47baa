package leanproc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

func TestParseHex(t *testing.T) {
	for _, s := range []string{"0", "00400000", "7ffd46c23000", "ffffffffff600000", "deadbeef"} {
		want, _ := strconv.ParseUint(s, 16, 64)
		if got := parseHex(s); got != want {
			t.Errorf("parseHex(%q) = %#x, want %#x", s, got, want)
		}
	}
	if got := parseHex("12g4"); got != 0 {
		t.Errorf("parseHex(12g4) = %#x, want 0", got)
	}
}

func TestReadFileGrowsPastBuf(t *testing.T) {
	want, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 3, 4096} {
		got, err := ReadFile("/proc/self/cmdline", make([]byte, size))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("buf of %d: %q, %v; want %q", size, got, err, want)
		}
	}
	if _, err := ReadFile("/nonexistent", nil); err == nil {
		t.Error("ReadFile of a missing file did not fail")
	}
}

// TrimText must take the program's read-only data out of the page
// tables: every page of it is mapped first, then counted after the trim.
// The runtime's other threads (a GC cycle walks the pcln tables) can
// fault pages back in between the trim and the count, so the collector
// is held off and the trim gets a few tries; a TrimText that drops
// nothing fails every one of them.
func TestTrimTextDropsReadOnlyPages(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	lo, hi := readOnlyMapping(t)
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	page := int64(os.Getpagesize())
	pages := (hi - lo) / page
	buf := make([]byte, 4096)
	var after int64
	for try := 0; try < 5; try++ {
		var b [1]byte
		for a := lo; a < hi; a += page {
			if _, err := mem.ReadAt(b[:], a); err != nil {
				t.Fatalf("touch %#x: %v", a, err)
			}
		}
		if before := present(t, lo, hi); before < pages*9/10 {
			t.Fatalf("only %d of %d pages mapped after touching them all", before, pages)
		}
		TrimText(buf)
		if after = present(t, lo, hi); after <= pages/2 {
			return
		}
	}
	t.Errorf("%d of %d read-only pages still mapped after TrimText, five tries", after, pages)
}

// readOnlyMapping is the test binary's largest read-only mapping.
func readOnlyMapping(t *testing.T) (lo, hi int64) {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 || fl[1] != "r--p" || fl[5] != exe {
			continue
		}
		a, b, _ := strings.Cut(fl[0], "-")
		l, _ := strconv.ParseInt(a, 16, 64)
		h, _ := strconv.ParseInt(b, 16, 64)
		if h-l > hi-lo {
			lo, hi = l, h
		}
	}
	if hi == 0 {
		t.Fatalf("no read-only mapping of %s", exe)
	}
	return lo, hi
}

// present counts the pages of [lo, hi) that are in this process's page
// tables (bit 63 of /proc/self/pagemap).
func present(t *testing.T, lo, hi int64) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := int64(os.Getpagesize())
	buf := make([]byte, (hi-lo)/page*8)
	if _, err := f.ReadAt(buf, lo/page*8); err != nil {
		t.Fatal(err)
	}
	var n int64
	for i := 0; i < len(buf); i += 8 {
		if binary.LittleEndian.Uint64(buf[i:])>>63 == 1 {
			n++
		}
	}
	return n
}
