package e2e_test

// The ledger end to end: redeliveries, FC retries, parallel workers, a crash
// between claim and call, and Tablestore faults each leave every gateway with
// at most one update call.

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// outdated returns n gateways that a sweep upgrades, none of those in used.
func (w *world) outdated(n int, used map[string]bool) []string {
	var ids []string
	for _, g := range w.Cloud.Fleet.Gateways {
		if len(ids) < n && g.Case == fleet.CaseOutdated && !used[g.SmartAGID] {
			ids = append(ids, g.SmartAGID)
			used[g.SmartAGID] = true
		}
	}
	return ids
}

func naming(ids []string, correlation string) []byte {
	b, _ := json.Marshal(events.Request{GatewayIDs: ids, CorrelationID: correlation})
	return b
}

// ledgerState is the state column of a gateway's Device record.
func (w *world) ledgerState(id string) string {
	for _, row := range w.Cloud.OTS.Rows(cloudsim.LedgerTable) {
		pk, _ := row.PrimaryKey[0].Value.(string)
		sk, _ := row.PrimaryKey[1].Value.(string)
		if pk == id && sk == "state#Device" {
			s, _ := row.Get("state")
			str, _ := s.(string)
			return str
		}
	}
	return ""
}

func TestOneRequestDeliveredThreeTimesCallsOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ids := w.outdated(20, map[string]bool{})
	// The MNS topic trigger's JSON envelope, as MNS delivers it each time.
	payload, _ := json.Marshal(map[string]any{
		"TopicOwner": w.Cloud.Fleet.AccountID, "TopicName": cloudsim.RequestsTopic, "Subscriber": w.Cloud.Fleet.AccountID,
		"SubscriptionName": "fc", "MessageId": "5F290C926D472878-1-19A1", "MessageMD5": "C5DD56A39F5F7BB8B3337C6D11B6D8C7",
		"Message": string(naming(ids, "change-7")), "PublishTime": 1795370400000,
	})
	var runIDs []string
	for delivery := 1; delivery <= 3; delivery++ {
		res, report := w.invoke(payload)
		if res.Failed {
			t.Fatalf("delivery %d: %s", delivery, res.Body)
		}
		runIDs = append(runIDs, report.RunID)
		want, reason := upgrade.OutcomeRequested, ""
		if delivery > 1 {
			want, reason = upgrade.OutcomeSkipped, "in_progress"
		}
		for _, r := range report.Results {
			if r.Outcome != want || r.Reason != reason {
				t.Fatalf("delivery %d, %s: %s/%s, want %s/%s", delivery, r.SmartAGID, r.Outcome, r.Reason, want, reason)
			}
		}
	}
	for _, id := range ids {
		if n := simulation.UpdatesReached(w.Cloud, id); n != 1 {
			t.Errorf("%s: %d update calls over three deliveries", id, n)
		}
	}
	if runIDs[0] != runIDs[1] || runIDs[1] != runIDs[2] {
		t.Errorf("the same message made runs %v; its events would not deduplicate", runIDs)
	}
}

// A refused update is a final outcome of its run: a redelivery of the same
// message reports it again (the same event id) and calls nobody twice.
func TestRedeliveredMessageKeepsItsRefusals(t *testing.T) {
	// A breaker over two refusals would hide a second call behind breaker_open.
	w := newWorld(t, worldOptions{env: []string{"ROLLOUT_MIN_SAMPLE=100"}})
	var ids []string
	for _, g := range w.Cloud.Fleet.Gateways {
		if g.Case == fleet.CaseReseller {
			ids = append(ids, g.SmartAGID)
		}
	}
	if len(ids) == 0 {
		t.Fatal("the demo fleet has no reseller gateway")
	}
	payload, _ := json.Marshal([]map[string]any{{"specversion": "1.0", "id": "m-1", "source": "MNS-sag-upgrade-work",
		"type": "mns:Queue:SendMessage", "data": map[string]any{"messageId": "5F290C926D472878-1-19A1-000000001",
			"messageBody": string(naming(ids, "batch-x"))}}})
	var first events.Report
	for delivery := 1; delivery <= 2; delivery++ {
		_, report := w.invoke(payload)
		if len(report.Results) != len(ids) {
			t.Fatalf("delivery %d: %+v", delivery, report.Results)
		}
		for _, r := range report.Results {
			want := "api_error"
			if delivery == 2 {
				want = "attempted_this_run"
			}
			if r.Outcome != upgrade.OutcomeFailed || r.Reason != want {
				t.Errorf("delivery %d, %s: %s/%s, want failed/%s", delivery, r.SmartAGID, r.Outcome, r.Reason, want)
			}
		}
		if delivery == 1 {
			first = report
		} else if report.RunID != first.RunID {
			t.Errorf("the redelivery ran as %s, the first delivery as %s", report.RunID, first.RunID)
		}
	}
	for _, id := range ids {
		if n := simulation.UpdatesReached(w.Cloud, id); n != 1 {
			t.Errorf("%s: %d update calls over two deliveries, want 1", id, n)
		}
	}
	// Both deliveries published each gateway's outcome under one event id.
	byGateway := map[string]map[string]bool{}
	for _, ev := range w.published(first.RunID) {
		if ev.Type == "sag.upgrade.failed" {
			if byGateway[ev.Subject] == nil {
				byGateway[ev.Subject] = map[string]bool{}
			}
			byGateway[ev.Subject][ev.ID] = true
		}
	}
	for _, id := range ids {
		if len(byGateway[id]) != 1 {
			t.Errorf("%s: failed events under ids %v, want one id", id, byGateway[id])
		}
	}
}

