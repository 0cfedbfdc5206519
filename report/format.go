package report

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// fmtMs formats a duration in milliseconds for people: three significant
// digits or so, switching to seconds and minutes for long durations.
func fmtMs(ms float64) string {
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return "–"
	}
	neg := ms < 0
	a := math.Abs(ms)
	var s string
	switch {
	case a == 0:
		s = "0 ms"
	case a < 0.01:
		s = strconv.FormatFloat(a*1000, 'f', 1, 64) + " µs"
	case a < 1:
		s = strconv.FormatFloat(a, 'f', 3, 64) + " ms"
	case a < 10:
		s = strconv.FormatFloat(a, 'f', 2, 64) + " ms"
	case a < 100:
		s = strconv.FormatFloat(a, 'f', 1, 64) + " ms"
	case a < 1000:
		s = strconv.FormatFloat(a, 'f', 0, 64) + " ms"
	case a < 10_000:
		s = strconv.FormatFloat(a/1000, 'f', 2, 64) + " s"
	case a < 100_000:
		s = strconv.FormatFloat(a/1000, 'f', 1, 64) + " s"
	case a < 600_000:
		s = strconv.FormatFloat(a/1000, 'f', 0, 64) + " s"
	default:
		s = strconv.FormatFloat(a/60_000, 'f', 1, 64) + " min"
	}
	if neg {
		return "−" + s
	}
	return s
}

// fmtDelta formats a signed change in milliseconds with an explicit sign.
func fmtDelta(ms float64) string {
	if ms > 0 {
		return "+" + fmtMs(ms)
	}
	if ms == 0 {
		return "±0"
	}
	return fmtMs(ms)
}

// fmtRatio formats a ratio such as 1.84 as "×1.84"; 0 (unknown) as "".
func fmtRatio(r float64) string {
	if r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return ""
	}
	if r >= 100 {
		return "×" + strconv.FormatFloat(r, 'f', 0, 64)
	}
	return "×" + strconv.FormatFloat(r, 'f', 2, 64)
}

// fmtInt formats an integer with thin-space-free thousands separators.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if len(s) > 3 {
		var b strings.Builder
		pre := len(s) % 3
		if pre > 0 {
			b.WriteString(s[:pre])
		}
		for i := pre; i < len(s); i += 3 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s[i : i+3])
		}
		s = b.String()
	}
	if neg {
		return "-" + s
	}
	return s
}

// fmtPct formats a 0..1 share as a percentage.
func fmtPct(share float64) string {
	p := share * 100
	switch {
	case p == 0:
		return "0%"
	case p < 0.1:
		return "<0.1%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

// num is the machine-readable sort key of a number, written into data-v.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// pct is a CSS percentage with fixed precision, clamped to [0, 100].
func pct(v float64) string {
	if math.IsNaN(v) || v < 0 {
		v = 0
	}
	if v > 100 {
		v = 100
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// fmtTime shows an RFC 3339 timestamp as "2006-01-02 15:04:05.000 UTC";
// text it cannot parse is shown unchanged.
func fmtTime(s string) string {
	if s == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// plural formats "1 call", "2 calls"; "" for zero.
func plural(n int64, noun string) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 " + noun
	}
	return fmtInt(n) + " " + noun + "s"
}
