package handler

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// The planner sends its first batches while it lists, so the workers' reads
// begin with the first listing pages rather than after the last.
func TestPlannerSendsBatchesBeforeTheListingEnds(t *testing.T) {
	gws := fanFleet(600) // 300 a region: 6 listing pages each
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.FanoutThreshold = 50
	lh.h.Config.BatchSize = 20
	var pages atomic.Int32 // listing pages answered
	atSend := int32(-1)    // ... when the first batch was sent
	sent := make(chan struct{})
	var once sync.Once
	lh.queue.onSend = func([]QueueMessage) {
		once.Do(func() {
			atSend = pages.Load()
			close(sent)
		})
	}
	sag.onList = func(region string, lf ListFilter, page int) {
		if len(lf.IDs) > 0 || lf.Model != "" || lf.Below != "" {
			return
		}
		if page == 6 {
			// The last page waits for the first batch (or a while, for
			// a planner that sends none before it).
			select {
			case <-sent:
			case <-time.After(2 * time.Second):
			}
		}
		pages.Add(1)
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 540 || f.Batches+f.Kept/20 != 27 || f.Failed != 0 {
		t.Fatalf("fanout %+v: want 540 gateways in 27 batches, sent or kept", plan.Fanout)
	}
	if plan.Counts.Skipped != 60 || plan.Counts.Scanned != 600 {
		t.Fatalf("counts %+v: want 600 scanned, the 60 offline skipped", plan.Counts)
	}
	if atSend < 0 || atSend >= 12 {
		t.Fatalf("the first batch went after %d of the 12 listing pages", atSend)
	}
}

// The planner reads no ledger record of the gateways it sends: the workers
// read their batches'. It reads those of the batches it keeps.
func TestPlannerReadsNoRecordsOfWhatItSends(t *testing.T) {
	gws, lh, _ := newPlannerHarness(t, 120, 20)
	var mu sync.Mutex
	read := map[string]bool{}
	lh.ledger.onGet = func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			read[id] = true
		}
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 108 {
		t.Fatalf("fanout %+v", plan.Fanout)
	}
	kept := map[string]bool{}
	for _, res := range plan.Results {
		if res.Outcome != upgrade.OutcomeSkipped {
			kept[res.SmartAGID] = true
		}
	}
	mu.Lock()
	for id := range read {
		if !kept[id] {
			t.Errorf("the planner read the records of %s, which it sent", id)
		}
	}
	if len(read) != plan.Fanout.Kept {
		t.Errorf("the planner read the records of %d gateways, want the %d it kept", len(read), plan.Fanout.Kept)
	}
	clear(read)
	mu.Unlock()
	outcomes := nightOutcomes(t, lh, plan)
	mu.Lock()
	if len(read) == 0 {
		t.Fatal("the workers read no records")
	}
	mu.Unlock()
	eachOnce(t, gws, outcomes)
}

