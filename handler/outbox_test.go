package handler

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// run.completed is the run's last event, sent once every other event is out,
// and says how many were published: a consumer that takes it as "this run's
// outcomes are all in" misses none, even when one of them is slow to go out.
func TestRunCompletedIsTheLastEvent(t *testing.T) {
	sag := newFakeSAG(gateways("sag-%02d", 20, "2.0.8")...)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	hs.pub.delay = func(ctx context.Context, ev events.CloudEvent) {
		if ev.Subject == "sag-00" {
			time.Sleep(300 * time.Millisecond)
		}
	}
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	evs := hs.pub.events
	last := evs[len(evs)-1]
	if last.Type != events.RunCompletedType {
		t.Fatalf("the last event is %s %s, not run.completed", last.Type, last.Subject)
	}
	var data events.RunCompletedData
	if err := json.Unmarshal(last.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Events.Published != len(evs)-1 || data.Events.Kept != 0 || data.Events.Failed != 0 || len(evs) != len(report.Results)+1 {
		t.Fatalf("run.completed says %+v of %d events before it", data.Events, len(evs)-1)
	}
}

// The sweep goes at the API's pace whatever the topic does: a topic that
// does not answer holds back no gateway (the events wait, the run does not).
func TestSweepNeverWaitsForTheTopic(t *testing.T) {
	const n = 1100 // more events than the outbox ever buffered
	sag := newFakeSAG(gateways("sag-%04d", n, "2.0.8")...)
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.MaxUpgradesPerRun = n })
	release := make(chan struct{})
	hs.pub.delay = func(ctx context.Context, ev events.CloudEvent) {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	done := make(chan events.Report, 1)
	go func() { r, _ := hs.invoke(t, `{}`); done <- r }()
	deadline := time.Now().Add(30 * time.Second)
	for len(sag.updatesSnapshot()) < n {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("the sweep stalled at %d of %d upgrades while the topic hung", len(sag.updatesSnapshot()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-done; r.Counts.Requested != n || r.Publishing.Published != n+1 {
		t.Fatalf("counts %+v, publishing %+v", r.Counts, r.Publishing)
	}
}

// With the outcome topic down, the run gives up on it after a few attempts,
// keeps every event in the ledger, and says so in run.completed (itself
// kept, last). The next sweep publishes every kept event with its id; a
// control request or a verification does not.
func TestEventsKeptWhileTheTopicIsDownThenPublished(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateways("sag-%02d", 10, "2.0.8")...))
	down := lh.pub.downWhile(true)
	report, err := lh.invoke(t, `{"correlationId":"night-1"}`)
	if err != nil {
		t.Fatal(err)
	}
	p := report.Publishing
	// Every outcome event, the rollout's start and run.completed.
	if p.Published != 0 || p.Failed != 0 || p.Kept != len(report.Results)+2 {
		t.Fatalf("publishing %+v for %d results", p, len(report.Results))
	}
	if lh.pub.attempts > downAfter+publishWorkers {
		t.Fatalf("%d publish attempts on a topic that is down; it is given up after %d", lh.pub.attempts, downAfter)
	}
	kept := slices.Clone(lh.ledger.kept)
	if len(kept) != p.Kept {
		t.Fatalf("%d events in the ledger's outbox, report says %d", len(kept), p.Kept)
	}
	last := kept[len(kept)-1].Event
	var done events.RunCompletedData
	json.Unmarshal(last.Data, &done)
	if last.Type != events.RunCompletedType || done.Events.Kept != p.Kept-1 {
		t.Fatalf("the last kept event: %s %+v", last.Type, done.Events)
	}

	// The topic is back. A stop and a verification publish only their own.
	*down = false
	lh.invoke(t, `{"kind":"verify","gatewayIds":["sag-00"]}`)
	if len(lh.ledger.kept) != len(kept) {
		t.Fatalf("a verify run published kept events")
	}
	before := len(lh.pub.events)
	report, _ = lh.invoke(t, `{"gatewayIds":["sag-01"]}`)
	if report.Publishing.Republished != len(kept) || len(lh.ledger.kept) != 0 {
		t.Fatalf("the next sweep republished %d of %d kept events; %d still kept", report.Publishing.Republished, len(kept), len(lh.ledger.kept))
	}
	published := map[string]bool{}
	for _, ev := range lh.pub.events[before:] {
		published[ev.ID] = true
	}
	for _, k := range kept {
		if !published[k.Event.ID] {
			t.Fatalf("kept event %s %s not published with its id", k.Event.Type, k.Event.ID)
		}
	}
	if d := lh.ledger.docs[drainDoc]; !strings.Contains(string(d.Body), `"until":"0001-01-01T00:00:00Z"`) {
		t.Fatalf("the drain lease was not given back: %s", d.Body)
	}
}

// Kept events are published by one run at a time: while another run holds
// the drain lease, a sweep leaves them.
func TestOneRunAtATimePublishesKeptEvents(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8")))
	lh.ledger.kept = []KeptEvent{{Key: "outbox#1", Event: events.RunCompletedEvent("src", events.RunInfo{RunID: "run-old"},
		upgrade.Counts{}, events.Publishing{}, testNow)}}
	body, _ := json.Marshal(drainLease{RunID: "run-other", Until: testNow.Add(time.Minute)})
	lh.ledger.docs[drainDoc] = Doc{ID: drainDoc, Rev: 3, Body: body}
	if report, _ := lh.invoke(t, `{}`); report.Publishing.Republished != 0 || len(lh.ledger.kept) != 1 {
		t.Fatalf("published kept events under another run's lease: %+v", report.Publishing)
	}
	lh.clock.Advance(2 * time.Minute) // the other run died: its lease ends
	if report, _ := lh.invoke(t, `{}`); report.Publishing.Republished != 1 || len(lh.ledger.kept) != 0 {
		t.Fatalf("after the lease ended: %+v, %d kept", report.Publishing, len(lh.ledger.kept))
	}
}

// Without a ledger an event that cannot be published is not dropped: it is
// written whole into a log line.
func TestEventsWithoutALedgerAreLoggedWhole(t *testing.T) {
	sag := newFakeSAG(gateways("sag-%02d", 3, "2.0.8")...)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	hs.pub.fail = func(ev events.CloudEvent) error { return temporaryError{errors.New("ServiceUnavailable")} }
	report, _ := hs.invoke(t, `{}`)
	if report.Publishing.Failed != 4 || report.Publishing.Kept != 0 {
		t.Fatalf("publishing %+v", report.Publishing)
	}
	whole := 0
	for line := range strings.SplitSeq(hs.logs.String(), "\n") {
		var l struct {
			Message string            `json:"message"`
			Event   events.CloudEvent `json:"event"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.Contains(l.Message, "the event is whole in this line") && l.Event.ID != "" &&
			l.Event.SpecVersion == "1.0" && len(l.Event.Data) > 0 {
			whole++
		}
	}
	if whole != 4 {
		t.Fatalf("%d events whole in the log, want 4", whole)
	}
}

// A run soon after one that found the topic down, on the same instance,
// takes one failed attempt as the sign it still is (a night's batches do not
// each pay to learn it again), and a success clears the suspicion.
func TestTopicDownIsRememberedByTheInstance(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateways("sag-%02d", 6, "2.0.8")...))
	down := lh.pub.downWhile(true)
	lh.invoke(t, `{"gatewayIds":["sag-00"]}`)
	first := lh.pub.attempts
	if first < downAfter {
		t.Fatalf("the first run gave up after %d attempts", first)
	}
	report, _ := lh.invoke(t, `{"gatewayIds":["sag-01"]}`)
	if n := lh.pub.attempts - first; n > publishWorkers || report.Publishing.Kept == 0 {
		t.Fatalf("the next run made %d attempts on a topic this instance found down; kept %d", n, report.Publishing.Kept)
	}
	*down = false
	report, _ = lh.invoke(t, `{"gatewayIds":["sag-02"]}`)
	if report.Publishing.Kept != 0 || report.Publishing.Published == 0 || report.Publishing.Republished == 0 {
		t.Fatalf("the topic back: %+v", report.Publishing)
	}
}

// downWhile makes every publish fail while *down is true, and returns down.
func (p *fakePublisher) downWhile(initially bool) *bool {
	down := &initially
	p.fail = func(ev events.CloudEvent) error {
		if *down {
			return temporaryError{errors.New("ServiceUnavailable")}
		}
		return nil
	}
	return down
}

func TestPublishFailuresAreReported(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	tries := 0
	hs.pub.fail = func(ev events.CloudEvent) error {
		if ev.Subject == "sag-a" {
			tries++
			return temporaryError{errors.New("QpsLimitExceeded")}
		}
		return nil
	}
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Publishing.Failed != 1 || report.Publishing.Published != 1 || len(report.Publishing.Errors) != 1 || tries < 2 {
		t.Fatalf("publishing %+v after %d tries", report.Publishing, tries)
	}
	if !strings.Contains(hs.logs.String(), "outcome event not published") {
		t.Error("the publish failure is not logged")
	}
}
