package soak

import (
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestConfirmedTakesAnUpgradeAndItsVerificationAsOne(t *testing.T) {
	req := upgrade.Result{Outcome: upgrade.OutcomeRequested, ToVersion: "2.3.1"}
	ver := upgrade.Result{Outcome: upgrade.OutcomeVerified, ToVersion: "2.3.1"}
	other := upgrade.Result{Outcome: upgrade.OutcomeVerified, ToVersion: "2.3.0"}
	failed := upgrade.Result{Outcome: upgrade.OutcomeFailed, Reason: "api_error", ToVersion: "2.3.1"}
	for _, c := range []struct {
		name string
		in   []upgrade.Result
		want int
	}{
		{"requested, then verified", []upgrade.Result{req, ver}, 1},
		{"requested alone", []upgrade.Result{req}, 1},
		{"verified another version: two outcomes", []upgrade.Result{req, other}, 2},
		{"requested twice and verified: still two", []upgrade.Result{req, req, ver}, 2},
		{"failed beside an upgrade and its verification", []upgrade.Result{req, ver, failed}, 2},
	} {
		got := confirmed(c.in)
		if len(got) != c.want {
			t.Errorf("%s: %d results %v, want %d", c.name, len(got), got, c.want)
		}
	}
	if got := confirmed([]upgrade.Result{req, ver}); got[0].Outcome != upgrade.OutcomeVerified {
		t.Errorf("kept %v, want the verification", got[0])
	}
}
