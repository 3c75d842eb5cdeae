package handler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
)

type ledgerHarness struct {
	*harness
	ledger *fakeLedger
	queue  *fakeQueue
	clock  *clock.Sim
}

func newLedgerHarness(t *testing.T, sag *fakeSAG) *ledgerHarness {
	// Waves are tested on their own (rollout_test.go): here every gateway is
	// let in.
	hs := newHarness(t, sag, func(c *Config) { c.LedgerTable = "ledger"; c.RolloutCanary = 1000 })
	lh := &ledgerHarness{harness: hs, ledger: newFakeLedger(), queue: &fakeQueue{}, clock: clock.NewSim(testNow)}
	hs.h.Clock = lh.clock.Now
	hs.h.Connect = func(ctx context.Context, inv Invocation) (Cloud, error) {
		return Cloud{SAG: sag, Events: hs.pub, Ledger: lh.ledger, Work: lh.queue}, nil
	}
	return lh
}

// upgradingSAG makes a device reboot when its update is accepted.
func upgradingSAG(gws ...Gateway) *fakeSAG {
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	sag.onUpdate = func(id, serial string) {
		sag.mu.Lock()
		defer sag.mu.Unlock()
		sag.details[id] = Detail{Status: "Offline", Devices: []Device{{SerialNumber: "sn-" + id, Software: "2.0.8"}}}
	}
	return sag
}

func finishUpgrade(sag *fakeSAG, id, version string) {
	sag.mu.Lock()
	defer sag.mu.Unlock()
	sag.details[id] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-" + id, Software: version}}}
	for i := range sag.gateways {
		if sag.gateways[i].ID == id {
			sag.gateways[i].SoftwareVersion = version
		}
	}
}

