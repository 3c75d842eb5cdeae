package handler

import (
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestExpiredClaimIsSettledByReadingTheDevice(t *testing.T) {
	cases := []struct {
		name     string
		ha       bool
		claimed  time.Duration // how long ago the claim was made
		expired  bool
		status   string // the device read after the lease
		calls    int
		outcome  upgrade.Outcome
		reason   string
		endState State
	}{
		{"live claim: someone is on it", false, time.Minute, false, "Active", 0, upgrade.OutcomeSkipped, upgrade.ReasonInProgress, StateClaimed},
		{"expired, device untouched: the call never happened", false, 31 * time.Minute, true, "Active", 1, upgrade.OutcomeRequested, "", StateRequested},
		{"expired, device rebooting: the call happened", false, 31 * time.Minute, true, "Offline", 0, upgrade.OutcomeSkipped, upgrade.ReasonInProgress, StateRequested},
		// An HA pair stays Active while its standby reboots on the old
		// version: only once the upgrade would show is the claim unused.
		{"HA, expired, upgrade could still be under way", true, 25 * time.Minute, true, "Active", 0, upgrade.OutcomeSkipped, upgrade.ReasonInProgress, StateClaimed},
		{"HA, expired, upgrade would show by now", true, 31 * time.Minute, true, "Active", 1, upgrade.OutcomeRequested, upgrade.ReasonHAPeerPending, StateRequested},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := gateway("sag-a", "2.0.8")
			devices := []Device{{SerialNumber: "sn-sag-a", Software: "2.0.8"}}
			if c.ha {
				g.SerialNumbers = []string{"sn-sag-a", "sn-sag-a2"}
				devices = append(devices, Device{SerialNumber: "sn-sag-a2", Software: "2.0.8"})
			}
			sag := upgradingSAG(g)
			sag.details[g.ID] = Detail{Status: c.status, Devices: devices, MasterSN: "sn-sag-a2"}
			lh := newLedgerHarness(t, sag)
			lease := testNow.Add(10 * time.Minute)
			if c.expired {
				lease = testNow.Add(-time.Minute)
			}
			// UPGRADE_TIME 10 min + VERIFY_TIMEOUT 20 min: an upgrade shows
			// 30 minutes after its call at the latest.
			lh.ledger.rows[key(g.ID, upgrade.VersionDevice)] = Record{Gateway: g.ID, Region: g.Region, VersionType: upgrade.VersionDevice,
				Rev: 1, State: StateClaimed, Target: "2.3.1", From: "2.0.8", Serial: "sn-sag-a", ClaimID: "dead-run",
				ClaimedAt: testNow.Add(-c.claimed), LeaseUntil: lease}
			report, err := lh.invoke(t, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			r := report.Results[0]
			if n := sag.count("Update", g.ID); n != c.calls || r.Outcome != c.outcome || r.Reason != c.reason {
				t.Fatalf("%d calls, %s/%s; want %d, %s/%s", n, r.Outcome, r.Reason, c.calls, c.outcome, c.reason)
			}
			if st := lh.ledger.row(g.ID).State; st != c.endState {
				t.Fatalf("record ends %s, want %s", st, c.endState)
			}
		})
	}
}

