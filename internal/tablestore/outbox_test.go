package tablestore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

// Kept events go in with BatchWriteRow, 200 rows a call, come back oldest
// first (a later KeepEvents after the earlier), pages of GetRange included,
// and are deleted by key; documents and records are not mistaken for them.
func TestKeptEventsRoundTrip(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if err := e.ledger.Put(ctx, record("sag-a", 1, "claimed")); err != nil {
		t.Fatal(err)
	}
	var first, second []events.CloudEvent
	for i := range 450 {
		ev := events.OutcomeEvent("src", events.RunInfo{RunID: "run-1"}, upgrade.Result{SmartAGID: fmt.Sprintf("sag-%03d", i),
			Outcome: upgrade.OutcomeRequested, Message: "<\u2028\"quoted\">"}, t0)
		first = append(first, ev)
	}
	second = append(second, events.RunCompletedEvent("src", events.RunInfo{RunID: "run-1"}, upgrade.Counts{Requested: 450},
		events.Publishing{Kept: 450}, t0))
	if err := e.ledger.KeepEvents(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := e.ledger.KeepEvents(ctx, second); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Calls()["BatchWriteRow"]; n != 4 {
		t.Errorf("%d BatchWriteRow calls for 451 events; 200 rows a call makes 4", n)
	}
	all := append(first, second...)
	got, err := e.ledger.KeptEvents(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("%d kept events read back, want %d", len(got), len(all))
	}
	for i, k := range got {
		if k.Event.ID != all[i].ID || string(k.Event.Data) != string(all[i].Data) || !k.Event.Time.Equal(all[i].Time) {
			t.Fatalf("kept event %d: %+v, want %+v", i, k.Event, all[i])
		}
	}
	page, err := e.ledger.KeptEvents(ctx, 10)
	if err != nil || len(page) != 10 || page[9].Key != got[9].Key {
		t.Fatalf("the first 10: %d (%v)", len(page), err)
	}
	var keys []string
	for _, k := range got[:449] {
		keys = append(keys, k.Key)
	}
	if err := e.ledger.DropEvents(ctx, keys); err != nil {
		t.Fatal(err)
	}
	left, err := e.ledger.KeptEvents(ctx, 1000)
	if err != nil || len(left) != 2 || left[1].Event.Type != events.RunCompletedType {
		t.Fatalf("after dropping 449: %+v (%v)", left, err)
	}
	if recs, _ := e.ledger.Get(ctx, upgrade.VersionDevice, []string{"sag-a"}); len(recs) != 1 {
		t.Fatal("the record went with the events")
	}
}

// A BatchWriteRow the service refuses is an error the handler can retry.
func TestKeepEventsFailure(t *testing.T) {
	e := setup(t)
	e.sim.FailNext("BatchWriteRow", 1, otssim.ServerBusy)
	err := e.ledger.KeepEvents(context.Background(), []events.CloudEvent{events.RunCompletedEvent("src", events.RunInfo{RunID: "r"},
		upgrade.Counts{}, events.Publishing{}, t0)})
	var temp interface{ Temporary() bool }
	if err == nil || !errors.As(err, &temp) || !temp.Temporary() {
		t.Fatalf("a busy server: %v", err)
	}
}
