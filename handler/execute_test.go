package handler

import (
	"errors"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestUpdateRetriedOnlyWhenCertainlyNotActedOn(t *testing.T) {
	cases := []struct {
		name        string
		err         *APIError
		startedRead bool // the device read after the failure shows the upgrade
		calls       int
		outcome     upgrade.Outcome
		reason      string
	}{
		{"throttled then accepted", &APIError{Code: "Throttling.User", Status: 400}, false, 2, upgrade.OutcomeRequested, ""},
		{"not sent then accepted", &APIError{NoAnswer: true, NotSent: true}, false, 2, upgrade.OutcomeRequested, ""},
		{"lost reply, upgrade visible", &APIError{NoAnswer: true}, true, 1, upgrade.OutcomeRequested, upgrade.ReasonConfirmed},
		{"internal error, no upgrade", &APIError{Code: "InternalError", Status: 500}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonUnconfirmed},
		{"HTML 502, no upgrade", &APIError{Status: 502, Message: "<html>"}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonUnconfirmed},
		{"offline meanwhile", &APIError{Code: "SmartAccessGatewayNotOnline", Status: 403}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonOffline},
		{"state unknown", &APIError{Code: "GetSmartAccessGatewayStateError", Status: 403}, false, 1, upgrade.OutcomeDeferred, upgrade.ReasonTryLater},
		{"already newer", &APIError{Code: "VersionTooOld", Status: 403}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonUpToDate},
		{"forbidden", &APIError{Code: "Forbidden", Status: 403}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonAPIError},
		{"in arrears", &APIError{Code: "SmartAccessGatewayInArrears", Status: 500}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := gateway("sag-x", "2.0.8")
			sag := newFakeSAG(g)
			sag.offered = catalog()
			sag.fail = func(action, id string, n int) error {
				if action == "Update" && n == 0 {
					c.err.Action = "UpdateSmartAccessGatewayVersion"
					return c.err
				}
				return nil
			}
			if c.startedRead {
				sag.details[g.ID] = Detail{Status: "Offline", Devices: []Device{{SerialNumber: "sn-sag-x", Software: "2.0.8"}}}
			}
			hs := newHarness(t, sag, nil)
			hs.h.Config.APIQPS = 1000
			report, err := hs.invoke(t, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			res := report.Results[0]
			if n := sag.count("Update", g.ID); n != c.calls {
				t.Errorf("%d update calls, want %d", n, c.calls)
			}
			if res.Outcome != c.outcome || res.Reason != c.reason {
				t.Errorf("outcome %s/%s, want %s/%s (%+v)", res.Outcome, res.Reason, c.outcome, c.reason, res)
			}
			if c.outcome != upgrade.OutcomeRequested && c.err.Code != "" && res.ErrorCode != c.err.Code {
				t.Errorf("errorCode %q, want %q", res.ErrorCode, c.err.Code)
			}
		})
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