// A region whose listing fails half way: its failure is reported, the
// batches of what it listed stand, and no gateway gets two outcomes.
func TestPlannerWithARegionFailingMidway(t *testing.T) {
	gws, lh, sag := newPlannerHarness(t, 600, 20)
	sag.pageFails = func(region string, lf ListFilter, page int) error {
		if region == "ap-southeast-1" && len(lf.IDs) == 0 && page == 4 {
			return errors.New("the region's endpoint is gone")
		}
		return nil
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	regionFailed := false
	for _, res := range plan.Results {
		regionFailed = regionFailed || res.SmartAGID == "" && res.RegionID == "ap-southeast-1" &&
			res.Outcome == upgrade.OutcomeFailed && res.Reason == upgrade.ReasonListFailed
	}
	if !regionFailed {
		t.Fatalf("no failure of ap-southeast-1's listing in %+v", plan.Results)
	}
	// 300 eligible in cn-shanghai, 120 of the 150 listed in ap-southeast-1.
	if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 420 {
		t.Fatalf("fanout %+v: want 420 gateways sent or kept", plan.Fanout)
	}
	lh.queue.mu.Lock()
	for _, m := range lh.queue.msgs {
		var req events.Request
		json.Unmarshal([]byte(m.Body), &req)
		if len(req.GatewayIDs) == 0 || len(req.GatewayIDs) > 20 {
			t.Errorf("batch of %d gateways", len(req.GatewayIDs))
		}
	}
	lh.queue.mu.Unlock()
	outcomes := nightOutcomes(t, lh, plan)
	listed := 0 // of ap-southeast-1's, in the listing's order
	for _, g := range gws {
		want := 1
		if g.Region == "ap-southeast-1" {
			if listed++; listed > 150 {
				want = 0 // never listed: the region's failure stands for it
			}
		}
		if outcomes[g.ID] != want {
			t.Errorf("%s in %s: %d outcomes over the planner and its workers, want %d", g.ID, g.Region, outcomes[g.ID], want)
		}
	}
}

// The planner sweeps batches itself only within its run's limit: with
// MAX_UPGRADES_PER_RUN below a batch it keeps none, and sends them all.
func TestPlannerKeepsNoMoreThanItsRunLimit(t *testing.T) {
	for _, limit := range []int{10, 40} {
		_, lh, _ := newPlannerHarness(t, 600, 20)
		lh.h.Config.MaxUpgradesPerRun = limit
		plan, err := lh.invoke(t, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 540 || f.Kept > limit || limit < 20 && f.Kept != 0 {
			t.Fatalf("MAX_UPGRADES_PER_RUN %d: fanout %+v", limit, plan.Fanout)
		}
		if plan.Counts.Deferred != 0 {
			t.Fatalf("MAX_UPGRADES_PER_RUN %d: the planner deferred %d", limit, plan.Counts.Deferred)
		}
	}
}

// A listing page held back (a throttle retried) does not hold back the
// decision to fan out, nor the planner's first upgrades: the pages answered
// after it count. Held, ap-southeast-1's second page leaves 90 gateways
// handed in page order; its third makes 140, past the threshold of 100.
func TestAPageHeldBackDoesNotHoldBackTheFanOut(t *testing.T) {
	gws := gateways("sag-h%03d", 190, "2.0.8")
	for i := range gws {
		gws[i].Region = "ap-southeast-1"
		if i < 40 {
			gws[i].Region = "cn-shanghai"
		}
		gws[i].CcnID = fmt.Sprintf("ccn-%d", i%4)
	}
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.RolloutCanary = 1000
	lh.h.Config.FanoutThreshold = 100
	lh.h.Config.BatchSize = 20
	upgradedWhileHeld := false
	sag.onList = func(region string, lf ListFilter, page int) {
		if region != "ap-southeast-1" || page != 2 || len(lf.IDs) > 0 || lf.Model != "" || lf.Below != "" {
			return
		}
		// Held until the planner requests an upgrade (or a while, for one
		// that waits for this page).
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if len(sag.updatesSnapshot()) > 0 {
				upgradedWhileHeld = true
				return
			}
		}
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !upgradedWhileHeld {
		t.Fatal("no upgrade was requested while a listing page was held back")
	}
	if f := plan.Fanout; f == nil || f.Gateways+f.Kept != 190 || f.Failed != 0 {
		t.Fatalf("fanout %+v: want the 190 gateways sent or kept", plan.Fanout)
	}
	eachOnce(t, gws, nightOutcomes(t, lh, plan))
}

// The planner's first batch, read ahead, it sweeps as it listed it moments
// ago: listed again, it would wait behind the listing's pages.
func TestPlannerDoesNotListItsFirstBatchAgain(t *testing.T) {
	gws, lh, sag := newPlannerHarness(t, 600, 20)
	first := gws[0] // cn-shanghai's first: in its first batch
	var mu sync.Mutex
	relisted := 0
	sag.onList = func(region string, lf ListFilter, page int) {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(lf.IDs, first.ID) {
			relisted++
		}
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Fanout; f == nil || f.Kept == 0 {
		t.Fatalf("fanout %+v: want a batch kept", plan.Fanout)
	}
	swept := false
	for _, res := range plan.Results {
		swept = swept || res.SmartAGID == first.ID && res.Outcome == upgrade.OutcomeRequested
	}
	mu.Lock()
	defer mu.Unlock()
	if !swept || relisted != 0 {
		t.Fatalf("%s: upgrade requested by the planner %v, listed again %d times; want requested, not listed again",
			first.ID, swept, relisted)
	}
}

// A full sweep reads the versions of the batch it would keep from the first
// page on, before it knows whether it fans out; fanning out or not, no
// gateway is read twice.
func TestAFullSweepReadsWhileItLists(t *testing.T) {
	for _, threshold := range []int{500, 5000} { // fans out late, or not at all
		gws, lh, sag := newPlannerHarness(t, 600, 20)
		lh.h.Config.FanoutThreshold = threshold
		duringListing := false
		sag.onList = func(region string, lf ListFilter, page int) {
			if region != "cn-shanghai" || page != 2 || len(lf.IDs) > 0 || lf.Model != "" || lf.Below != "" {
				return
			}
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				for _, g := range gws[:40] { // cn-shanghai's first 20 among them: its first batch, read in their spread
					if sag.count("Versions", g.ID) > 0 {
						duringListing = true
						return
					}
				}
			}
		}
		plan, err := lh.invoke(t, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if !duringListing {
			t.Fatalf("threshold %d: no version read before the second listing page", threshold)
		}
		lh.drain(t)
		for _, g := range gws {
			if n := sag.count("Versions", g.ID); n > 1 {
				t.Errorf("threshold %d: %s read %d times (fanout %+v)", threshold, g.ID, n, plan.Fanout)
			}
		}
	}
}

// However long the listing, the planner sweeps keepBatches batches itself
// at most: their results stay in its report.
func TestPlannerKeepsAFewBatchesAtMost(t *testing.T) {
	_, lh, sag := newPlannerHarness(t, 2000, 10)
	lh.h.Config.MaxUpgradesPerRun = 1_000_000
	sag.onList = func(region string, lf ListFilter, page int) {
		if len(lf.IDs) == 0 && lf.Model == "" && lf.Below == "" {
			time.Sleep(60 * time.Millisecond) // a slow listing: 20 pages a region
		}
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := plan.Fanout; f == nil || f.Kept == 0 || f.Kept > keepBatches*10 || f.Gateways+f.Kept != 1800 {
		t.Fatalf("fanout %+v: want 1,800 gateways, %d kept at most", plan.Fanout, keepBatches*10)
	}
}

// A batch names its gateways in the order its sweep plans them (their
// spread), so the reads it makes while it lists them, in that order, are
// its first chunk's.
func TestBatchesNameTheirGatewaysInTheirSpread(t *testing.T) {
	gws, lh, _ := newPlannerHarness(t, 600, 20)
	lh.h.Config.MaxUpgradesPerRun = 0 // every batch is sent
	byID := map[string]Gateway{}
	for _, g := range gws {
		byID[g.ID] = g
	}
	if _, err := lh.invoke(t, `{}`); err != nil {
		t.Fatal(err)
	}
	lh.queue.mu.Lock()
	msgs := lh.queue.msgs
	lh.queue.mu.Unlock()
	batches := 0
	for _, m := range msgs {
		var req events.Request
		if err := json.Unmarshal([]byte(m.Body), &req); err != nil || req.Kind != upgrade.KindSweep {
			continue
		}
		batches++
		var batch []Gateway
		for _, id := range req.GatewayIDs {
			batch = append(batch, byID[id])
		}
		var want []string
		for _, g := range spreadGateways(batch) {
			want = append(want, g.ID)
		}
		if !slices.Equal(req.GatewayIDs, want) {
			t.Fatalf("a batch names %v, its spread is %v", req.GatewayIDs, want)
		}
	}
	if batches != 27 {
		t.Fatalf("%d batches sent, want 27", batches)
	}
}

// The planner reads its first batch ahead, while it lists, in the order
// its own sweep plans it: the first chunk's versions come first, and its
// calls need not wait for the rest of the batch's reads.
func TestThePlannerReadsItsFirstBatchInItsSpread(t *testing.T) {
	gws, lh, sag := newPlannerHarness(t, 120, 20)
	lh.h.Config.APIQPS = 100 // reads 10 ms apart, in a clear order
	// It does not fan out, and its listing's second page waits: only the
	// reads ahead are made meanwhile, none of a sweep's.
	lh.h.Config.FanoutThreshold = 5000
	sag.onList = func(region string, lf ListFilter, page int) {
		if page == 2 && len(lf.IDs) == 0 && lf.Model == "" && lf.Below == "" {
			time.Sleep(400 * time.Millisecond)
		}
	}
	var mu sync.Mutex
	var read []string // Versions calls, in order
	sag.fail = func(action, id string, n int) error {
		if action == "Versions" {
			mu.Lock()
			read = append(read, id)
			mu.Unlock()
		}
		return nil
	}
	// The timer's run, as the planner is: its lanes start at the ceiling
	// (another run's start slow, and its reads ahead would hardly begin in
	// the listing's wait).
	if _, err := lh.invoke(t, `{"triggerTime":"2026-11-22T18:00:00Z","triggerName":"nightly","payload":"{}"}`); err != nil {
		t.Fatal(err)
	}
	// The first batch: the first 20 eligible gateways of the first region.
	var first []Gateway
	for _, g := range gws {
		if g.Region == "cn-shanghai" && g.Status != "Offline" && len(first) < 20 {
			first = append(first, g)
		}
	}
	chunk := lh.h.Config.MaxConcurrency // the sweep's chunks
	var want []string
	for _, g := range spreadGateways(first)[:chunk] {
		want = append(want, g.ID)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(read) < chunk {
		t.Fatalf("%d version reads", len(read))
	}
	got := slices.Clone(read[:chunk])
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the first %d version reads were of %v, want the first chunk of the batch's spread %v", chunk, got, want)
	}
}
