package handler

import (
	"slices"
	"testing"
	"time"
)

// Version strings as the API may send them: compareVersions is reflexive and
// antisymmetric, and Choose never panics, returns only an offered release,
// never a held version and never a downgrade (or reinstall) of a valid
// current version; a pin gives the offered release equal to it.
func FuzzPolicyChoose(f *testing.F) {
	for _, s := range [][5]string{
		{"2.0.8", "2.3.1", "2.3.1.1", "2.4.0", ""},
		{"2.3.1", "2.3.1.0", "2.3.1", "1.9.0", "2.3.1.1"},
		{"sig-20261020", "sig-20261101", "sig-20261020", "1.8.3", ""},
		{"2.0", "v1.0", "2.0", "1.0-beta", ""},
		{"1.0", "1.0-1", "1.0-a", "1.0+meta", "1.0.0"},
		{"2.3.1", "99999999999999999999.1", "2.3.1.1.0", "", "02.3.1"},
		{"1.8.3", "1.8.3", "1.8.4", "1.8.10", "1.8.4"},
	} {
		// All releases; then a beta channel offering a beta, a release and an unknown type.
		f.Add(s[0], s[1], s[2], s[3], s[4], uint16(0), int64(-60), int64(-2), int64(-10), "", int64(0))
		f.Add(s[0], s[1], s[2], s[3], s[4], uint16(0b1_10_00_01), int64(-60), int64(-2), int64(-10), "2.3.1.1", int64(7))
	}
	f.Fuzz(func(t *testing.T, current, a, b, c, pin string, bits uint16, ageA, ageB, ageC int64, hold string, minAgeDays int64) {
		now := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
		types := []string{"release", "beta", "unknown", ""}
		created := func(days int64) time.Time { return now.Add(time.Duration(days%100000) * 24 * time.Hour) }
		offered := []Release{
			{Code: a, Type: types[bits&3], Created: created(ageA)},
			{Code: b, Type: types[bits>>2&3], Created: created(ageB)},
			{Code: c, Type: types[bits>>4&3], Created: created(ageC)},
		}
		p := Policy{Channel: []string{"release", "beta"}[bits>>6&1], MinReleaseAge: time.Duration(minAgeDays%1000) * 24 * time.Hour}
		if hold != "" {
			p.Hold = []string{hold}
		}
		if !validVersion(pin) { // a request's targetVersion is a dotted version or absent
			pin = ""
		}
		all := []string{current, a, b, c, pin, hold}
		for _, x := range all {
			if compareVersions(x, x) != 0 {
				t.Fatalf("compareVersions(%q, itself) = %d", x, compareVersions(x, x))
			}
			for _, y := range all {
				if xy, yx := compareVersions(x, y), compareVersions(y, x); xy != -yx {
					t.Fatalf("compareVersions(%q, %q) = %d but compareVersions(%q, %q) = %d", x, y, xy, y, x, yx)
				}
			}
		}

		got, reason := p.Choose(current, offered, pin, now)
		if reason != "" {
			if got != (Release{}) {
				t.Fatalf("reason %q with release %+v", reason, got)
			}
			return
		}
		if !slices.Contains(offered, got) {
			t.Fatalf("Choose(%q) = %+v, not one of %+v", current, got, offered)
		}
		for _, h := range p.Hold {
			if compareVersions(h, got.Code) == 0 {
				t.Fatalf("Choose(%q) = %q, which is held (%q)", current, got.Code, h)
			}
		}
		if validVersion(current) && compareVersions(got.Code, current) <= 0 {
			t.Fatalf("Choose(%q) = %q: not newer than the device's version", current, got.Code)
		}
		if pin != "" && compareVersions(got.Code, pin) != 0 {
			t.Fatalf("Choose(%q, pin %q) = %q", current, pin, got.Code)
		}
		if pin == "" && got.Type != "release" && !(p.Channel == "beta" && got.Type == "beta") {
			t.Fatalf("Choose(%q) on channel %s = a %q", current, p.Channel, got.Type)
		}
	})
}
