package handler

import (
	"encoding/json"
	"errors"
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
	if plan.Fanout == nil || plan.Fanout.Gateways != 540 || plan.Fanout.Batches != 27 || plan.Fanout.Failed != 0 {
		t.Fatalf("fanout %+v: want 540 gateways in 27 batches", plan.Fanout)
	}
	if plan.Counts.Skipped != 60 || plan.Counts.Scanned != 600 {
		t.Fatalf("counts %+v: want 600 scanned, the 60 offline skipped", plan.Counts)
	}
	if atSend < 0 || atSend >= 12 {
		t.Fatalf("the first batch went after %d of the 12 listing pages", atSend)
	}
}

// The planner reads no gateway's ledger records: the workers read their
// batches'.
func TestPlannerReadsNoRecords(t *testing.T) {
	gws := fanFleet(120)
	lh, _ := newRolloutHarness(t, gws)
	lh.h.Config.RolloutCanary = 1000
	lh.h.Config.FanoutThreshold = 50
	lh.h.Config.BatchSize = 20
	var reads atomic.Int32
	lh.ledger.fail = func(op string) error {
		if op == "Get" {
			reads.Add(1)
		}
		return nil
	}
	plan, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Fanout == nil || plan.Fanout.Gateways != 108 {
		t.Fatalf("fanout %+v", plan.Fanout)
	}
	if n := reads.Load(); n != 0 {
		t.Fatalf("the planner read records %d times", n)
	}
	outcomes := map[string]int{}
	for _, r := range append([]events.Report{plan}, lh.drain(t)...) {
		for _, res := range r.Results {
			outcomes[res.SmartAGID]++
		}
	}
	if reads.Load() == 0 {
		t.Fatal("the workers read no records")
	}
	for _, g := range gws {
		if outcomes[g.ID] != 1 {
			t.Errorf("%s: %d outcomes over the planner and its workers", g.ID, outcomes[g.ID])
		}
	}
}

// A region whose listing fails half way: its failure is reported, the
// batches of what it listed stand, and no gateway gets two outcomes.
func TestPlannerWithARegionFailingMidway(t *testing.T) {
	gws := fanFleet(600)
	lh, sag := newRolloutHarness(t, gws)
	lh.h.Config.RolloutCanary = 1000
	lh.h.Config.FanoutThreshold = 50
	lh.h.Config.BatchSize = 20
	sag.fail = func(action, id string, n int) error {
		if action == "List" && id == "ap-southeast-1" && n == 3 {
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
	if plan.Fanout == nil || plan.Fanout.Gateways != 420 {
		t.Fatalf("fanout %+v: want 420 gateways", plan.Fanout)
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
	outcomes := map[string]int{}
	for _, r := range append([]events.Report{plan}, lh.drain(t)...) {
		for _, res := range r.Results {
			if res.SmartAGID != "" {
				outcomes[res.SmartAGID]++
			}
		}
	}
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
