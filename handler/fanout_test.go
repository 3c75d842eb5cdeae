package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fanFleet is n gateways in two regions, every tenth one offline.
func fanFleet(n int) []Gateway {
	gws := rolloutFleet(n)
	for i := range gws {
		if i%10 == 9 {
			gws[i].Status = "Offline"
		}
	}
	return gws
}

// newPlannerHarness serves a fanFleet of n whose full sweep fans out past
// 50 eligible gateways, in batches of batchSize, every gateway let in by
// its rollout.
func newPlannerHarness(t *testing.T, n, batchSize int) ([]Gateway, *ledgerHarness, *fakeSAG) {
	gws := fanFleet(n)
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.RolloutCanary = 1000
	lh.h.Config.FanoutThreshold = 50
	lh.h.Config.BatchSize = batchSize
	return gws, lh, sag
}

// nightOutcomes drains the work queue after the planner's run and counts
// each gateway's outcomes over the planner's report and its workers'.
func nightOutcomes(t *testing.T, lh *ledgerHarness, plan events.Report) map[string]int {
	t.Helper()
	outcomes := map[string]int{}
	for _, r := range append([]events.Report{plan}, lh.drain(t)...) {
		for _, res := range r.Results {
			if res.SmartAGID != "" {
				outcomes[res.SmartAGID]++
			}
		}
	}
	return outcomes
}

// eachOnce checks that every gateway of gws has one outcome in outcomes.
func eachOnce(t *testing.T, gws []Gateway, outcomes map[string]int) {
	t.Helper()
	for _, g := range gws {
		if outcomes[g.ID] != 1 {
			t.Errorf("%s: %d outcomes over the planner and its workers", g.ID, outcomes[g.ID])
		}
	}
}

// drain runs every message of the work queue, as the queue trigger would,
// until it is empty, and returns the reports.
func (lh *ledgerHarness) drain(t *testing.T) []events.Report {
	t.Helper()
	var reports []events.Report
	for {
		lh.queue.mu.Lock()
		msgs := lh.queue.msgs
		lh.queue.msgs = nil
		lh.queue.mu.Unlock()
		if len(msgs) == 0 {
			return reports
		}
		for _, m := range msgs {
			var req events.Request
			json.Unmarshal([]byte(m.Body), &req)
			if req.Kind == upgrade.KindVerify {
				continue // verification has its own tests
			}
			r, err := lh.invoke(t, m.Body)
			if err != nil {
				t.Fatal(err)
			}
			reports = append(reports, r)
		}
	}
}

