package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// updateCalls counts the update calls the fake SAG took.
func updateCalls(sag *fakeSAG) int {
	sag.mu.Lock()
	defer sag.mu.Unlock()
	return len(sag.updates)
}

// A paused rollout's gateways get no update call, across runs, until it is
// unpaused; each answer says what changed, before and after.
func TestPausedRolloutCallsNothingUntilUnpaused(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(20))
	lh.h.Config.RolloutCanary = 20 // every gateway in the first wave
	lh.h.Config.MaxUpgradesPerRun = 3
	if r, _ := lh.invoke(t, `{}`); r.Counts.Requested != 3 {
		t.Fatalf("first run: %+v", r.Counts)
	}
	report, err := lh.invoke(t, `{"kind":"pause","targetVersion":"2.3.1","operator":"alice@example.com"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Control) != 1 || !report.Control[0].Changed || report.Control[0].Before.Rollout.Paused ||
		!report.Control[0].After.Rollout.Paused || !strings.Contains(report.Control[0].After.Rollout.PausedBy, "alice@example.com") {
		t.Fatalf("pause answered %+v", report.Control)
	}
	calls := updateCalls(sag)
	for night := 0; night < 2; night++ {
		r, _ := lh.invoke(t, `{}`)
		if updateCalls(sag) != calls || r.Counts.Requested != 0 {
			t.Fatalf("paused, run %d: %d update calls more", night, updateCalls(sag)-calls)
		}
		for _, res := range r.Results {
			if res.Outcome == upgrade.OutcomeDeferred && res.Reason != upgrade.ReasonPaused {
				t.Fatalf("%s deferred for %s while paused", res.SmartAGID, res.Reason)
			}
		}
		if r.Counts.Deferred == 0 {
			t.Fatalf("paused, run %d: nothing deferred: %+v", night, r.Counts)
		}
	}
	// A second pause changes nothing and says so.
	if r, _ := lh.invoke(t, `{"kind":"pause","targetVersion":"2.3.1"}`); len(r.Control) != 1 || r.Control[0].Changed {
		t.Fatalf("second pause: %+v", r.Control)
	}
	r, _ := lh.invoke(t, `{"kind":"unpause","targetVersion":"2.3.1","model":"sag-1000"}`)
	if len(r.Control) != 1 || !r.Control[0].Changed || r.Control[0].After.Rollout.Paused {
		t.Fatalf("unpause answered %+v", r.Control)
	}
	if r, _ := lh.invoke(t, `{}`); r.Counts.Requested == 0 {
		t.Fatalf("unpaused: nothing requested: %+v", r.Counts)
	}
	// Both changes are in the rollout's audit trail, with who asked; the
	// no-op is not.
	trail, _ := lh.ledger.History(t.Context(), rolloutKey{upgrade.VersionDevice, "sag-1000", "2.3.1"}.id())
	var got []string
	for _, e := range trail {
		got = append(got, e.Event+"/"+e.Operator)
	}
	if strings.Join(got, " ") != "pause/alice@example.com unpause/" {
		t.Fatalf("audit trail %v", got)
	}
	if tr := transitions(lh.pub); !containsAll(tr, events.RolloutPaused, events.RolloutUnpaused) {
		t.Fatalf("transitions %v", tr)
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

// A pause written while a run waits to call holds that call back: the
// pause is read right before each update call, as the kill switch is.
func TestPauseHoldsBackACallAlreadyAdmitted(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(4))
	lh.h.Config.RolloutCanary = 4
	lh.h.Config.MaxConcurrency = 1
	paused := false
	sag.onUpdate = func(id, serial string) {
		if !paused { // the first call is made; then an operator pauses
			paused = true
			if _, err := lh.invoke(t, `{"kind":"pause","targetVersion":"2.3.1"}`); err != nil {
				t.Error(err)
			}
		}
	}
	r, _ := lh.invoke(t, `{}`)
	if updateCalls(sag) != 1 || r.Counts.Requested != 1 {
		t.Fatalf("%d update calls after the pause came in after the first: %+v", updateCalls(sag), r.Counts)
	}
	for _, res := range r.Results {
		if res.Outcome == upgrade.OutcomeDeferred && (res.Reason != upgrade.ReasonPaused || !strings.Contains(res.Error, "paused by")) {
			t.Fatalf("%s: %s %q", res.SmartAGID, res.Reason, res.Error)
		}
	}
}

// Steering a rollout the ledger does not hold is rejected, naming it.
func TestSteeringANonexistentRolloutIsRejected(t *testing.T) {
	lh, _ := newRolloutHarness(t, rolloutFleet(4))
	lh.invoke(t, `{}`) // a rollout to 2.3.1 of sag-1000
	for _, payload := range []string{
		`{"kind":"pause","targetVersion":"9.9.9"}`,
		`{"kind":"reset","targetVersion":"9.9.9"}`,
		`{"kind":"unpause","targetVersion":"2.3.1","model":"sag-100WM"}`,
		`{"kind":"approve","targetVersion":"2.3.1","model":"sag-100WM","wave":1}`,
	} {
		report, err := lh.invoke(t, payload)
		var rejected *RejectedError
		if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "no Device rollout") {
			t.Fatalf("%s: %v", payload, err)
		}
		if len(report.Results) != 1 || report.Results[0].Reason != upgrade.ReasonNotFound || len(report.Control) != 0 {
			t.Fatalf("%s: %+v", payload, report.Results)
		}
	}
}

// With ROLLOUT_APPROVAL=manual the canary starts by itself; the next wave,
// soaked and healthy, waits night after night until an operator approves
// exactly it; then it starts, and the one after waits again.
func TestManualApprovalHoldsEachWave(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(40))
	lh.h.Config.RolloutApproval = ApprovalManual
	if r, _ := lh.invoke(t, `{}`); r.Counts.Requested != 2 {
		t.Fatalf("canary: %+v", r.Counts)
	}
	lh.completeUpgrades(t, sag, "2.3.1")
	lh.clock.Advance(DefaultRolloutSoak)
	// Approving any other wave than the next is refused.
	for _, wave := range []string{"2", "3"} {
		_, err := lh.invoke(t, `{"kind":"approve","targetVersion":"2.3.1","model":"sag-1000","wave":`+wave+`}`)
		if err == nil || !strings.Contains(err.Error(), "only wave 1 can be approved") {
			t.Fatalf("approving wave %s: %v", wave, err)
		}
	}
	for night := 0; night < 3; night++ {
		r, _ := lh.invoke(t, `{}`)
		if r.Counts.Requested != 0 {
			t.Fatalf("night %d: %d requested before the approval", night, r.Counts.Requested)
		}
		waiting := 0
		for _, res := range r.Results {
			if res.Reason == upgrade.ReasonAwaitingApproval {
				waiting++
			}
		}
		if waiting != 38 || len(r.Rollouts) != 1 || r.Rollouts[0].AwaitingApproval != 1 {
			t.Fatalf("night %d: %d awaiting approval, rollouts %+v", night, waiting, r.Rollouts)
		}
		lh.clock.Advance(day)
	}
	if tr := transitions(lh.pub); strings.Count(strings.Join(tr, " "), events.RolloutAwaiting) != 1 {
		t.Fatalf("the wait is announced once: %v", tr)
	}
	// Force passes the waves, not the approval gate.
	if r, _ := lh.invoke(t, `{"gatewayIds":["sag-r05"],"force":true}`); r.Counts.Requested != 0 || r.Results[0].Reason != upgrade.ReasonAwaitingApproval {
		t.Fatalf("forced during the wait: %+v", r.Results)
	}
	r, err := lh.invoke(t, `{"kind":"approve","targetVersion":"2.3.1","model":"sag-1000","wave":1,"operator":"bob"}`)
	if err != nil || len(r.Control) != 1 || r.Control[0].After.Rollout.Wave != 1 || r.Control[0].Before.Rollout.Wave != 0 {
		t.Fatalf("approve: %v %+v", err, r.Control)
	}
	if r, _ := lh.invoke(t, `{}`); r.Counts.Requested != 1 { // wave 1: 5% of 40, and above the canary: 3
		t.Fatalf("after the approval: %+v", r.Counts)
	}
	lh.completeUpgrades(t, sag, "2.3.1")
	lh.clock.Advance(DefaultRolloutSoak)
	if r, _ := lh.invoke(t, `{}`); r.Counts.Requested != 0 || r.Rollouts[0].AwaitingApproval != 2 {
		t.Fatalf("wave 2 must wait for its own approval: %+v %+v", r.Counts, r.Rollouts)
	}
	// An approval under ROLLOUT_APPROVAL=auto is refused.
	lh.h.Config.RolloutApproval = ApprovalAuto
	if _, err := lh.invoke(t, `{"kind":"approve","targetVersion":"2.3.1","model":"sag-1000","wave":2}`); err == nil ||
		!strings.Contains(err.Error(), "ROLLOUT_APPROVAL is auto") {
		t.Fatalf("approve under auto: %v", err)
	}
}

// Force passes a rollout's waves and breaker, never its pause.
func TestForceDoesNotPassAPause(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(10))
	lh.invoke(t, `{}`)
	lh.invoke(t, `{"kind":"pause","targetVersion":"2.3.1"}`)
	calls := updateCalls(sag)
	id := ""
	for _, g := range sag.gateways {
		if sag.count("Update", g.ID) == 0 {
			id = g.ID
		}
	}
	r, _ := lh.invoke(t, `{"gatewayIds":["`+id+`"],"force":true}`)
	if updateCalls(sag) != calls || len(r.Results) != 1 || r.Results[0].Reason != upgrade.ReasonPaused {
		t.Fatalf("forced while paused: %d calls more, %+v", updateCalls(sag)-calls, r.Results)
	}
}
