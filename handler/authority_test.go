package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// envelopes wraps a request as each trigger would deliver it.
func envelopes(t *testing.T, request string) map[string]string {
	t.Helper()
	quoted, _ := json.Marshal(request)
	return map[string]string{
		"direct":        request,
		"timer payload": `{"triggerTime":"2026-11-22T17:05:00Z","triggerName":"nightly-sweep","payload":` + string(quoted) + `}`,
		"topic JSON": `{"TopicOwner":"123","TopicName":"sag-upgrade-requests","Subscriber":"123","SubscriptionName":"fc",` +
			`"MessageId":"M1","MessageMD5":"x","Message":` + string(quoted) + `,"PublishTime":1772474400040}`,
		"topic STREAM attrs": `{"body":` + string(quoted) + `,"attrs":{"Extend":"{}"}}`,
		"queue": `[{"specversion":"1.0","id":"e1","source":"acs:mns","type":"mns:Queue:SendMessage",` +
			`"subject":"acs:mns:cn-shanghai:123:queues/sag-upgrade-work","data":{"messageId":"Q1","messageBody":` + string(quoted) + `}}]`,
	}
}

// Control and force come only from the control endpoint, and there only in
// a direct invocation: from a topic, a queue or a timer payload they are
// rejected (and published as such), and the worker function, which triggers
// reach, rejects them even when they look direct (a STREAM-format topic body
// is byte for byte a direct invocation).
func TestControlOnlyFromTheControlEndpoint(t *testing.T) {
	for _, control := range []bool{false, true} {
		for _, request := range []string{`{"kind":"stop"}`, `{"kind":"resume"}`, `{"force":true}`,
			`{"kind":"reset","targetVersion":"2.3.1"}`, `{"kind":"pause","targetVersion":"2.3.1"}`,
			`{"kind":"unpause","targetVersion":"2.3.1"}`, `{"kind":"approve","targetVersion":"2.3.1","model":"sag-1000","wave":1}`} {
			for name, payload := range envelopes(t, request) {
				if control && name == "direct" {
					continue // the one place they are served: below
				}
				sag := upgradingSAG(gateway("sag-a", "2.0.8"))
				lh := newLedgerHarness(t, sag)
				lh.h.Control = control
				lh.ledger.docs[controlDoc] = Doc{ID: controlDoc, Rev: 1, Body: []byte(`{"killSwitch":true,"by":"incident-1"}`)}
				report, err := lh.invoke(t, payload)
				var rejected *RejectedError
				if !errors.As(err, &rejected) {
					t.Fatalf("control endpoint %v, %s %s: error %v, want a rejection", control, name, request, err)
				}
				if len(report.Results) != 1 || report.Results[0].Outcome != upgrade.OutcomeRejected || report.Results[0].Reason != upgrade.ReasonUnauthorized {
					t.Fatalf("control endpoint %v, %s %s: results %+v", control, name, request, report.Results)
				}
				if len(sag.updatesSnapshot()) != 0 || len(report.Control) != 0 {
					t.Fatalf("control endpoint %v, %s %s: %d update calls, control %+v", control, name, request, len(sag.updatesSnapshot()), report.Control)
				}
				if d := lh.ledger.docs[controlDoc]; d.Rev != 1 {
					t.Fatalf("control endpoint %v, %s %s: the kill switch was written: %s", control, name, request, d.Body)
				}
				rejectedEvents := 0
				for _, ev := range lh.pub.events {
					if ev.Type == events.OutcomeTypePrefix+"rejected" && strings.Contains(string(ev.Data), `"reason":"unauthorized"`) {
						rejectedEvents++
					}
				}
				if rejectedEvents != 1 {
					t.Fatalf("control endpoint %v, %s %s: %d sag.upgrade.rejected events", control, name, request, rejectedEvents)
				}
			}
		}
	}

	// The control endpoint, invoked directly: served.
	sag := upgradingSAG(gateway("sag-a", "2.0.8"))
	lh := newLedgerHarness(t, sag)
	lh.h.Control = true
	if _, err := lh.invoke(t, `{"kind":"stop"}`); err != nil {
		t.Fatal(err)
	}
	if on, _ := (&killSwitch{ledger: lh.ledger, lcall: &caller{maxTries: 1}}).on(t.Context()); !on {
		t.Fatal("a direct stop at the control endpoint did not stop")
	}
	if report, err := lh.invoke(t, `{"gatewayIds":["sag-a"],"force":true}`); err != nil || report.Results[0].Reason != upgrade.ReasonKillSwitch {
		t.Fatalf("forced sweep under the kill switch: %v %+v", err, report.Results)
	}
}

