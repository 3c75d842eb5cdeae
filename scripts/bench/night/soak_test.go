package night

import (
	"testing"

	"github.com/sag-upgrade/sag-upgrade/events"
)

func TestConfirmedTakesAnUpgradeAndItsVerificationAsOne(t *testing.T) {
	req := events.Result{Outcome: events.OutcomeRequested, ToVersion: "2.3.1"}
	ver := events.Result{Outcome: events.OutcomeVerified, ToVersion: "2.3.1"}
	other := events.Result{Outcome: events.OutcomeVerified, ToVersion: "2.3.0"}
	failed := events.Result{Outcome: events.OutcomeFailed, Reason: "api_error", ToVersion: "2.3.1"}
	for _, c := range []struct {
		name string
		in   []events.Result
		want int
	}{
		{"requested, then verified", []events.Result{req, ver}, 1},
		{"requested alone", []events.Result{req}, 1},
		{"verified another version: two outcomes", []events.Result{req, other}, 2},
		{"requested twice and verified: still two", []events.Result{req, req, ver}, 2},
		{"failed beside an upgrade and its verification", []events.Result{req, ver, failed}, 2},
	} {
		got := confirmed(c.in)
		if len(got) != c.want {
			t.Errorf("%s: %d results %v, want %d", c.name, len(got), got, c.want)
		}
	}
	if got := confirmed([]events.Result{req, ver}); got[0].Outcome != events.OutcomeVerified {
		t.Errorf("kept %v, want the verification", got[0])
	}
}
