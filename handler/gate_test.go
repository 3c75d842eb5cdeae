package handler

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// queueBatch is an EventBridge batch of queue messages, one per body.
func queueBatch(bodies ...string) string {
	var elems []string
	for i, b := range bodies {
		quoted, _ := json.Marshal(b)
		elems = append(elems, fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"acs:mns","type":"mns:Queue:SendMessage",`+
			`"subject":"acs:mns:cn-shanghai:123:queues/work","data":{"messageId":"M%d","messageBody":%s}}`, i, i, quoted))
	}
	return "[" + strings.Join(elems, ",") + "]"
}

// Without a ledger too, one update call per gateway and run, whatever the
// messages repeat: a batch naming an HA pair in two messages calls once, and
// the second message's result says the run holds it already.
func TestOneCallPerGatewayAndRunWithoutALedger(t *testing.T) {
	ha := gateway("sag-ha", "2.0.8")
	ha.SerialNumbers, ha.BackupSoftwareVersion = []string{"sn-1", "sn-2"}, "2.0.8"
	sag := newFakeSAG(ha, gateway("sag-b", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, queueBatch(`{"gatewayIds":["sag-ha","sag-b"]}`, `{"gatewayIds":["sag-ha"]}`, `{"gatewayIds":["sag-b","sag-ha"]}`))
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, u := range sag.updatesSnapshot() {
		calls[strings.Fields(u)[0]]++
	}
	if calls["sag-ha"] != 1 || calls["sag-b"] != 1 {
		t.Fatalf("update calls %v; one each", calls)
	}
	if report.Counts.Requested != 2 || report.Counts.Skipped != 3 {
		t.Fatalf("counts %+v", report.Counts)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeSkipped && (r.Reason != upgrade.ReasonInProgress || !strings.Contains(r.Error, "named more than once")) {
			t.Fatalf("%s: %+v", r.SmartAGID, r)
		}
	}
}

// A gateway behind on both version types gets one update call a run, the
// firmware first whatever the order of VERSION_TYPES; its signature database
// waits, in a later run too, while the firmware upgrade is in flight.
func TestOneVersionTypeAtATime(t *testing.T) {
	for _, types := range [][]upgrade.VersionType{{upgrade.VersionDevice, upgrade.VersionDpi}, {upgrade.VersionDpi, upgrade.VersionDevice}} {
		sag := upgradingSAG(gateway("sag-a", "2.0.8"))
		sag.dpi = []Release{{Code: "1.9.0", Type: "release", Created: testNow.Add(-30 * day)}}
		lh := newLedgerHarness(t, sag)
		lh.h.Config.VersionTypes = types
		report, _ := lh.invoke(t, `{}`)
		if u := sag.updatesSnapshot(); len(u) != 1 || !strings.HasSuffix(u[0], " 2.3.1") {
			t.Fatalf("%v: update calls %v; want the firmware alone", types, u)
		}
		res := byID(report)
		if r := res["sag-a/Dpi"]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonTypeInFlight {
			t.Fatalf("%v: the signature database in the same run: %+v", types, r)
		}
		// The firmware is rebooting (requested, not verified): a later run
		// leaves the signature database alone too.
		lh.clock.Advance(DefaultUpgradeTime + time.Minute)
		// Back, but not on the target yet: in flight until verified or past
		// its deadline.
		sag.mu.Lock()
		sag.details["sag-a"] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-sag-a", Software: "2.0.8", Dpi: "1.7.0"}}}
		sag.mu.Unlock()
		report, _ = lh.invoke(t, `{"versionTypes":["Dpi"]}`)
		if u := sag.updatesSnapshot(); len(u) != 1 {
			t.Fatalf("%v: a Dpi run during the firmware upgrade called: %v", types, u)
		}
		if r := byID(report)["sag-a/Dpi"]; r.Reason != upgrade.ReasonTypeInFlight {
			t.Fatalf("%v: the signature database in a later run: %+v", types, r)
		}
	}
}

// Two runs that claim a gateway's two version types at once: the one that
// reads the other's claim after writing its own gives up its call.
func TestOtherTypeClaimedMeanwhileHoldsTheCall(t *testing.T) {
	sag := upgradingSAG(gateway("sag-a", "2.0.8"))
	lh := newLedgerHarness(t, sag)
	lh.ledger.fail = func(op string) error {
		if op == "Put" && lh.ledger.row("sag-a").State == "" {
			// As this run claims the firmware, another claims the DPI.
			lh.ledger.mu.Lock()
			lh.ledger.rows[key("sag-a", upgrade.VersionDpi)] = Record{Gateway: "sag-a", VersionType: upgrade.VersionDpi, Rev: 1,
				State: StateClaimed, Target: "1.9.0", LeaseUntil: testNow.Add(time.Hour)}
			lh.ledger.mu.Unlock()
		}
		return nil
	}
	report, _ := lh.invoke(t, `{}`)
	if u := sag.updatesSnapshot(); len(u) != 0 {
		t.Fatalf("called while the other type was claimed: %v", u)
	}
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonTypeInFlight {
		t.Fatalf("%+v", r)
	}
	if rec := lh.ledger.row("sag-a"); rec.State != StateReleased {
		t.Fatalf("the firmware claim was not given back: %s", rec.State)
	}
}

func TestRunLimitAndWindowDefer(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"), gateway("sag-c", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.MaxUpgradesPerRun = 2 })
	report, _ := hs.invoke(t, `{}`)
	if report.Counts.Requested != 2 || report.Counts.Deferred != 1 || len(sag.updates) != 2 {
		t.Fatalf("run limit: counts %+v, updates %v", report.Counts, sag.updates)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonRunLimit {
			t.Errorf("deferred %s for %q, want %s", r.SmartAGID, r.Reason, upgrade.ReasonRunLimit)
		}
	}

	// A dry run is the same path: the cap applies, without a call.
	sag = newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"), gateway("sag-c", "2.0.8"))
	sag.offered = catalog()
	hs = newHarness(t, sag, func(c *Config) { c.MaxUpgradesPerRun = 2 })
	report, _ = hs.invoke(t, `{"dryRun":true}`)
	if c := report.Counts; c.Planned != 2 || c.Deferred != 1 || c.Requested != 0 || len(sag.updates) != 0 {
		t.Fatalf("dry run with the run limit: counts %+v, updates %v", c, sag.updates)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonRunLimit {
			t.Errorf("dry run deferred %s for %q, want %s", r.SmartAGID, r.Reason, upgrade.ReasonRunLimit)
		}
	}

	sag = newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	w, _ := ParseWindow("03:00-05:00", "Asia/Shanghai") // testNow is 02:00 in Shanghai
	hs = newHarness(t, sag, func(c *Config) { c.Window = w })
	report, _ = hs.invoke(t, `{}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonOutsideWindow || len(sag.updates) != 0 {
		t.Fatalf("outside the window: %+v, updates %v", r, sag.updates)
	}
	report, _ = hs.invoke(t, `{"force":true,"correlationId":"ticket-1"}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeRequested || !r.Force {
		t.Fatalf("force: %+v", r)
	}
	if !strings.Contains(hs.logs.String(), `"force":true`) {
		t.Error("force is not recorded in the logs")
	}
}
