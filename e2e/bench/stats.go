package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Statistics and formatting for the report.

// median of a list (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is a list's median with its minimum and maximum.
type spread struct {
	med, lo, hi float64
	n           int
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return spread{median(s), s[0], s[len(s)-1], len(s)}
}

func durs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d)
	}
	return out
}

func durSpread(ds []time.Duration) spread { return spreadOf(durs(ds)) }

// durRange renders "median (min–max)" of durations.
func (s spread) durRange() string {
	if s.n == 0 {
		return "–"
	}
	if s.n == 1 || s.lo == s.hi {
		return dur(time.Duration(s.med))
	}
	return fmt.Sprintf("%s (%s–%s)", dur(time.Duration(s.med)), dur(time.Duration(s.lo)), dur(time.Duration(s.hi)))
}

// fit is a least-squares line y = fixed + perUnit*x.
type fit struct {
	fixed, perUnit, r2 float64
	points             int
}

func fitLine(xs, ys []float64) fit {
	n := float64(len(xs))
	if len(xs) < 2 {
		return fit{points: len(xs)}
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return fit{points: len(xs)}
	}
	b := (n*sxy - sx*sy) / den
	a := (sy - b*sx) / n
	var ssRes, ssTot float64
	mean := sy / n
	for i := range xs {
		d := ys[i] - (a + b*xs[i])
		ssRes += d * d
		e := ys[i] - mean
		ssTot += e * e
	}
	r2 := 1.0
	if ssTot > 0 {
		r2 = 1 - ssRes/ssTot
	}
	return fit{fixed: a, perUnit: b, r2: r2, points: len(xs)}
}

// dur renders a duration with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d >= 100*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", d.Seconds()*1e3)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", d.Seconds()*1e3)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", d.Seconds()*1e3)
	}
	return fmt.Sprintf("%.0f µs", d.Seconds()*1e6)
}

// signedDur renders a duration that may be negative (a fit's fixed cost).
func signedDur(d time.Duration) string {
	if d < 0 {
		return "−" + dur(-d)
	}
	if d == 0 {
		return "0"
	}
	return dur(d)
}

// num renders an integer with thousands separators: 10,000.
func num(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "−" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// kinds lists the distinct kinds of items, in order of first appearance.
func kinds[T any](items []T, kind func(T) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if k := kind(it); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// trimFloat renders a number with at most one decimal.
func trimFloat(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0")
}
