package handler

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, shanghai) }
	night, err := ParseWindow("23:00-03:00", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	early, err := ParseWindow("01:00-05:00", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		w    Window
		t    time.Time
		d    time.Duration
		want bool
	}{
		{early, at(1, 0), 10 * time.Minute, true},
		{early, at(0, 59), 10 * time.Minute, false},
		{early, at(4, 50), 10 * time.Minute, true},
		{early, at(4, 51), 10 * time.Minute, false}, // the reboot would run past 05:00
		{early, at(4, 59), 0, true},                 // DPI updates do not reboot
		{early, at(5, 0), 0, false},
		{night, at(23, 30), 10 * time.Minute, true},
		{night, at(0, 30), 10 * time.Minute, true}, // after midnight, same opening
		{night, at(2, 55), 10 * time.Minute, false},
		{night, at(12, 0), 0, false},
		{Window{}, at(12, 0), time.Hour, true},
		// The clock of the caller may be in UTC: 18:00 UTC is 02:00 in Shanghai.
		{early, time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC), 10 * time.Minute, true},
	}
	for _, c := range cases {
		if got := c.w.Allows(c.t, c.d); got != c.want {
			t.Errorf("%v.Allows(%s, %v) = %v, want %v", c.w, c.t.Format("15:04 MST"), c.d, got, c.want)
		}
	}
}

func TestParseWindowErrors(t *testing.T) {
	for _, spec := range []string{"1-5", "25:00-03:00", "01:00-01:00", "01:00-05:00x", "01:60-02:00",
		// fmt.Sscanf took signs, spaces, extra digits and one-digit minutes.
		"+1:00-05:00", "-0:00-05:00", "1: 00-05:00", "01:00-+5:00", "1:0-5:0", "001:00-05:00", "01:00-05:00\n", " 01:00-05:00"} {
		if _, err := ParseWindow(spec, "Asia/Shanghai"); err == nil {
			t.Errorf("ParseWindow(%q) accepted it", spec)
		}
	}
	if _, err := ParseWindow("01:00-05:00", "Mars/Olympus"); err == nil {
		t.Error("an unknown time zone was accepted")
	}
	if _, err := ParseWindow("01:00-05:00", "Local"); err == nil {
		t.Error("Local, whatever the machine is set to, was accepted as a zone")
	}
	// One-digit hours are still hours.
	if w, err := ParseWindow("1:00-5:30", "UTC"); err != nil || w.String() != "01:00-05:30 UTC" {
		t.Errorf("1:00-5:30 = %v, %v", w, err)
	}
}

// nextFit is when an upgrade may next start: now if it fits, else the next
// opening it fits in, daylight-saving days included (Berlin springs forward
// on 2027-03-28 at 02:00 and falls back on 2026-10-25 at 03:00, when
// time.Date reads an hour that happens twice as its second).
func TestNextFit(t *testing.T) {
	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	shanghai, _ := ParseWindow("01:00-05:00", "Asia/Shanghai")
	berlin, _ := ParseWindow("02:00-04:00", "Europe/Berlin")
	night, _ := ParseWindow("23:00-01:00", "Europe/Berlin")
	for _, c := range []struct {
		w        Window
		now      string
		d        time.Duration
		want     string
		scenario string
	}{
		{shanghai, "2026-12-06T18:00:00Z", 10 * time.Minute, "2026-12-06T18:00:00Z", "open: now"},
		{shanghai, "2026-12-06T20:55:00Z", 10 * time.Minute, "2026-12-07T17:00:00Z", "open, but the upgrade would not end inside: tomorrow"},
		{shanghai, "2026-12-06T04:00:00Z", 10 * time.Minute, "2026-12-06T17:00:00Z", "closed: tonight's opening"},
		{night, "2026-12-06T12:00:00Z", 10 * time.Minute, "2026-12-06T22:00:00Z", "across midnight"},
		{berlin, "2027-03-27T12:00:00Z", 10 * time.Minute, "2027-03-28T01:00:00Z", "spring forward: 02:00 does not exist, the window opens at 03:00 CEST"},
		{berlin, "2027-03-27T12:00:00Z", 90 * time.Minute, "2027-03-29T00:00:00Z", "spring forward: one hour is left, too short for 90 minutes"},
		{berlin, "2026-10-24T12:00:00Z", 10 * time.Minute, "2026-10-25T01:00:00Z", "fall back: 02:00 happens twice; the window opens at the second (CET) and lasts two hours"},
		{berlin, "2026-10-24T12:00:00Z", 150 * time.Minute, "2026-10-24T12:00:00Z", "longer than the window every night: now, for the gate to report"},
		{Window{}, "2026-12-06T04:00:00Z", 10 * time.Minute, "2026-12-06T04:00:00Z", "always open"},
	} {
		if got := c.w.nextFit(utc(c.now), c.d); !got.Equal(utc(c.want)) {
			t.Errorf("%s: %s at %s: next %s, want %s", c.scenario, c.w, c.now, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}
