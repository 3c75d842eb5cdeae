package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// sagCalls counts every call the fake SAG took.
func sagCalls(sag *fakeSAG) int {
	sag.mu.Lock()
	defer sag.mu.Unlock()
	n := 0
	for _, c := range sag.calls {
		n += c
	}
	return n
}

// status answers from the ledger alone: the rollouts with their pause and
// numbers, the kill switch, the last runs (not the queries), the kept
// events, the fleet's versions and the night's count; no SAG call.
func TestStatusFromTheLedgerAlone(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(10))
	lh.h.Config.MaxUpgradesPerNight = 100
	if _, err := lh.invoke(t, `{"correlationId":"night-1"}`); err != nil {
		t.Fatal(err)
	}
	lh.completeUpgrades(t, sag, "2.3.1") // verify requests: not runs the status lists
	lh.invoke(t, `{"kind":"pause","targetVersion":"2.3.1","operator":"alice"}`)
	lh.invoke(t, `{"kind":"stop","operator":"bob"}`)
	before := sagCalls(sag)
	report, err := lh.invoke(t, `{"kind":"status"}`)
	if err != nil {
		t.Fatal(err)
	}
	if sagCalls(sag) != before {
		t.Fatalf("status made %d SAG calls", sagCalls(sag)-before)
	}
	st := report.Status
	if st == nil {
		t.Fatal("no status in the report")
	}
	if len(st.Rollouts) != 1 || !st.Rollouts[0].Paused || st.Rollouts[0].Verified != 2 || st.Rollouts[0].Model != "sag-1000" ||
		st.Rollouts[0].NextWaveAt.IsZero() {
		t.Fatalf("rollouts %+v", st.Rollouts)
	}
	if st.KillSwitch.KillSwitch == nil || !*st.KillSwitch.KillSwitch || !strings.Contains(st.KillSwitch.SetBy, "bob") {
		t.Fatalf("kill switch %+v", st.KillSwitch)
	}
	var kinds []string
	for _, r := range st.Runs {
		kinds = append(kinds, string(r.Kind))
	}
	if strings.Join(kinds, " ") != "stop pause sweep" || st.Runs[2].CorrelationID != "night-1" || st.Runs[2].Counts.Requested != 2 {
		t.Fatalf("last runs %+v", st.Runs)
	}
	if st.NightUsed != 2 || st.NightLimit != 100 || st.KeptEvents != 0 {
		t.Fatalf("night %d of %d, kept %d", st.NightUsed, st.NightLimit, st.KeptEvents)
	}
	if st.Fleet == nil || len(st.Fleet.Regions) != 2 {
		t.Fatalf("fleet %+v", st.Fleet)
	}
	for _, fr := range st.Fleet.Regions {
		if len(fr.Versions) != 1 || fr.Versions[0].Version != "2.0.8" || fr.Versions[0].Gateways != 5 {
			t.Fatalf("fleet of %s: %+v", fr.Region, fr.Versions)
		}
	}
	// A status is not a run the status lists.
	report, _ = lh.invoke(t, `{"kind":"status"}`)
	if len(report.Status.Runs) != 3 {
		t.Fatalf("%d runs after a second status", len(report.Status.Runs))
	}
}

// history is a gateway's records and audit trail; of a gateway the ledger
// knows nothing of it is rejected, as is either query without a ledger.
func TestHistory(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(4))
	lh.invoke(t, `{"operator":"carol"}`)
	id := strings.Fields(sag.updatesSnapshot()[0])[0]
	report, err := lh.invoke(t, `{"kind":"history","gatewayIds":["`+id+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	h := report.History
	if h == nil || h.SmartAGID != id || len(h.Records) != 1 || h.Records[0].State != string(StateRequested) || h.Records[0].Target != "2.3.1" {
		t.Fatalf("history %+v", h)
	}
	var events []string
	for _, e := range h.Trail {
		events = append(events, e.Event)
	}
	if strings.Join(events, " ") != "claimed requested" {
		t.Fatalf("trail %v", events)
	}
	_, err = lh.invoke(t, `{"kind":"history","gatewayIds":["sag-nobody"]}`)
	var rejected *RejectedError
	if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "holds nothing of sag-nobody") {
		t.Fatalf("history of an unknown gateway: %v", err)
	}
	if _, err := lh.invoke(t, `{"kind":"history","gatewayIds":["sag-a","sag-b"]}`); !errors.As(err, &rejected) || !strings.Contains(err.Error(), "one gateway") {
		t.Fatalf("history of two gateways: %v", err)
	}
	hs := newHarness(t, upgradingSAG(), nil)
	for _, q := range []string{`{"kind":"status"}`, `{"kind":"history","gatewayIds":["sag-a"]}`} {
		report, err := hs.invoke(t, q)
		if !errors.As(err, &rejected) || report.Results[0].Reason != upgrade.ReasonNoLedger {
			t.Fatalf("%s without a ledger: %v", q, err)
		}
	}
}

// The look-only function answers status, history and plan invoked
// directly, and nothing else: not a sweep, not a control request, not a
// query from a trigger.
func TestQueryEndpointOnlyLooks(t *testing.T) {
	for _, c := range []struct {
		payload string
		served  bool
	}{
		{`{"kind":"status"}`, true},
		{`{"kind":"plan"}`, true},
		{`{"kind":"history","gatewayIds":["sag-a"]}`, true},
		{`{}`, false},
		{`{"kind":"sweep","dryRun":true}`, false},
		{`{"kind":"stop"}`, false},
		{`{"kind":"pause","targetVersion":"2.3.1"}`, false},
		{`{"kind":"verify","gatewayIds":["sag-a"]}`, false},
		{envelopes(t, `{"kind":"status"}`)["topic JSON"], false},
	} {
		sag := upgradingSAG(gateway("sag-a", "2.0.8"))
		lh := newLedgerHarness(t, sag)
		lh.h.Control, lh.h.Query = false, true
		lh.ledger.audit = append(lh.ledger.audit, upgrade.AuditEntry{Gateway: "sag-a", VersionType: upgrade.VersionDevice, Event: "claimed"})
		report, err := lh.invoke(t, c.payload)
		var rejected *RejectedError
		if served := !errors.As(err, &rejected); served != c.served {
			t.Fatalf("%s: served %v, want %v (%v)", c.payload, served, c.served, err)
		}
		if !c.served && report.Results[0].Reason != upgrade.ReasonUnauthorized {
			t.Fatalf("%s: %+v", c.payload, report.Results)
		}
		if n := len(sag.updatesSnapshot()); n != 0 {
			t.Fatalf("%s: %d update calls", c.payload, n)
		}
	}
}
