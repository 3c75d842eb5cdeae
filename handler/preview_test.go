package handler

import (
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// A plan is a dry run judged as at the next window opening: outside the
// window it plans what the window will let through (no outside_window), it
// never fans out nor hands over even past the threshold, it writes nothing
// and calls nothing, and its report says when it was judged.
func TestPlanAsAtTheNextWindowOpening(t *testing.T) {
	gws := gateways("sag-p%02d", 12, "2.0.8")
	lh := newLedgerHarness(t, upgradingSAG(gws...))
	window, _ := ParseWindow("01:00-05:00", "Asia/Shanghai")
	lh.h.Config.Window = window
	lh.h.Config.FanoutThreshold = 2 // a sweep this size would fan out
	lh.h.Config.MaxUpgradesPerRun = 10
	lh.clock.Set(time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)) // noon in Shanghai: closed
	report, err := lh.invoke(t, `{"kind":"plan"}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Plan == nil || !report.Plan.NoFanout || !report.Plan.At["cn-shanghai"].Equal(time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)) {
		t.Fatalf("plan %+v", report.Plan)
	}
	if report.Fanout != nil || report.Continuation != nil || len(lh.queue.msgs) != 0 {
		t.Fatalf("a plan fanned out or handed over: %+v %+v", report.Fanout, report.Continuation)
	}
	if report.Counts.Planned != 10 || !report.DryRun {
		t.Fatalf("counts %+v", report.Counts)
	}
	for _, r := range report.Results {
		if r.Reason == upgrade.ReasonOutsideWindow {
			t.Fatalf("%s: outside_window in a plan judged at the opening", r.SmartAGID)
		}
	}
	if n := len(lh.sag.updatesSnapshot()); n != 0 {
		t.Fatalf("%d update calls", n)
	}
	if len(lh.ledger.docs) != 0 || len(lh.ledger.rows) != 0 {
		t.Fatalf("a plan wrote the ledger: %d documents, %d records", len(lh.ledger.docs), len(lh.ledger.rows))
	}
	// The same fleet swept now is held back by the window.
	report, _ = lh.invoke(t, `{"dryRun":true}`)
	if report.Counts.Planned != 0 {
		t.Fatalf("a dry sweep outside the window planned %d", report.Counts.Planned)
	}
}

// A release too young today but old enough at the opening is planned.
func TestPlanJudgesReleaseAgesAtTheOpening(t *testing.T) {
	sag := upgradingSAG(gateway("sag-a", "2.0.8"))
	now := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC) // noon in Shanghai; the window opens in 13 hours
	sag.offered = []Release{{Code: "2.3.1", Type: "release", Created: now.Add(-70 * time.Hour)}}
	lh := newLedgerHarness(t, sag)
	lh.h.Config.Window, _ = ParseWindow("01:00-05:00", "Asia/Shanghai")
	lh.h.Config.MinReleaseAge = 72 * time.Hour
	lh.clock.Set(now)
	report, _ := lh.invoke(t, `{"kind":"plan"}`)
	if len(report.Results) != 1 || report.Results[0].Outcome != upgrade.OutcomePlanned || report.Results[0].ToVersion != "2.3.1" {
		t.Fatalf("plan: %+v", report.Results)
	}
	report, _ = lh.invoke(t, `{"dryRun":true}`)
	if len(report.Results) != 1 || report.Results[0].Reason != upgrade.ReasonTooNew {
		t.Fatalf("a dry run now: %+v", report.Results)
	}
}