func TestUnverifiedAttemptsEndInThePenaltyBox(t *testing.T) {
	g := gateway("sag-lost", "2.0.8")
	sag := upgradingSAG(g)
	lh := newLedgerHarness(t, sag)
	lh.h.Config.MaxAttempts = 2
	for night := 1; night <= 2; night++ {
		report, _ := lh.invoke(t, `{}`)
		if r := report.Results[0]; r.Outcome != upgrade.OutcomeRequested {
			t.Fatalf("night %d: %+v", night, r)
		}
		// The device never comes back; the next night's sweep settles it.
		lh.clock.Advance(24 * time.Hour)
		report, _ = lh.invoke(t, `{"kind":"verify","gatewayIds":["sag-lost"]}`)
		if r := report.Results[0]; r.Outcome != upgrade.OutcomeUnverified || r.Reason != upgrade.ReasonOffline {
			t.Fatalf("night %d verify: %+v", night, r)
		}
		if rec := lh.ledger.row(g.ID); rec.Attempts != night || rec.State != StateUnverified {
			t.Fatalf("night %d record: %+v", night, rec)
		}
		finishUpgrade(sag, g.ID, "2.0.8") // it comes back on the old version
	}
	rec := lh.ledger.row(g.ID)
	if !rec.PenaltyUntil.After(lh.clock.Now()) {
		t.Fatalf("not in the penalty box after %d attempts: %+v", rec.Attempts, rec)
	}
	report, _ := lh.invoke(t, `{}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonPenalty || sag.count("Update", g.ID) != 2 {
		t.Fatalf("in the penalty box: %+v, %d calls", r, sag.count("Update", g.ID))
	}
	// An operator retries just the failed ones, penalty or not.
	report, _ = lh.invoke(t, `{"retryFailedOnly":true}`)
	if len(report.Results) != 1 || report.Results[0].Outcome != upgrade.OutcomeRequested || sag.count("Update", g.ID) != 3 {
		t.Fatalf("retryFailedOnly: %+v", report.Results)
	}
	// After the cool-down the sweep tries once more on its own.
	lh.ledger.mu.Lock()
	rec = lh.ledger.rows[key(g.ID, upgrade.VersionDevice)]
	rec.State, rec.Rev = StateFailed, rec.Rev+1
	lh.ledger.rows[key(g.ID, upgrade.VersionDevice)] = rec
	lh.ledger.mu.Unlock()
	lh.clock.Advance(DefaultPenaltyCooldown + time.Hour)
	report, _ = lh.invoke(t, `{}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeRequested {
		t.Fatalf("after the cool-down: %+v", r)
	}
}

func TestDeviceStillDownCountsOncePerNight(t *testing.T) {
	g := gateway("sag-lost", "2.0.8")
	sag := upgradingSAG(g)
	lh := newLedgerHarness(t, sag)
	lh.h.Config.MaxAttempts = 2
	if r := mustInvoke(t, lh, `{}`); r.Outcome != upgrade.OutcomeRequested {
		t.Fatalf("first night: %+v", r)
	}
	sag.mu.Lock()
	sag.gateways[0].Status = "Offline" // and the listing shows it so from now on
	sag.mu.Unlock()
	lh.clock.Advance(24 * time.Hour)
	if r := mustInvoke(t, lh, `{"kind":"verify","gatewayIds":["sag-lost"]}`); r.Outcome != upgrade.OutcomeUnverified {
		t.Fatalf("verify: %+v", r)
	}
	// A second run the same night: offline, not another attempt.
	if r := mustInvoke(t, lh, `{}`); r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonOffline {
		t.Fatalf("same night: %+v", r)
	}
	if rec := lh.ledger.row(g.ID); rec.Attempts != 1 {
		t.Fatalf("same night counted: %+v", rec)
	}
	// The next night it is still down: reported again, counted, and with
	// MAX_ATTEMPTS=2 held back.
	lh.clock.Advance(21 * time.Hour)
	r := mustInvoke(t, lh, `{}`)
	if r.Outcome != upgrade.OutcomeUnverified || r.Reason != upgrade.ReasonOffline || !strings.Contains(r.Error, "since the upgrade to") {
		t.Fatalf("next night: %+v", r)
	}
	if rec := lh.ledger.row(g.ID); rec.Attempts != 2 || !rec.PenaltyUntil.After(lh.clock.Now()) {
		t.Fatalf("next night's record: %+v", rec)
	}
	if r := mustInvoke(t, lh, `{}`); r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonPenalty {
		t.Fatalf("in the penalty box: %+v", r)
	}
	if n := sag.count("Update", g.ID); n != 1 {
		t.Fatalf("%d update calls, want 1", n)
	}
}