func TestTwoWorkersOnTheSameBatchCallOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	second := w.startFunction(worldOptions{})
	ids := w.outdated(24, map[string]bool{})
	payload := naming(ids, "batch-3")
	var wg sync.WaitGroup
	reports := make([]events.Report, 2)
	for i, fn := range []*fcsim.Runtime{w.fn, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, reports[i] = w.invokeOn(fn, payload)
		}()
	}
	wg.Wait()
	requested := 0
	for _, r := range reports {
		requested += r.Counts.Requested
		for _, res := range r.Results {
			if res.Outcome != upgrade.OutcomeRequested && res.Reason != "in_progress" {
				t.Errorf("%s: %s/%s", res.SmartAGID, res.Outcome, res.Reason)
			}
		}
	}
	for _, id := range ids {
		if n := simulation.UpdatesReached(w.Cloud, id); n != 1 {
			t.Errorf("%s: %d update calls by two workers", id, n)
		}
	}
	if requested != len(ids) {
		t.Errorf("%d requested between the two workers, want %d", requested, len(ids))
	}
}

// A crashed invocation's retry calls no gateway the dead instance called,
// whether it comes at once (the dead instance's claims and upgrades still
// hold their gateways) or late (its upgrades are past VERIFY_TIMEOUT and its
// claims past the lease, so the retry reads each device again); a later run
// upgrades the rest, each once.
func TestRetryAfterACrashCallsAtMostOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		late time.Duration // how long the retry's listing takes to answer
	}{
		{"prompt retry", 0},
		{"late retry", 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) { retryAfterACrash(t, tc.late) })
	}
}

func retryAfterACrash(t *testing.T, late time.Duration) {
	w := newWorld(t, worldOptions{
		sag: sagsim.Options{Latency: 30 * time.Millisecond},
		// The devices reboot on the simulated clock, which stands still
		// until the test advances it: a run that reads one after
		// UPGRADE_TIME + VERIFY_TIMEOUT finds it unverified, as it should,
		// and the breaker would then open or not by how fast the machine
		// ran the test. The breaker has tests of its own.
		env: []string{"LEDGER_LEASE=2s", "UPGRADE_TIME=1s", "VERIFY_TIMEOUT=1s", "MAX_CONCURRENCY=2", "API_QPS=20",
			"ROLLOUT_MIN_SAMPLE=1000000"},
	})
	ids := w.outdated(30, map[string]bool{})
	w.fn.InvokeAsync(naming(ids, "async-1"), fcsim.InvokeOptions{})
	// Kill the instance in the middle of the run; FC retries the event.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n := 0
		for _, id := range ids {
			n += w.Cloud.SAG.Count(simulation.UpdateAction, id)
		}
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run made no update call")
		}
	}
	if late > 0 {
		w.Cloud.SAG.SetFaults(sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.Slow},
			Actions: []string{"DescribeSmartAccessGateways"}, SlowDelay: late})
	}
	w.fn.Kill()
	ctx := t.Context()
	if err := w.fn.WaitAsync(ctx); err != nil {
		t.Fatal(err)
	}
	w.Cloud.SAG.SetFaults(sagsim.Faults{})
	if st := w.fn.Stats(); st.Crashes == 0 || st.Invocations < 2 {
		t.Fatalf("stats %+v: want a crash and a retry", st)
	}
	if late > 0 && !slices.ContainsFunc(w.events(), func(ev events.CloudEvent) bool {
		return ev.Type == events.OutcomeTypePrefix+string(upgrade.OutcomeUnverified)
	}) {
		t.Error("the late retry found none of the dead instance's upgrades past VERIFY_TIMEOUT: the test did not test that")
	}
	for _, id := range ids {
		if n := simulation.UpdatesReached(w.Cloud, id); n > 1 {
			t.Errorf("%s: %d update calls across the crash and the retry", id, n)
		}
	}
	// Claims the dead instance left without a call expire; a later run
	// reads those devices again and upgrades each once.
	time.Sleep(2100 * time.Millisecond)
	// The upgrades made before the kill are done: the sweep verifies them
	// rather than finding them still rebooting past VERIFY_TIMEOUT.
	w.Cloud.Clock.Advance(time.Hour)
	res, report := w.invoke(naming(ids, "sweep-after"))
	if res.Failed {
		t.Fatalf("the sweep after: %s", res.Body)
	}
	got := results(report)
	for _, id := range ids {
		if n, applied := simulation.UpdatesReached(w.Cloud, id), w.Cloud.SAG.Applied(id); n != 1 || applied != 1 {
			r := got[id+"/Device"]
			t.Errorf("%s: %d update calls, %d applied; want exactly one (the sweep after: %s %s %s)",
				id, n, applied, r.Outcome, r.Reason, r.Error)
		}
	}
}