func TestPlannerFansOutAndWorkersHandleEachGatewayOnce(t *testing.T) {
	gws, lh, sag := newPlannerHarness(t, 120, 20)

	plan, err := lh.invoke(t, `{"correlationId":"night-5"}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 108 || f.Kept == 0 || f.Kept%20 != 0 || f.Failed != 0 {
		t.Fatalf("planner report: fanout %+v: want 108 gateways sent or kept, whole batches kept", plan.Fanout)
	}
	// While it listed it swept a batch (or more) itself.
	if plan.Counts.Skipped != 12 || plan.Counts.Requested != plan.Fanout.Kept {
		t.Fatalf("planner counts %+v: want the 12 offline skipped and its %d kept requested", plan.Counts, plan.Fanout.Kept)
	}
	if len(sag.updates) != plan.Fanout.Kept {
		t.Fatalf("the planner called for %d upgrades, want the %d it kept", len(sag.updates), plan.Fanout.Kept)
	}
	// The batches: a region each, BatchSize at most, every eligible gateway
	// once, those the planner kept in none.
	seen := map[string]int{}
	for _, res := range plan.Results {
		if res.Outcome == upgrade.OutcomeRequested {
			seen[res.SmartAGID]++
		}
	}
	lh.queue.mu.Lock()
	for _, m := range lh.queue.msgs {
		var req events.Request
		if err := json.Unmarshal([]byte(m.Body), &req); err != nil {
			t.Fatal(err)
		}
		if req.Kind == upgrade.KindVerify {
			continue // the kept batch's upgrades, to verify later
		}
		if len(req.Regions) != 1 || len(req.GatewayIDs) > 20 || req.ParentRunID != plan.RunID || req.CorrelationID != "night-5" {
			t.Fatalf("batch %s", m.Body)
		}
		for _, id := range req.GatewayIDs {
			seen[id]++
		}
	}
	lh.queue.mu.Unlock()
	if len(seen) != 108 {
		t.Fatalf("%d gateways in the batches, want 108", len(seen))
	}
	// The planner's event.
	found := false
	for _, ev := range lh.pub.events {
		found = found || ev.Type == events.PlannedType
	}
	if !found {
		t.Fatal("no sag.upgrade.run.planned event")
	}

	outcomes := nightOutcomes(t, lh, plan)
	for _, g := range gws {
		if outcomes[g.ID] != 1 {
			t.Errorf("%s: %d outcomes over the planner and its workers", g.ID, outcomes[g.ID])
		}
		if want := map[bool]int{true: 0, false: 1}[g.Status == "Offline"]; sag.count("Update", g.ID) != want {
			t.Errorf("%s: %d update calls", g.ID, sag.count("Update", g.ID))
		}
	}
}

// fanOutAll has a planner send every batch of gws (it keeps none), in
// batches of batchSize, and returns them in the order sent.
func fanOutAll(t *testing.T, gws []Gateway, batchSize int) (*ledgerHarness, *fakeSAG, []events.Request) {
	t.Helper()
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.FanoutThreshold = 10
	lh.h.Config.BatchSize = batchSize
	lh.h.Config.MaxUpgradesPerRun = 0 // the planner keeps no batch: every one is sent
	if plan, err := lh.invoke(t, `{}`); err != nil || plan.Fanout == nil {
		t.Fatalf("no fan-out: %v", err)
	}
	var sent []events.Request
	lh.queue.mu.Lock()
	defer lh.queue.mu.Unlock()
	for _, m := range lh.queue.msgs {
		var req events.Request
		if err := json.Unmarshal([]byte(m.Body), &req); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, req)
	}
	return lh, sag, sent
}

// The planner's batches take the regions in turns, so the workers, which
// take them in about that order, spread a canary across regions rather than
// giving all of it to the first region.
func TestFanOutBatchesTakeTheRegionsInTurns(t *testing.T) {
	gws := fanFleet(60) // 30 eligible in cn-shanghai, 24 in ap-southeast-1
	lh, sag, sent := fanOutAll(t, gws, 1)
	var regions []string
	for _, req := range sent {
		regions = append(regions, req.Regions[0])
	}
	if len(regions) != 54 {
		t.Fatalf("%d batches, want 54", len(regions))
	}
	// Alternating while both regions have batches left, then the rest of
	// the larger region.
	for i, region := range regions {
		want := lh.h.Config.Regions[i%2]
		if i >= 48 {
			want = "cn-shanghai"
		}
		if region != want {
			t.Fatalf("batch %d is in %s, want %s: %v", i, region, want, regions)
		}
	}
	lh.h.Config.MaxUpgradesPerRun = DefaultMaxUpgradesPerRun // the workers' own
	lh.drain(t)
	called := map[string]bool{}
	for _, u := range sag.updatesSnapshot() {
		for _, g := range gws {
			if strings.HasPrefix(u, g.ID+" ") {
				called[g.Region] = true
			}
		}
	}
	if n := len(sag.updatesSnapshot()); n != DefaultRolloutCanary || len(called) != 2 {
		t.Fatalf("the canary under fan-out: %d update calls in regions %v; want %d across both", n, called, DefaultRolloutCanary)
	}
}

// The night's last batches go in halves, so that the instances sharing the
// limit finish together: the night ends with the slowest one's last batch.
// Each region's last ones are held back while it is listed, and at its end
// cut in two, each half spread as the batch was; at most one batch in 20 of
// the region's, so that one instance, whose batches run one after another,
// gains hardly any batch edge.
func TestTheNightsLastBatchesGoInHalves(t *testing.T) {
	gws := fanFleet(1000)
	_, _, sent := fanOutAll(t, gws, 10)
	eligible := map[string]int{}
	for _, g := range gws {
		if g.Status != "Offline" {
			eligible[g.Region]++
		}
	}
	sizes := map[string][]int{}
	seen := map[string]int{}
	for _, req := range sent {
		sizes[req.Regions[0]] = append(sizes[req.Regions[0]], len(req.GatewayIDs))
		for _, id := range req.GatewayIDs {
			seen[id]++
		}
	}
	for region, n := range eligible {
		whole := (n + 9) / 10
		split := min(whole/20, tailBatches/2)
		got := sizes[region]
		if split == 0 || len(got) != whole+split {
			t.Fatalf("%s: %d eligible gateways in %d batches %v, want %d (%d cut in two)", region, n, len(got), got, whole+split, split)
		}
		for i, size := range got {
			if tail := i >= len(got)-2*split; tail && size > 5 || !tail && size != 10 {
				t.Fatalf("%s: batch %d of %d holds %d gateways: %v", region, i, len(got), size, got)
			}
		}
	}
	for _, g := range gws {
		if want := map[bool]int{true: 0, false: 1}[g.Status == "Offline"]; seen[g.ID] != want {
			t.Fatalf("%s is in %d batches, want %d", g.ID, seen[g.ID], want)
		}
	}
}

func TestSmallFleetsAndPartialSweepsDoNotFanOut(t *testing.T) {
	lh, _ := newRolloutHarness(t, fanFleet(40))
	lh.h.Config.FanoutThreshold = 50
	if r, _ := lh.invoke(t, `{}`); r.Fanout != nil || r.Counts.Requested == 0 {
		t.Fatalf("40 gateways under a threshold of 50 fanned out: %+v", r.Fanout)
	}
	lh.h.Config.FanoutThreshold = 5
	if r, _ := lh.invoke(t, `{"gatewayIds":["sag-r01","sag-r02","sag-r03","sag-r04","sag-r05","sag-r06","sag-r07"]}`); r.Fanout != nil {
		t.Fatal("a request naming gateways fanned out")
	}
}

// A run that cannot finish hands the rest over; the chain handles every
// gateway exactly once. On a loaded machine a chunk the run expected to
// plan before its stop may not make it: its gateways are deferred
// (deadline), a correct outcome a later run picks up, but one chunk at most.
func TestContinuationHandlesEveryGatewayOnce(t *testing.T) {
	gws := rolloutFleet(96)
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.RolloutCanary = 1000
	lh.h.Config.MaxConcurrency = 1 // chunks of 8
	lh.h.Config.APIQPS = 50
	lh.h.Config.DeadlineMargin = 100 * time.Millisecond
	// 96 gateways, a version list and an update each at 50 a second of each
	// action: about 2 s of work for 1 s, on an instance past its slow start.
	for _, region := range lh.h.Config.Regions {
		for a := range actions {
			warm(lh.h.instancePace().lane(region, a))
		}
	}
	lh.h.Connect = func(ctx context.Context, inv Invocation) (Cloud, error) {
		return Cloud{SAG: sag, Events: lh.pub, Ledger: lh.ledger, Work: lh.queue}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	first, err := lh.h.Invoke(ctx, Invocation{RequestID: "req-c"}, []byte(`{"correlationId":"long"}`))
	if err != nil {
		t.Fatal(err)
	}
	if first.Continuation == nil || !first.Continuation.Enqueued || first.Continuation.Remaining == 0 {
		t.Fatalf("no continuation: %+v", first.Continuation)
	}
	if got := len(first.Results) + first.Continuation.Remaining; got != 96 {
		t.Fatalf("%d results and %d continued, want 96 in all", len(first.Results), first.Continuation.Remaining)
	}
	outcomes := map[string]int{}
	last := map[string]upgrade.Result{}
	for _, r := range append([]events.Report{first}, lh.drain(t)...) {
		for _, res := range r.Results {
			outcomes[res.SmartAGID]++
			last[res.SmartAGID] = res
		}
	}
	late := 0
	for _, g := range gws {
		res, calls := last[g.ID], sag.count("Update", g.ID)
		if outcomes[g.ID] == 1 && calls == 0 && res.Outcome == upgrade.OutcomeDeferred && res.Reason == upgrade.ReasonDeadline {
			late++
			continue
		}
		if outcomes[g.ID] != 1 || calls != 1 {
			t.Errorf("%s: %d outcomes (%s/%s), %d update calls over the chain", g.ID, outcomes[g.ID], res.Outcome, res.Reason, calls)
		}
	}
	if late > 8 {
		t.Errorf("%d gateways deferred by the deadline: more than one chunk", late)
	}
}

func TestKnownAnswersCostNoCall(t *testing.T) {
	at, past, behind := gateway("sag-at", "2.2.0"), gateway("sag-past", "2.3.1"), gateway("sag-behind", "2.0.8")
	sag := newFakeSAG(at, past, behind)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, `{"targetVersion":"2.2.0","versionTypes":["Device"]}`)
	got := byID(report)
	if got["sag-at/Device"].Reason != upgrade.ReasonUpToDate || got["sag-past/Device"].Reason != upgrade.ReasonWouldDowngrade ||
		got["sag-behind/Device"].Outcome != upgrade.OutcomeRequested {
		t.Fatalf("results %+v", report.Results)
	}
	if sag.count("Versions", "sag-at")+sag.count("Versions", "sag-past") != 0 || sag.count("Versions", "sag-behind") != 1 {
		t.Fatal("a version list was asked for an answer the pin already gave")
	}
	// One invocation naming a gateway twice asks for its list once.
	sag2 := newFakeSAG(behind)
	sag2.offered = catalog()
	hs2 := newHarness(t, sag2, nil)
	batch := fmt.Sprintf(`[%s,%s]`, queueEvent("m1", `{"gatewayIds":["sag-behind"],"dryRun":true}`), queueEvent("m2", `{"gatewayIds":["sag-behind"],"dryRun":true}`))
	hs2.invoke(t, batch)
	if n := sag2.count("Versions", "sag-behind"); n != 1 {
		t.Fatalf("%d version lists for one gateway in one invocation", n)
	}
}

func queueEvent(id, body string) string {
	b, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "acs:mns", "type": "mns:Queue:SendMessage",
		"data": map[string]string{"messageId": id, "messageBody": body}})
	return string(b)
}
