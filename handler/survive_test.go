package handler

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// settledGoroutines waits briefly for goroutines that are ending to end, and
// returns how many are left.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// A panic on the run's own path (here the gate, reading a rollout's
// document) ends the request, not the run: every gateway it had not settled
// fails with internal_error, the report and run.completed still come, the
// invocation fails, and no goroutine of the run outlives it.
func TestPanicOnTheRunsPathEndsWithAReport(t *testing.T) {
	gws := gateways("sag-%02d", 40, "2.0.8")
	lh := newLedgerHarness(t, upgradingSAG(gws...))
	lh.h.Config.MaxConcurrency = 2
	var reads atomic.Int64
	lh.ledger.onGetDoc = func(id string) {
		// The gate's reads, not the pause read before each call (a panic
		// there is the call's: TestAcceptedCallStaysRequestedAfterAPanic).
		if strings.HasPrefix(id, "rollout#") && strings.Contains(string(debug.Stack()), "(*gate).admit") && reads.Add(1) == 2 {
			panic("a rollout document the code cannot read")
		}
	}
	before := runtime.NumGoroutine()
	report, err := lh.invoke(t, `{}`)
	var internal *InternalError
	if !errors.As(err, &internal) || !strings.Contains(err.Error(), "a rollout document") {
		t.Fatalf("the invocation: %v", err)
	}
	if len(report.Results) != len(gws) {
		t.Fatalf("%d results for %d gateways", len(report.Results), len(gws))
	}
	failed := 0
	for _, r := range report.Results {
		switch {
		case r.Outcome == upgrade.OutcomeFailed && r.Reason == upgrade.ReasonInternal:
			failed++
		case r.Outcome != upgrade.OutcomeRequested:
			t.Fatalf("%s: %s/%s", r.SmartAGID, r.Outcome, r.Reason)
		}
	}
	if failed == 0 || report.Counts.Requested == 0 {
		t.Fatalf("counts %+v", report.Counts)
	}
	evs := lh.pub.events
	if last := evs[len(evs)-1]; last.Type != events.RunCompletedType {
		t.Fatalf("the last event is %s", last.Type)
	}
	if n := settledGoroutines(before); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after the invocation, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A panic after the service accepted the update call (here, writing the
// call's result to the ledger) leaves the gateway requested, with the
// call's RequestId: an upgrade is under way.
func TestAcceptedCallStaysRequestedAfterAPanic(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8")))
	lh.ledger.onPut = func(r Record) {
		if r.Gateway == "sag-a" && r.State == StateRequested {
			panic("the ledger adapter")
		}
	}
	report, _ := lh.invoke(t, `{}`)
	res := byID(report)
	if r := res["sag-a/Device"]; r.Outcome != upgrade.OutcomeRequested || r.RequestID != "REQ-sag-a" {
		t.Fatalf("the accepted call: %+v", r)
	}
	if r := res["sag-b/Device"]; r.Outcome != upgrade.OutcomeRequested {
		t.Fatalf("the other gateway: %+v", r)
	}
}

// A panic in the publisher loses no event and keeps the process: the event
// in hand is kept for a later run.
func TestPublisherPanicKeepsTheEvent(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8")))
	lh.pub.fail = func(ev events.CloudEvent) error {
		if ev.Subject == "sag-a" {
			panic("the MNS adapter")
		}
		return nil
	}
	report, err := lh.invoke(t, `{}`)
	if err != nil || report.Publishing.Kept != 1 || len(lh.ledger.kept) != 1 || lh.ledger.kept[0].Event.Subject != "sag-a" {
		t.Fatalf("%v: publishing %+v, kept %+v", err, report.Publishing, lh.ledger.kept)
	}
}

// A panic while listing a region fails that region and no other.
func TestListingPanicFailsItsRegion(t *testing.T) {
	a, b := gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8")
	b.Region = "ap-southeast-1"
	sag := upgradingSAG(a, b)
	sag.fail = func(action, id string, n int) error {
		if action == "List" && id == "ap-southeast-1" {
			panic("the SAG adapter")
		}
		return nil
	}
	lh := newLedgerHarness(t, sag)
	lh.h.Config.Regions = []string{"cn-shanghai", "ap-southeast-1"}
	report, _ := lh.invoke(t, `{}`)
	if len(report.Results) != 2 {
		t.Fatalf("results %+v", report.Results)
	}
	for _, r := range report.Results {
		switch r.RegionID {
		case "cn-shanghai":
			if r.Outcome != upgrade.OutcomeRequested {
				t.Fatalf("the region that listed: %+v", r)
			}
		default:
			if r.Outcome != upgrade.OutcomeFailed || r.Reason != upgrade.ReasonInternal || !strings.Contains(r.Error, "the SAG adapter") {
				t.Fatalf("the region whose listing panicked: %+v", r)
			}
		}
	}
}

// No SDK call without a context starts so late that its goroutine, which
// the call's timeout ends, would outlive the invocation: the run stops
// starting calls (stopAt), publishing (publishBy) and keeping events (keepBy)
// at least one call timeout before the deadline, when the invocation is long
// enough for it (FC's timeout is minutes; tests use seconds).
func TestTimeBudgetLeavesRoomForTheLastCall(t *testing.T) {
	h := &Handler{}
	const callTimeout = 5 * time.Second
	start := testNow
	for _, total := range []time.Duration{20 * time.Second, time.Minute, 15 * time.Minute} {
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(total))
		b := h.timeBudget(ctx, start, callTimeout)
		cancel()
		for name, last := range map[string]time.Time{"stopAt": b.stopAt, "publishBy": b.publishBy, "keepBy": b.keepBy} {
			if last.Add(callTimeout).After(b.deadline) {
				t.Errorf("%v: a call started at %s (%v before the deadline) outlives it", total, name, b.deadline.Sub(last))
			}
		}
		if !b.stopAt.Before(b.endAt) || !b.endAt.Before(b.deadline) || !b.publishBy.Before(b.keepBy) || !b.stopAt.After(start) {
			t.Errorf("%v: budget out of order: %+v", total, b)
		}
	}
}

// A bug met by one gateway (here a panic in the SAG adapter, while planning
// one gateway and while requesting another's upgrade) fails that gateway
// alone, with the panic in the log: the run goes on, the other gateways are
// upgraded, and the report comes back.
func TestPanicFailsOneGatewayNotTheRun(t *testing.T) {
	gws := gateways("sag-p%02d", 20, "2.0.8")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		switch {
		case action == "Versions" && id == "sag-p03":
			panic("adapter bug in a version list")
		case action == "Update" && id == "sag-p11":
			panic("adapter bug in an update")
		}
		return nil
	}
	hs := newHarness(t, sag, func(c *Config) { c.VersionTypes = []upgrade.VersionType{upgrade.VersionDevice} })
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	if len(report.Results) != 20 {
		t.Fatalf("%d results for 20 gateways", len(report.Results))
	}
	for _, id := range []string{"sag-p03", "sag-p11"} {
		if r := got[id+"/Device"]; r.Outcome != upgrade.OutcomeFailed || r.Reason != upgrade.ReasonInternal || !strings.Contains(r.Error, "adapter bug") {
			t.Errorf("%s: %+v, want failed/%s", id, r, upgrade.ReasonInternal)
		}
	}
	if report.Counts.Requested != 18 {
		t.Errorf("counts %+v: want the 18 other gateways requested", report.Counts)
	}
	if n := strings.Count(hs.logs.String(), "gateway aborted by a panic"); n != 2 {
		t.Errorf("%d panic log lines, want 2", n)
	}
}