func TestKilledBetweenClaimAndCall(t *testing.T) {
	w := newWorld(t, worldOptions{env: []string{"LEDGER_LEASE=2s", "UPGRADE_TIME=1s", "VERIFY_TIMEOUT=1s"}, control: true})
	id := w.outdated(1, map[string]bool{})[0]
	// The claim is written, then its answer is held back while the
	// instance is killed: the claim exists, the call was never made.
	w.Cloud.OTS.SetFaults(otssim.Faults{SlowDelay: 10 * time.Second})
	w.Cloud.OTS.FailNext("PutRow", 1, otssim.SlowReply)
	done := make(chan fcsim.Result, 1)
	// force keeps the rollout out of it, so the first PutRow is the claim.
	go func() { r, _ := w.invokeOn(w.fn, []byte(`{"gatewayIds":["`+id+`"],"force":true}`)); done <- r }()
	for deadline := time.Now().Add(20 * time.Second); w.ledgerState(id) != "claimed"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no claim was written")
		}
	}
	w.fn.Kill() // SIGKILL
	if res := <-done; !res.Crashed {
		t.Fatalf("the killed invocation: %+v", res)
	}
	if n := w.Cloud.SAG.Count(simulation.UpdateAction, id); n != 0 {
		t.Fatalf("%d update calls before the kill", n)
	}
	callsBefore := len(w.Cloud.SAG.Calls())

	// Within the lease nobody touches the gateway; after it, the device is
	// read again before the one call.
	if _, report := w.invoke(naming([]string{id}, "kill-2")); report.Results[0].Reason != "in_progress" {
		t.Fatalf("within the lease: %+v", report.Results[0])
	}
	time.Sleep(2100 * time.Millisecond)
	_, report := w.invoke(naming([]string{id}, "kill-3"))
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeRequested {
		t.Fatalf("after the lease: %+v", r)
	}
	readBeforeCall := false
	for _, c := range w.Cloud.SAG.Calls()[callsBefore:] {
		if c.SmartAGID != id {
			continue
		}
		if c.Action == "DescribeSmartAccessGatewayAttribute" {
			readBeforeCall = true
		}
		if c.Action == simulation.UpdateAction && !readBeforeCall {
			t.Fatal("the update was called without reading the device first")
		}
	}
	if n, applied := w.Cloud.SAG.Count(simulation.UpdateAction, id), w.Cloud.SAG.Applied(id); n != 1 || applied != 1 {
		t.Fatalf("%d update calls, %d applied; want one", n, applied)
	}
}

