package upgrade

import (
	"testing"
)

func TestCountsAdd(t *testing.T) {
	var c Counts
	for _, o := range []Outcome{OutcomeRequested, OutcomePlanned, OutcomePlanned, OutcomeSkipped, OutcomeDeferred,
		OutcomeFailed, OutcomeRejected, OutcomeVerified, OutcomeUnverified, OutcomeUnverified} {
		if !c.Add(o) || !o.Known() {
			t.Errorf("Add(%q) = false", o)
		}
	}
	want := Counts{Requested: 1, Planned: 2, Skipped: 1, Deferred: 1, Failed: 1, Rejected: 1, Verified: 1, Unverified: 2}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	for _, o := range []Outcome{"", "succeeded", "Requested"} {
		if c.Add(o) || o.Known() {
			t.Errorf("Add(%q) counted an unknown outcome", o)
		}
	}
	if c != want {
		t.Errorf("an unknown outcome changed the counts: %+v", c)
	}
}