// A stop and a resume answer with the switch before and after, publish it,
// and say when nothing changed.
func TestControlAnswersWithBeforeAndAfter(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8")))
	report, err := lh.invoke(t, `{"kind":"stop","correlationId":"incident-7"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Results) != 0 || report.Counts != (upgrade.Counts{}) {
		t.Fatalf("a stop has no result entries: %+v %+v", report.Results, report.Counts)
	}
	if len(report.Control) != 1 {
		t.Fatalf("control: %+v", report.Control)
	}
	c := report.Control[0]
	if c.Kind != upgrade.KindStop || c.Subject != "killSwitch" || !c.Changed || *c.Before.KillSwitch || !*c.After.KillSwitch ||
		!strings.Contains(c.After.SetBy, "incident-7") {
		t.Fatalf("stop: %+v before %+v after %+v", c, c.Before, c.After)
	}
	var published []events.ControlData
	for _, ev := range lh.pub.events {
		if ev.Type == events.ControlTypePrefix+"stop" {
			var d events.ControlData
			json.Unmarshal(ev.Data, &d)
			published = append(published, d)
		}
	}
	if len(published) != 1 || published[0].CorrelationID != "incident-7" || !*published[0].After.KillSwitch {
		t.Fatalf("control events: %+v", published)
	}

	// Stopped already: nothing changes, and the answer says so.
	report, _ = lh.invoke(t, `{"kind":"stop"}`)
	if c := report.Control[0]; c.Changed || !*c.Before.KillSwitch || !*c.After.KillSwitch || !strings.Contains(c.After.SetBy, "incident-7") {
		t.Fatalf("a second stop: %+v", c)
	}
	report, _ = lh.invoke(t, `{"kind":"resume"}`)
	if c := report.Control[0]; c.Kind != upgrade.KindResume || !c.Changed || !*c.Before.KillSwitch || *c.After.KillSwitch {
		t.Fatalf("resume: %+v", c)
	}
}

// A stop that cannot be written fails the invocation, loudly, rather than
// leave the operator believing the fleet stopped; a write that loses races to
// other control requests is tried again until it lands.
func TestControlWriteFailureFailsTheInvocation(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8")))
	conflicts := 0
	lh.ledger.fail = func(op string) error {
		if op == "PutDoc" && conflicts < 7 {
			conflicts++
			return ErrConflict
		}
		return nil
	}
	report, err := lh.invoke(t, `{"kind":"stop"}`)
	if err != nil || !report.Control[0].Changed {
		t.Fatalf("a stop that lost 7 races: %v %+v", err, report.Control)
	}

	lh = newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8")))
	lh.ledger.fail = func(op string) error {
		if op == "PutDoc" {
			return errors.New("OTSAuthFailed: the ledger refuses the write")
		}
		return nil
	}
	_, err = lh.invoke(t, `{"kind":"stop","correlationId":"incident-8"}`)
	var failed *ControlError
	if !errors.As(err, &failed) || !strings.Contains(err.Error(), "OTSAuthFailed") {
		t.Fatalf("a stop the ledger refused: %v", err)
	}
	if !strings.Contains(lh.logs.String(), `"message":"control request failed"`) {
		t.Fatal("no log line says the control request failed")
	}
}

// A reset names a rollout: one the ledger does not hold is rejected, not
// silently done.
func TestResetOfNoRolloutIsRejected(t *testing.T) {
	lh := newLedgerHarness(t, upgradingSAG(gateway("sag-a", "2.0.8")))
	report, err := lh.invoke(t, `{"kind":"reset","targetVersion":"9.9.9"}`)
	var rejected *RejectedError
	if !errors.As(err, &rejected) || len(report.Results) != 1 || report.Results[0].Reason != upgrade.ReasonNotFound ||
		!strings.Contains(report.Results[0].Error, "9.9.9") {
		t.Fatalf("reset of no rollout: %v %+v", err, report.Results)
	}
}

// A forced sweep the operator fans out keeps its force on the workers, batch
// by batch as the planner recorded each in the ledger; a message someone else
// puts on the work queue cannot borrow it (another gateway in a recorded
// batch, an unknown batch id, a batch without one).
func TestForcedBatchesKeepTheirForceAndCannotBeForged(t *testing.T) {
	lh, sag := newRolloutHarness(t, rolloutFleet(30))
	lh.h.Config.FanoutThreshold = 10
	lh.h.Config.BatchSize = 10
	lh.h.Config.Window, _ = ParseWindow("10:00-11:00", "Asia/Shanghai") // closed at 02:00
	if _, err := lh.invoke(t, `{"force":true,"correlationId":"change-1"}`); err != nil {
		t.Fatal(err)
	}
	lh.queue.mu.Lock()
	msgs := lh.queue.msgs
	lh.queue.msgs = nil
	lh.queue.mu.Unlock()
	if len(msgs) < 2 {
		t.Fatalf("%d batches", len(msgs))
	}
	lh.h.Control = false // the workers: the work-queue trigger's function
	var first events.Request
	json.Unmarshal([]byte(msgs[0].Body), &first)
	forged := []string{
		strings.Replace(msgs[0].Body, `"gatewayIds":["`, `"gatewayIds":["sag-zz","`, 1),
		strings.Replace(msgs[0].Body, first.BatchID, "0000feedbeef", 1),
		strings.Replace(msgs[0].Body, `,"batchId":"`+first.BatchID+`"`, "", 1),
	}
	for i, body := range forged {
		report, err := lh.invoke(t, queueEvent(fmt.Sprintf("forged-%d", i), body))
		var rejected *RejectedError
		if !errors.As(err, &rejected) || report.Results[0].Reason != upgrade.ReasonUnauthorized {
			t.Fatalf("forged batch %d was served: %v %+v", i, err, report.Results)
		}
	}
	if n := len(sag.updatesSnapshot()); n != 0 {
		t.Fatalf("%d update calls from forged batches", n)
	}
	requested := 0
	for i, m := range msgs {
		report, err := lh.invoke(t, queueEvent(fmt.Sprintf("batch-%d", i), m.Body))
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		for _, r := range report.Results {
			if !r.Force {
				t.Fatalf("batch %d: %+v does not say force", i, r)
			}
			if r.Outcome == upgrade.OutcomeRequested {
				requested++
			}
		}
	}
	// Forced past the wave and outside the window: every gateway.
	if requested != 30 {
		t.Fatalf("%d forced upgrades, want 30", requested)
	}
}

// Without a ledger a forced sweep's batches could not be recorded, so it is
// never handed to the work queue: the run does the work itself.
func TestForcedSweepWithoutALedgerDoesNotFanOut(t *testing.T) {
	sag := newFakeSAG(gateways("sag-%02d", 30, "2.0.8")...)
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.FanoutThreshold, c.BatchSize = 10, 10 })
	queue := &fakeQueue{}
	hs.h.Connect = func(ctx context.Context, inv Invocation) (Cloud, error) {
		return Cloud{SAG: sag, Events: hs.pub, Work: queue}, nil
	}
	report, err := hs.invoke(t, `{"force":true}`)
	if err != nil || report.Fanout != nil || len(queue.msgs) != 0 || report.Counts.Requested != 30 {
		t.Fatalf("%v: fanout %+v, %d queued, counts %+v", err, report.Fanout, len(queue.msgs), report.Counts)
	}
}
