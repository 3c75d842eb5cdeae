package handler

import (
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// twoWindows is a fleet of shanghai gateways in cn-shanghai and berlin in
// eu-central-1, each region with its own window.
func twoWindows(t *testing.T, shanghai, berlin int) (*ledgerHarness, *fakeSAG) {
	t.Helper()
	gws := gateways("sag-s%02d", shanghai, "2.0.8")
	for _, g := range gateways("sag-b%02d", berlin, "2.0.8") {
		g.Region = "eu-central-1"
		gws = append(gws, g)
	}
	sag := upgradingSAG(gws...)
	lh := newLedgerHarness(t, sag)
	cfg, err := ConfigFromEnv(env(map[string]string{"API_QPS": "1000", "SAG_REGIONS": "cn-shanghai,eu-central-1",
		"MAINTENANCE_WINDOWS": "cn-shanghai=01:00-05:00@Asia/Shanghai;eu-central-1=02:00-04:00@Europe/Berlin"}), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	lh.h.Config = cfg
	return lh, sag
}

// A sweep of the fleet lists only the regions whose window is open, and
// names the others with their next opening; a request naming a gateway of a
// closed region still answers for it.
func TestSweepListsOnlyOpenRegions(t *testing.T) {
	lh, sag := twoWindows(t, 3, 3)
	lh.h.Config.RolloutCanary = 100
	report, _ := lh.invoke(t, `{}`) // 02:00 in Shanghai, 19:00 in Berlin
	// Berlin is counted (one filtered page per model, for the waves' shares),
	// not swept: none of its gateways is read or reported.
	if sag.count("List", "eu-central-1") != 1 || sag.count("Devices", "sag-b00") != 0 || report.Counts.Requested != 3 ||
		len(report.Results) != 3 {
		t.Fatalf("Berlin listed %d times, %d results, %d requested", sag.count("List", "eu-central-1"), len(report.Results), report.Counts.Requested)
	}
	if at := report.RegionsClosed["eu-central-1"]; !at.Equal(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)) || len(report.RegionsClosed) != 1 {
		t.Fatalf("regions closed: %v", report.RegionsClosed)
	}
	report, _ = lh.invoke(t, `{"gatewayIds":["sag-b01"]}`)
	if len(report.Results) != 1 || report.Results[0].Reason != upgrade.ReasonOutsideWindow {
		t.Fatalf("a named gateway of a closed region: %+v", report.Results)
	}
	lh.clock.Set(time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)) // 09:30 in Shanghai, 02:30 in Berlin
	reads := sag.count("Devices", "sag-s00")
	report, _ = lh.invoke(t, `{}`)
	if sag.count("Devices", "sag-s00") != reads || report.Counts.Requested != 3 || len(report.RegionsClosed) != 1 {
		t.Fatalf("Berlin's window: Shanghai read again %v, %d requested, closed %v",
			sag.count("Devices", "sag-s00") != reads, report.Counts.Requested, report.RegionsClosed)
	}
}

// A wave is shared among the regions in proportion to the model's gateways
// in each: the window that opens first takes its part of the canary, not the
// whole of it, even on the first night (the closed region is counted).
func TestWaveSharedAmongRegions(t *testing.T) {
	lh, sag := twoWindows(t, 30, 10)
	lh.h.Config.RolloutCanary = 8
	report, _ := lh.invoke(t, `{}`)   // Shanghai's window
	if report.Counts.Requested != 6 { // ⌈8 × 30/40⌉
		t.Fatalf("Shanghai's window: %d requested, want 6 of the canary's 8", report.Counts.Requested)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonWave {
			t.Fatalf("%s: %s", r.SmartAGID, r.Reason)
		}
	}
	lh.clock.Set(time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)) // Berlin's window
	report, _ = lh.invoke(t, `{}`)
	if report.Counts.Requested != 2 { // ⌈8 × 10/40⌉, and the canary's last two
		t.Fatalf("Berlin's window: %d requested, want 2", report.Counts.Requested)
	}
	if n := updateCalls(sag); n != 8 {
		t.Fatalf("%d update calls in the canary of 8", n)
	}
	// The counts are kept for the batches of a fan-out, which count none.
	if d, ok, _ := lh.ledger.GetDoc(t.Context(), sizesDoc); !ok || string(d.Body) != `{"sag-1000":{"cn-shanghai":30,"eu-central-1":10}}` {
		t.Fatalf("stored counts: %s", d.Body)
	}
}

// Daylight saving: on the day Berlin springs forward its 02:00-04:00 window
// opens at 03:00 CEST (01:00 UTC) and lasts an hour.
func TestRegionWindowOnASpringForwardDay(t *testing.T) {
	lh, sag := twoWindows(t, 1, 1)
	lh.h.Config.RolloutCanary = 100
	lh.clock.Set(time.Date(2027, 3, 28, 0, 30, 0, 0, time.UTC)) // 01:30 CET
	for i := range sag.gateways {
		sag.gateways[i].EndTime = lh.clock.Now().Add(300 * day)
	}
	report, _ := lh.invoke(t, `{}`)
	if at := report.RegionsClosed["eu-central-1"]; !at.Equal(time.Date(2027, 3, 28, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("before the window: closed %v", report.RegionsClosed)
	}
	lh.clock.Set(time.Date(2027, 3, 28, 1, 15, 0, 0, time.UTC)) // 03:15 CEST
	report, _ = lh.invoke(t, `{}`)
	if _, closed := report.RegionsClosed["eu-central-1"]; closed || sag.count("Update", "sag-b00") != 1 {
		t.Fatalf("inside the window: closed %v, %d update calls", report.RegionsClosed, sag.count("Update", "sag-b00"))
	}
}
