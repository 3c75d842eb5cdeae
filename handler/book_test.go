package handler

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

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
	if len(lh.ledger.audit) != 2 || lh.ledger.audit[0].Event != string(StateClaimed) || lh.ledger.audit[1].Event != string(StateRequested) {
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
