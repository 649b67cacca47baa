// Package units owns how berth reads and writes sizes and durations for
// people: the size flags of every face (run, update, oci update, mount
// options) parse through ParseSize, and every table prints through
// HumanSize, BytesSize and HumanDuration, so the same text means the same
// thing everywhere.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseSize parses a size in bytes as Docker's RAMInBytes: a number (a
// decimal fraction too) with an optional unit b, k, m, g, t, p (binary
// multiples, case-insensitive, optionally followed by "b" or "ib"):
// "1024", "64m", "1.5GB", "512KiB".
func ParseSize(s string) (int64, error) { return parseSize(s, 1<<10) }

// ParseDecimalSize is ParseSize with decimal multiples, as Docker's
// FromHumanSize reads --log-opt max-size: "10m" is 10,000,000 bytes.
func ParseDecimalSize(s string) (int64, error) { return parseSize(s, 1000) }

// parseSize reads a size whose units are powers of base.
func parseSize(s string, base float64) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	bad := fmt.Errorf("invalid size %q", s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	if num == "" || strings.Count(num, ".") > 1 || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		return 0, bad
	}
	mult := float64(1)
	switch strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i") {
	case "":
		if unit == "ib" || unit == "i" {
			return 0, bad
		}
	case "k":
		mult = base
	case "m":
		mult = base * base
	case "g":
		mult = base * base * base
	case "t":
		mult = base * base * base * base
	case "p":
		mult = base * base * base * base * base
	default:
		return 0, bad
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, bad
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// ParseLimit is ParseSize for limits, where "-1" means unlimited and is
// returned as -1.
func ParseLimit(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	return ParseSize(s)
}

// HumanSize writes a size in decimal units with three significant digits,
// as Docker's image and disk-usage tables do: "1.5MB".
func HumanSize(n int64) string {
	const unit = 1000.0
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < unit {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= unit
	}
	return fmt.Sprintf("%.3gPB", f)
}

// BytesSize writes a size in binary units with four significant digits,
// as Docker's stats and info do: "1.5MiB".
func BytesSize(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.4g%s", f, u)
		}
		f /= 1024
	}
	return fmt.Sprintf("%.4gTiB", f)
}

// HumanDuration writes an elapsed time the way every berth table does
// ("Up 5 minutes", "2 hours ago"), as Docker words it.
func HumanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}

// Ago is HumanDuration since t with " ago", or "N/A" when t is unknown.
func Ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return HumanDuration(time.Since(t)) + " ago"
}