func TestClaimRequestVerify(t *testing.T) {
	sag := upgradingSAG(gateway("sag-a", "2.0.8"))
	lh := newLedgerHarness(t, sag)

	report, err := lh.invoke(t, `{"correlationId":"night-1"}`)
	if err != nil || report.Results[0].Outcome != upgrade.OutcomeRequested {
		t.Fatalf("first run: %+v %v", report.Results, err)
	}
	rec := lh.ledger.row("sag-a")
	if rec.State != StateRequested || rec.Target != "2.3.1" || rec.APIRequestID != "REQ-sag-a" || rec.RunID != report.RunID ||
		rec.RequestID != "req-1" || rec.Correlation != "night-1" || !rec.VerifyBy.After(testNow.Add(10*time.Minute)) {
		t.Fatalf("record after the update: %+v", rec)
	}
	if len(lh.ledger.audit) != 2 || lh.ledger.audit[0].Event != StateClaimed || lh.ledger.audit[1].Event != StateRequested {
		t.Fatalf("audit %+v", lh.ledger.audit)
	}
	// A verify request waits on the work queue for the upgrade to end.
	if len(lh.queue.msgs) != 1 || lh.queue.msgs[0].Delay < 10*time.Minute {
		t.Fatalf("verify messages %+v", lh.queue.msgs)
	}
	var verify events.Request
	json.Unmarshal([]byte(lh.queue.msgs[0].Body), &verify)
	if verify.Kind != upgrade.KindVerify || len(verify.GatewayIDs) != 1 || verify.GatewayIDs[0] != "sag-a" || verify.CorrelationID != "night-1" {
		t.Fatalf("verify request %s", lh.queue.msgs[0].Body)
	}

	// The same request again, at once: in progress, no second call.
	report, _ = lh.invoke(t, `{"correlationId":"night-1"}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonInProgress || len(sag.updates) != 1 {
		t.Fatalf("redelivery: %+v, updates %v", r, sag.updates)
	}

	// The verify request, after the reboot.
	lh.clock.Advance(11 * time.Minute)
	finishUpgrade(sag, "sag-a", "2.3.1")
	report, _ = lh.invoke(t, lh.queue.msgs[0].Body)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeVerified || len(report.Results) != 1 {
		t.Fatalf("verify: %+v", report.Results)
	}
	if rec := lh.ledger.row("sag-a"); rec.State != StateVerified || rec.Attempts != 0 || rec.VerifiedAt.IsZero() {
		t.Fatalf("record after verification: %+v", rec)
	}
	if n := len(sag.updates); n != 1 {
		t.Fatalf("%d update calls", n)
	}
}

func TestConcurrentWorkersCallOncePerGateway(t *testing.T) {
	var gws []Gateway
	for _, id := range []string{"sag-a", "sag-b", "sag-c", "sag-d", "sag-e", "sag-f", "sag-g", "sag-h"} {
		gws = append(gws, gateway(id, "2.0.8"))
	}
	sag := upgradingSAG(gws...)
	lh := newLedgerHarness(t, sag)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lh.invoke(t, `{}`)
		}()
	}
	wg.Wait()
	for _, g := range gws {
		if n := sag.count("Update", g.ID); n != 1 {
			t.Errorf("%s: %d update calls by three concurrent workers", g.ID, n)
		}
	}
}

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

// mustInvoke runs one invocation of a one-gateway fleet and returns its result.
func mustInvoke(t *testing.T, lh *ledgerHarness, payload string) upgrade.Result {
	t.Helper()
	report, _ := lh.invoke(t, payload)
	if len(report.Results) != 1 {
		t.Fatalf("%s: %d results, want 1: %+v", payload, len(report.Results), report.Results)
	}
	return report.Results[0]
}

func TestRefusedUpdateReleasesOrFails(t *testing.T) {
	for _, c := range []struct {
		code  string
		state State
		tries int
	}{{"Forbidden", StateFailed, 1}, {"SmartAccessGatewayNotOnline", StateReleased, 0}} {
		sag := upgradingSAG(gateway("sag-a", "2.0.8"))
		sag.fail = func(action, id string, n int) error {
			if action == "Update" {
				return &APIError{Action: "UpdateSmartAccessGatewayVersion", Code: c.code, Status: 403}
			}
			return nil
		}
		lh := newLedgerHarness(t, sag)
		lh.invoke(t, `{}`)
		if rec := lh.ledger.row("sag-a"); rec.State != c.state || rec.Attempts != c.tries {
			t.Errorf("%s: record %+v", c.code, rec)
		}
		if len(lh.queue.msgs) != 0 {
			t.Errorf("%s: a verify request for an upgrade that never started", c.code)
		}
	}
}

func TestNoLedgerNoCall(t *testing.T) {
	sag := upgradingSAG(gateway("sag-a", "2.0.8"))
	lh := newLedgerHarness(t, sag)
	lh.ledger.fail = func(op string) error { return errors.New("OTSServerBusy") } // not temporary: no retry
	report, err := lh.invoke(t, `{}`)
	// The ledger was down for every gateway: the invocation fails, after
	// its events, so FC's retry and onFailure see it.
	var unreachable *InfrastructureError
	if !errors.As(err, &unreachable) {
		t.Fatalf("a run the ledger's outage emptied: %v", err)
	}
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonLedgerDown || len(sag.updates) != 0 {
		t.Fatalf("ledger down: %+v, updates %v", r, sag.updates)
	}
	lh.ledger.fail = func(op string) error {
		if op == "Put" {
			return errors.New("OTSServerBusy")
		}
		return nil
	}
	report, _ = lh.invoke(t, `{}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonLedgerDown || len(sag.updates) != 0 {
		t.Fatalf("claim refused: %+v, updates %v", r, sag.updates)
	}
	hs := newHarness(t, sag, nil)
	report, _ = hs.invoke(t, `{"retryFailedOnly":true}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeRejected || r.Reason != upgrade.ReasonNoLedger {
		t.Fatalf("retryFailedOnly without a ledger: %+v", r)
	}
}
