package handler

import (
	"strings"
	"testing"
	"time"
)

// Any spec and zone: an error, or a window that never panics, whose most
// recent opening before any instant began at or before it (within a day), and
// which holds the time just after that opening whenever that day's opening
// lasts at all (a window inside a skipped DST hour is empty that day).
func FuzzParseWindow(f *testing.F) {
	springForward := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC).Unix() // 02:30 EST does not exist
	for _, seed := range []struct {
		spec, tz string
		at       int64
	}{
		{"01:00-05:00", "Asia/Shanghai", 1795370400},
		{"23:00-03:00", "Asia/Shanghai", 1795370400},
		{"02:00-03:00", "America/New_York", springForward},
		{"02:30-02:45", "America/New_York", springForward},
		{"01:00-02:00", "America/New_York", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC).Unix()},
		{"23:30-00:30", "Pacific/Apia", time.Date(2011, 12, 30, 10, 0, 0, 0, time.UTC).Unix()}, // a skipped day
		{"02:00-02:30", "Australia/Lord_Howe", time.Date(2026, 10, 4, 0, 0, 0, 0, time.UTC).Unix()},
		{"00:00-23:59", "UTC", 0},
		{"1:00-5:00", "Europe/Berlin", 1795370400},
		{"01:00-01:00", "UTC", 0},
		{"25:00-03:00", "UTC", 0},
		{"01:00-05:00x", "UTC", 0},
		{"+1:00-5:00", "UTC", 0},
		{"1: 00-05:00", "UTC", 0},
		{"", "Mars/Olympus", 0},
	} {
		f.Add(seed.spec, seed.tz, seed.at, int64(10*time.Minute))
	}
	f.Fuzz(func(t *testing.T, spec, tz string, at, d int64) {
		w, err := ParseWindow(spec, tz)
		if err != nil {
			return
		}
		if strings.Trim(spec, "0123456789:-") != "" || len(spec) > len("00:00-00:00") {
			t.Fatalf("%q was accepted as %v: a window is HH:MM-HH:MM", spec, w)
		}
		if spec == "" {
			if !w.Always() {
				t.Fatalf("an empty spec is %v, not always", w)
			}
			return
		}
		// Any instant from 1900 to 2300.
		const span = 400 * 365 * 24 * 3600
		now := time.Unix(-2208988800+(at%span+span)%span, 0)
		w.Allows(now, time.Duration(d)) // must not panic, whatever d
		open, close := w.opening(now)
		if open.After(now) || now.Sub(open) > 26*time.Hour {
			t.Fatalf("%v at %v: the most recent opening is %v", w, now, open)
		}
		if close.After(open) {
			if just := open.Add(time.Nanosecond); !w.Allows(just, 0) {
				t.Fatalf("%v: %v, just after it opened at %v (closing %v), is outside", w, just, open, close)
			}
		}
		if w.Allows(now, time.Duration(d)) && (now.Before(open) || !now.Before(close) || now.Add(time.Duration(d)).After(close)) {
			t.Fatalf("%v allows %v for %v outside its opening %v-%v", w, now, time.Duration(d), open, close)
		}
		// What it prints parses back to the same window.
		again, err := ParseWindow(w.text[:len("00:00-00:00")], tz)
		if err != nil || again.start != w.start || again.end != w.end || again.String() != w.String() {
			t.Fatalf("%v printed and parsed again is %v, %v", w, again, err)
		}
	})
}