func TestLedgerSurvivesTablestoreFaults(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.Cloud.OTS.SetFaults(otssim.Faults{Seed: 17, Rate: 0.2, Kinds: []otssim.FaultKind{
		otssim.ServerBusy, otssim.InternalServerError, otssim.Timeout, otssim.BadGateway, otssim.Drop, otssim.LostReply}})
	res, report := w.invoke([]byte(`{}`))
	if res.Failed {
		t.Fatalf("invocation failed: %s", res.Body)
	}
	if f := w.Cloud.OTS.Failures(); len(f) == 0 {
		t.Fatal("no Tablestore fault was injected")
	}
	got := results(report)
	for _, g := range w.Cloud.Fleet.Gateways {
		if g.Case == fleet.CaseOtherAccount {
			continue
		}
		r := got[g.SmartAGID+"/Device"]
		applied := w.Cloud.SAG.Applied(g.SmartAGID)
		if simulation.UpdatesReached(w.Cloud, g.SmartAGID) > 1 || applied > 1 {
			t.Errorf("%s: upgraded twice", g.SmartAGID)
		}
		if (r.Outcome == upgrade.OutcomeRequested) != (applied == 1) {
			t.Errorf("%s: %s/%s but %d applied", g.SmartAGID, r.Outcome, r.Reason, applied)
		}
		// No claim lost: every upgrade that started is in the ledger.
		if st := w.ledgerState(g.SmartAGID); applied == 1 && st != "requested" && st != "claimed" {
			t.Errorf("%s: upgraded, but the ledger says %q", g.SmartAGID, st)
		}
	}
	// With the faults gone, the same sweep again calls for nobody upgraded
	// (a gateway the faults held back is upgraded now, once).
	w.Cloud.OTS.SetFaults(otssim.Faults{})
	before, upgraded := map[string]int{}, map[string]bool{}
	for _, g := range w.Cloud.Fleet.Gateways {
		before[g.SmartAGID] = w.Cloud.SAG.Count(simulation.UpdateAction, g.SmartAGID)
		upgraded[g.SmartAGID] = w.Cloud.SAG.Applied(g.SmartAGID) == 1
	}
	w.invoke([]byte(`{}`))
	for _, g := range w.Cloud.Fleet.Gateways {
		r := got[g.SmartAGID+"/Device"]
		if upgraded[g.SmartAGID] && w.Cloud.SAG.Count(simulation.UpdateAction, g.SmartAGID) != before[g.SmartAGID] {
			t.Errorf("%s: called again although its upgrade is in progress (first run: %s/%s, ledger %q)",
				g.SmartAGID, r.Outcome, r.Reason, w.ledgerState(g.SmartAGID))
		}
		if w.Cloud.SAG.Applied(g.SmartAGID) > 1 {
			t.Errorf("%s: upgraded twice (first run: %s/%s)", g.SmartAGID, r.Outcome, r.Reason)
		}
	}
}

// The outcome topic is down for a whole night: the sweep upgrades as usual,
// every event is kept in the ledger (run.completed says so, itself kept
// last), and the first sweep after MNS is back publishes every kept event
// with its id, before its own.
func TestEventsKeptThroughAnMNSOutage(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.Cloud.MNS.SetFaults(mnssim.Faults{Seed: 1, Rate: 1, Ops: []string{"PublishMessage"},
		Kinds: []mnssim.FaultKind{mnssim.FaultInternalError, mnssim.FaultBadGateway}})
	res, report := w.invoke([]byte(`{"correlationId":"outage"}`))
	if res.Failed {
		t.Fatalf("the night under the outage: %s", res.Body)
	}
	if report.Counts.Requested == 0 || report.Publishing.Published != 0 || report.Publishing.Failed != 0 ||
		report.Publishing.Kept < len(report.Results)+1 {
		t.Fatalf("under the outage: counts %+v, publishing %+v", report.Counts, report.Publishing)
	}
	if n := len(w.Cloud.MNS.Published(cloudsim.OutcomeTopic)); n != 0 {
		t.Fatalf("%d events reached the topic that was down", n)
	}
	kept := 0
	for _, row := range w.Cloud.OTS.Rows(cloudsim.LedgerTable) {
		if pk, _ := row.Get("pk"); strings.HasPrefix(pk.(string), "outbox#") {
			kept++
		}
	}
	if kept != report.Publishing.Kept {
		t.Fatalf("%d events in the ledger's outbox, the report says %d", kept, report.Publishing.Kept)
	}

	w.Cloud.MNS.SetFaults(mnssim.Faults{})
	_, after := w.invoke([]byte(`{"gatewayIds":["` + w.outdated(1, map[string]bool{})[0] + `"],"correlationId":"after"}`))
	if after.Publishing.Republished != report.Publishing.Kept || after.Publishing.Failed != 0 {
		t.Fatalf("the sweep after: publishing %+v, %d were kept", after.Publishing, report.Publishing.Kept)
	}
	outage := w.published(report.RunID)
	if len(outage) != len(report.Results)+1 || outage[len(outage)-1].Type != events.RunCompletedType {
		t.Fatalf("%d events of the outage's run published, want its %d results and run.completed last", len(outage), len(report.Results))
	}
	var done events.RunCompletedData
	json.Unmarshal(outage[len(outage)-1].Data, &done)
	if done.Events.Kept != report.Publishing.Kept-1 || done.Counts != report.Counts {
		t.Fatalf("the outage's run.completed: %+v", done)
	}
	for _, row := range w.Cloud.OTS.Rows(cloudsim.LedgerTable) {
		if pk, _ := row.Get("pk"); strings.HasPrefix(pk.(string), "outbox#") {
			t.Fatalf("still kept after the sweep published them: %v", pk)
		}
	}
}
