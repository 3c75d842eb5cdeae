package handler

import (
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestPolicyChoose(t *testing.T) {
	now := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	offered := []Release{ // deliberately unsorted, with old versions and a beta
		{Code: "2.3.1", Type: "release", Created: now.Add(-60 * day)},
		{Code: "1.9.0", Type: "release", Created: now.Add(-500 * day)},
		{Code: "2.4.0", Type: "beta", Created: now.Add(-10 * day)},
		{Code: "2.2.0", Type: "release", Created: now.Add(-200 * day)},
		{Code: "2.3.1.1", Type: "release", Created: now.Add(-2 * day)},
	}
	cases := []struct {
		name, current, pin string
		policy             Policy
		want, reason       string
	}{
		{"newest release, numerically", "2.0.8", "", Policy{Channel: "release"}, "2.3.1.1", ""},
		{"beta channel takes the beta", "2.0.8", "", Policy{Channel: "beta"}, "2.4.0", ""},
		{"a held newest falls back to the next", "2.0.8", "", Policy{Channel: "release", Hold: []string{"2.3.1.1"}}, "2.3.1", ""},
		{"hold compares numerically", "2.3.1", "", Policy{Channel: "release", Hold: []string{"2.3.1.1"}}, "", upgrade.ReasonHeld},
		{"minimum age skips a young release", "2.0.8", "", Policy{Channel: "release", MinReleaseAge: 7 * day}, "2.3.1", ""},
		{"all newer releases too young", "2.3.1", "", Policy{Channel: "release", MinReleaseAge: 7 * day}, "", upgrade.ReasonTooNew},
		{"up to date", "2.3.1.1", "", Policy{Channel: "release"}, "", upgrade.ReasonUpToDate},
		{"2.0 equals 2.0.0", "2.3.1.1.0", "", Policy{Channel: "release"}, "", upgrade.ReasonUpToDate},
		{"never a downgrade", "3.0", "", Policy{Channel: "release"}, "", upgrade.ReasonUpToDate},
		{"pin", "2.0.8", "2.2.0", Policy{Channel: "release"}, "2.2.0", ""},
		{"pin a beta explicitly", "2.0.8", "2.4.0", Policy{Channel: "release"}, "2.4.0", ""},
		{"pin skips the minimum age", "2.0.8", "2.3.1.1", Policy{Channel: "release", MinReleaseAge: 7 * day}, "2.3.1.1", ""},
		{"pin not offered", "2.0.8", "2.5.0", Policy{Channel: "release"}, "", upgrade.ReasonNotOffered},
		{"pin held", "2.0.8", "2.2.0", Policy{Channel: "release", Hold: []string{"2.2.0"}}, "", upgrade.ReasonHeld},
		{"pin would downgrade", "2.3.1", "2.2.0", Policy{Channel: "release"}, "", upgrade.ReasonWouldDowngrade},
		{"pin already there", "2.2.0", "2.2.0", Policy{Channel: "release"}, "", upgrade.ReasonUpToDate},
		{"device reports no version", "", "", Policy{Channel: "release"}, "", upgrade.ReasonVersionUnknown},
	}
	for _, c := range cases {
		got, reason := c.policy.Choose(c.current, offered, c.pin, now)
		if got.Code != c.want || reason != c.reason {
			t.Errorf("%s: Choose(%q, pin %q) = %q, %q; want %q, %q", c.name, c.current, c.pin, got.Code, reason, c.want, c.reason)
		}
	}
	if _, reason := (Policy{Channel: "release"}).Choose("2.0.8", []Release{{Code: "2.4.0", Type: "beta"}}, "", now); reason != upgrade.ReasonNoRelease {
		t.Errorf("only a beta offered in the release channel: reason %q, want %q", reason, upgrade.ReasonNoRelease)
	}
}

// DPI signature versions have no documented format: when they do not parse
// as dotted numbers, the newer one is the one created later.
func TestPolicyOpaqueVersions(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	offered := []Release{
		{Code: "sig-20261101", Type: "release", Created: now.Add(-21 * 24 * time.Hour)},
		{Code: "sig-20261020", Type: "release", Created: now.Add(-33 * 24 * time.Hour)},
	}
	got, reason := Policy{Channel: "release"}.Choose("sig-20261020", offered, "", now)
	if got.Code != "sig-20261101" || reason != "" {
		t.Fatalf("Choose = %q, %q; want sig-20261101", got.Code, reason)
	}
	if _, reason := (Policy{Channel: "release"}).Choose("sig-20261101", offered, "", now); reason != upgrade.ReasonUpToDate {
		t.Fatalf("newest opaque version: reason %q, want up_to_date", reason)
	}
}

// A device on a dotted version moves only to a higher dotted version: a code
// that does not parse ("", "v1.0", "1.0-beta") cannot be shown not to be a
// downgrade, however recently it was created (found by FuzzPolicyChoose).
func TestPolicyNeverLeavesADottedVersionForAnUnparsedCode(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, code := range []string{"", "v1.0", "1.0-beta", "sig-20261101"} {
		offered := []Release{
			{Code: "2.0.8", Type: "release", Created: now.Add(-100 * 24 * time.Hour)},
			{Code: code, Type: "release", Created: now.Add(-24 * time.Hour)},
		}
		if got, reason := (Policy{Channel: "release"}).Choose("2.0.8", offered, "", now); reason != upgrade.ReasonUpToDate {
			t.Errorf("offered %q after 2.0.8: Choose = %q, %q; want up to date", code, got.Code, reason)
		}
	}
	// An opaque current version still moves to what was created later.
	offered := []Release{{Code: "sig-1", Type: "release", Created: now.Add(-48 * time.Hour)}, {Code: "", Type: "release", Created: now}}
	if got, reason := (Policy{Channel: "release"}).Choose("sig-1", offered, "", now); reason != upgrade.ReasonUpToDate {
		t.Errorf("an empty code after sig-1: Choose = %q, %q; want up to date", got.Code, reason)
	}
}
