// Package e2e_test runs the compiled function end to end: built as
// scripts/build.sh builds it (the FC build, no simulator), under the FC
// runtime emulator, against the SAG, MNS and Tablestore emulators and the
// demo fleet, all over real HTTP with the real SDKs (internal/simulation).
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

var (
	root   string // the module's directory
	binary string // the FC build, for this machine
)

func TestMain(m *testing.M) {
	var err error
	if root, err = simulation.ModuleRoot(); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "sag-upgrade-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "main")
	build, err := simulation.ReadFCBuild(root)
	if err == nil {
		err = build.Compile(root, binary)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the function:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one simulated cloud with the function deployed on it.
type world struct {
	*simulation.World
	t   *testing.T
	fn  *fcsim.Runtime
	out *lockedBuffer
}

type worldOptions struct {
	sag     sagsim.Options
	env     []string
	timeout time.Duration
	// control deploys the operators' function (CONTROL_ENDPOINT=true, no
	// trigger): the one that serves control requests and force.
	control bool
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	f, err := fleet.Load(filepath.Join(root, "testdata/fleets/demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulation.Start(simulation.Options{Fleet: f, SAG: o.sag})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	w := &world{World: sim, t: t, out: &lockedBuffer{}}
	w.fn = w.startFunction(o)
	return w
}

// startFunction deploys the function (another instance of it, when called
// again) on the world's cloud.
func (w *world) startFunction(o worldOptions) *fcsim.Runtime {
	w.t.Helper()
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	// Rollout waves are tested on their own (main's nights_rollout_test.go);
	// these tests let every gateway in at once.
	fn, err := w.Deploy(simulation.Function{
		Binary: binary, Env: append([]string{"API_QPS=200", "MAX_CONCURRENCY=8", "ROLLOUT_CANARY=10000"}, o.env...),
		Control: o.control, Timeout: o.timeout, Output: w.out,
		// Failed asynchronous invocations are retried at once, as FC would.
		MaxAsyncRetryAttempts: 2,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return fn
}

// invoke runs one synchronous invocation and decodes the report.
func (w *world) invoke(payload []byte) (fcsim.Result, events.Report) {
	w.t.Helper()
	return w.invokeOn(w.fn, payload)
}

func (w *world) invokeOn(fn *fcsim.Runtime, payload []byte) (fcsim.Result, events.Report) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := fn.Invoke(ctx, payload, fcsim.InvokeOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	var report events.Report
	if !res.Failed {
		if report, err = simulation.ReportOf(res); err != nil {
			w.t.Fatal(err)
		}
	}
	return res, report
}

// events decodes every event published to the outcome topic so far.
func (w *world) events() []events.CloudEvent {
	w.t.Helper()
	evs, err := simulation.Published(w.Cloud)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

// published returns the outcome events of a run (not its rollout
// transitions), decoded.
func (w *world) published(runID string) []events.CloudEvent {
	var out []events.CloudEvent
	for _, ev := range w.events() {
		var data struct {
			RunID string `json:"runId"`
		}
		json.Unmarshal(ev.Data, &data)
		if data.RunID == runID && !strings.HasPrefix(ev.Type, "sag.upgrade.rollout.") {
			out = append(out, ev)
		}
	}
	return out
}

// rejected returns the data of every sag.upgrade.rejected event published so
// far, in order.
func (w *world) rejected() []upgrade.Result {
	w.t.Helper()
	var out []upgrade.Result
	for _, ev := range w.events() {
		if ev.Type != "sag.upgrade.rejected" {
			continue
		}
		var res upgrade.Result
		if err := json.Unmarshal(ev.Data, &res); err != nil {
			w.t.Fatalf("rejected event data: %v", err)
		}
		out = append(out, res)
	}
	return out
}

func results(r events.Report) map[string]upgrade.Result {
	m := map[string]upgrade.Result{}
	for _, res := range r.Results {
		m[res.SmartAGID+"/"+string(res.VersionType)] = res
	}
	return m
}

// expected is what a nightly Device sweep must do with each case of the demo
// fleet, derived from the gateway's state.
func expected(g fleet.Gateway) (outcome upgrade.Outcome, reason, to string) {
	newest := map[string]string{"sag-1000": fleet.NewestDevice, "sag-vcpe": fleet.NewestVCPE, "sag-100wm": fleet.NewestRecentModel}
	switch g.Case {
	case fleet.CaseOutdated, fleet.CaseReverts, fleet.CaseLost, fleet.CaseRecentRelease:
		return upgrade.OutcomeRequested, "", newest[g.HardwareVersion]
	case fleet.CaseHAPair:
		return upgrade.OutcomeRequested, "ha_peer_pending", newest[g.HardwareVersion]
	case fleet.CaseUpToDate, fleet.CaseBetaAhead, fleet.CaseDpiOutdated:
		return upgrade.OutcomeSkipped, "up_to_date", ""
	case fleet.CaseOffline:
		return upgrade.OutcomeSkipped, "offline", ""
	case fleet.CaseNotActivated:
		return upgrade.OutcomeSkipped, "not_activated", ""
	case fleet.CaseUnconfirmed:
		return upgrade.OutcomeSkipped, "state_unknown", ""
	case fleet.CaseArrears, fleet.CaseExpired:
		return upgrade.OutcomeSkipped, "expired", ""
	case fleet.CaseNotBoundCCN:
		return upgrade.OutcomeSkipped, "not_bound_ccn", ""
	case fleet.CaseVersionUnknown:
		return upgrade.OutcomeSkipped, "version_unknown", ""
	case fleet.CaseSoftware:
		return upgrade.OutcomeSkipped, "no_device", ""
	case fleet.CaseReseller:
		return upgrade.OutcomeFailed, "api_error", newest[g.HardwareVersion]
	}
	return "", "", ""
}

func TestTimerSweepUpgradesExactlyTheEligibleGateways(t *testing.T) {
	w := newWorld(t, worldOptions{})
	payload := []byte(`{"triggerTime":"2026-11-22T17:05:00Z","triggerName":"nightly","payload":"{\"correlationId\":\"nightly\"}"}`)
	res, report := w.invoke(payload)
	if res.Failed {
		t.Fatalf("invocation failed: %s", res.Body)
	}
	if report.Trigger != events.TriggerTimer || report.DryRun {
		t.Fatalf("report trigger %q dryRun %v", report.Trigger, report.DryRun)
	}
	got := results(report)
	visible := 0
	for _, g := range w.Cloud.Fleet.Gateways {
		r, listed := got[g.SmartAGID+"/Device"]
		if g.Case == fleet.CaseOtherAccount {
			if listed || w.Cloud.SAG.Count(simulation.UpdateAction, g.SmartAGID) != 0 {
				t.Errorf("%s: another account's gateway was touched", g.SmartAGID)
			}
			continue
		}
		visible++
		outcome, reason, to := expected(g)
		if !listed {
			t.Errorf("%s (%s): no result", g.SmartAGID, g.Case)
			continue
		}
		if r.Outcome != outcome || r.Reason != reason || (to != "" && r.ToVersion != to) {
			t.Errorf("%s (%s): %s/%s → %q, want %s/%s → %q", g.SmartAGID, g.Case, r.Outcome, r.Reason, r.ToVersion, outcome, reason, to)
		}
		calls, applied := w.Cloud.SAG.Count(simulation.UpdateAction, g.SmartAGID), w.Cloud.SAG.Applied(g.SmartAGID)
		switch {
		case outcome == upgrade.OutcomeRequested && (calls != 1 || applied != 1 || r.RequestID == ""):
			t.Errorf("%s (%s): %d update calls, %d applied, request id %q; want exactly one", g.SmartAGID, g.Case, calls, applied, r.RequestID)
		case g.Case == fleet.CaseReseller && (calls != 1 || applied != 0 || r.ErrorCode != "PermissionError"):
			t.Errorf("%s (reseller): %d calls, %d applied, code %q", g.SmartAGID, calls, applied, r.ErrorCode)
		case outcome == upgrade.OutcomeSkipped && calls != 0:
			t.Errorf("%s (%s): skipped but %d update calls", g.SmartAGID, g.Case, calls)
		}
		if g.Case == fleet.CaseHAPair && r.SerialNumber == g.Devices[0].SerialNumber {
			t.Errorf("%s: the HA master was upgraded first", g.SmartAGID)
		}
	}
	if report.Counts.Scanned != visible || len(report.Results) != visible {
		t.Errorf("scanned %d, %d results; want %d", report.Counts.Scanned, len(report.Results), visible)
	}
	// One event per result plus run.completed, all on the topic before the
	// response.
	evs := w.published(report.RunID)
	if len(evs) != len(report.Results)+1 || report.Publishing.Published < len(evs) || report.Publishing.Failed != 0 {
		t.Fatalf("%d events published for %d results; report says %+v", len(evs), len(report.Results), report.Publishing)
	}
	types := map[string]int{}
	for _, ev := range evs {
		types[ev.Type]++
		if ev.Source != "acs:fc:cn-shanghai:"+w.Cloud.Fleet.AccountID+":functions/sag-upgrade" {
			t.Fatalf("event source %q", ev.Source)
		}
	}
	if types["sag.upgrade.run.completed"] != 1 || types["sag.upgrade.requested"] != report.Counts.Requested {
		t.Errorf("event types %v, counts %+v", types, report.Counts)
	}
}

func TestTopicMessageTouchesOnlyTheNamedGateways(t *testing.T) {
	w := newWorld(t, worldOptions{})
	var named []string
	for _, g := range w.Cloud.Fleet.Gateways {
		if g.Case == fleet.CaseOutdated && len(named) < 2 {
			named = append(named, g.SmartAGID)
		}
	}
	request := fmt.Sprintf(`{"gatewayIds":[%q,%q],"correlationId":"change-42"}`, named[0], named[1])
	for _, format := range []mnssim.NotifyFormat{mnssim.FormatJSON, mnssim.FormatStream} {
		// MNS builds the payload the topic trigger hands the function.
		payloads := make(chan []byte, 1)
		sub := "fc-" + strings.ToLower(string(format))
		if err := w.Cloud.MNS.Subscribe(cloudsim.RequestsTopic, mnssim.Subscription{Name: sub, Format: format,
			Callback: func(p []byte) { payloads <- p }}); err != nil {
			t.Fatal(err)
		}
		w.publishRequest(request)
		w.Cloud.MNS.Flush()
		payload := <-payloads
		w.Cloud.MNS.Subscribe(cloudsim.RequestsTopic, mnssim.Subscription{}) // keep later publishes from blocking on this channel
		_, report := w.invoke(payload)
		if len(report.Results) != 2 || report.Counts.Scanned != 2 {
			t.Fatalf("%s: results %+v", format, report.Results)
		}
		// A STREAM body without attributes is the bare request: it reads as
		// direct, and only the JSON form can be told apart.
		if format == mnssim.FormatJSON && report.Trigger != events.TriggerMNSTopic {
			t.Errorf("%s: trigger %q, want %q", format, report.Trigger, events.TriggerMNSTopic)
		}
		for _, r := range report.Results {
			if r.SmartAGID != named[0] && r.SmartAGID != named[1] {
				t.Fatalf("%s: a gateway not named: %s", format, r.SmartAGID)
			}
		}
	}
	if report := w.Cloud.SAG.Calls(); len(report) == 0 {
		t.Fatal("no SAG calls at all")
	}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.SmartAGID != "" && c.SmartAGID != named[0] && c.SmartAGID != named[1] {
			t.Fatalf("%s called for %s, which no message named", c.Action, c.SmartAGID)
		}
	}
	for _, id := range named {
		if n := w.Cloud.SAG.Applied(id); n != 1 {
			t.Errorf("%s: %d upgrades applied over two messages, want 1 (the second run finds it rebooting)", id, n)
		}
	}
}

// publishRequest publishes a request to the requests topic with the real SDK.
func (w *world) publishRequest(body string) {
	w.t.Helper()
	c := w.Cloud.Credentials(time.Hour)
	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{
		EndPoint: w.Cloud.URL + "/.", AccessKeyId: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, Token: c.SecurityToken, TimeoutSecond: 5})
	if _, err := ali_mns.NewMNSTopic(cloudsim.RequestsTopic, client).PublishMessage(ali_mns.MessagePublishRequest{MessageBody: body}); err != nil {
		w.t.Fatal(err)
	}
}

func TestEventBridgeBatch(t *testing.T) {
	w := newWorld(t, worldOptions{})
	var ids []string
	for _, g := range w.Cloud.Fleet.Gateways {
		if g.Case == fleet.CaseOutdated && len(ids) < 3 {
			ids = append(ids, g.SmartAGID)
		}
	}
	c := w.Cloud.Credentials(time.Hour)
	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{
		EndPoint: w.Cloud.URL + "/.", AccessKeyId: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, Token: c.SecurityToken, TimeoutSecond: 5})
	queue := ali_mns.NewMNSQueue(cloudsim.WorkQueue, client)
	var msgs []ali_mns.MessageSendRequest
	for i, id := range ids {
		msgs = append(msgs, ali_mns.MessageSendRequest{MessageBody: fmt.Sprintf(`{"gatewayIds":[%q],"correlationId":"batch-%d"}`, id, i), Priority: 8})
	}
	msgs = append(msgs, ali_mns.MessageSendRequest{MessageBody: `{"gatewayIds":"not-a-list"}`, Priority: 8})
	if _, err := queue.BatchSendMessage(msgs...); err != nil {
		t.Fatal(err)
	}
	payload := w.Cloud.QueueBatch(cloudsim.WorkQueue, 10)
	res, report := w.invoke(payload)
	if res.Failed || report.Trigger != events.TriggerMNSQueue {
		t.Fatalf("batch: %+v %s", report, res.Body)
	}
	got := results(report)
	for _, id := range ids {
		if got[id+"/Device"].Outcome != upgrade.OutcomeRequested || w.Cloud.SAG.Applied(id) != 1 {
			t.Errorf("%s: %+v", id, got[id+"/Device"])
		}
	}
	if report.Counts.Rejected != 1 || report.Counts.Requested != 3 {
		t.Errorf("counts %+v: want 3 requested and the bad message rejected", report.Counts)
	}
	if rej := w.rejected(); len(rej) != 1 || rej[0].Message != `{"gatewayIds":"not-a-list"}` {
		t.Errorf("rejected events %+v: want one carrying the bad body", rej)
	}
}

func TestDirectDryRunMakesNoUpdateCall(t *testing.T) {
	w := newWorld(t, worldOptions{})
	res, report := w.invoke([]byte(`{"dryRun":true}`))
	if res.Failed || !report.DryRun || report.Counts.Planned == 0 || report.Counts.Requested != 0 {
		t.Fatalf("dry run: %+v", report.Counts)
	}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction {
			t.Fatalf("a dry run called %s for %s", simulation.UpdateAction, c.SmartAGID)
		}
	}
	// Planned is what a timer sweep would call for (as its test expects):
	// the gateways it requests, and the reseller's, refused only by the call.
	planned := map[string]string{}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomePlanned {
			planned[r.SmartAGID] = r.ToVersion
		}
	}
	want := 0
	for _, g := range w.Cloud.Fleet.Gateways {
		outcome, _, to := expected(g)
		if outcome != upgrade.OutcomeRequested && g.Case != fleet.CaseReseller {
			continue
		}
		want++
		if got, ok := planned[g.SmartAGID]; !ok || got != to {
			t.Errorf("%s (%s): planned %v → %q, want planned → %q", g.SmartAGID, g.Case, ok, got, to)
		}
	}
	if len(planned) != want {
		t.Errorf("%d gateways planned, want the %d a timer sweep calls for", len(planned), want)
	}
}

func TestFaultsAndThrottlingStillOneOutcomeEachAndNoDoubleUpgrade(t *testing.T) {
	w := newWorld(t, worldOptions{
		sag: sagsim.Options{
			Faults: sagsim.Faults{Seed: 11, Rate: 0.1, SlowDelay: 300 * time.Millisecond, Kinds: []sagsim.FaultKind{
				sagsim.InternalError, sagsim.ServiceUnavailable, sagsim.BadGateway, sagsim.Drop, sagsim.LostReply, sagsim.Slow}},
			DefaultQPS: 40, // the function asks for more (API_QPS 200): some calls are throttled
		},
	})
	w.Cloud.MNS.SetFaults(mnssim.Faults{Seed: 5, Rate: 0.1, Kinds: []mnssim.FaultKind{mnssim.FaultQpsLimitExceeded, mnssim.FaultInternalError}})
	res, report := w.invoke([]byte(`{}`))
	if res.Failed {
		t.Fatalf("invocation failed: %s", res.Body)
	}
	if w.Cloud.SAG.Throttled() == 0 {
		t.Fatal("no call was throttled; the test does not test throttling")
	}
	faults := 0
	seen := map[string]int{}
	for _, r := range report.Results {
		seen[r.SmartAGID]++
	}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Fault != "" {
			faults++
		}
	}
	if faults == 0 {
		t.Fatal("no fault was injected")
	}
	for _, g := range w.Cloud.Fleet.Gateways {
		if g.Case == fleet.CaseOtherAccount {
			continue
		}
		if seen[g.SmartAGID] != 1 {
			t.Errorf("%s: %d outcomes, want exactly 1", g.SmartAGID, seen[g.SmartAGID])
		}
		// An update call that reached the service (not refused by flow
		// control or a fault in front of it) happens at most once.
		reached := simulation.UpdatesReached(w.Cloud, g.SmartAGID)
		applied := w.Cloud.SAG.Applied(g.SmartAGID)
		if reached > 1 || applied > 1 {
			t.Errorf("%s: %d update calls reached the service, %d applied", g.SmartAGID, reached, applied)
		}
		// No silent upgrade and no false claim: requested iff applied.
		r := results(report)[g.SmartAGID+"/Device"]
		if (r.Outcome == upgrade.OutcomeRequested) != (applied == 1) {
			t.Errorf("%s: outcome %s/%s but %d upgrades applied", g.SmartAGID, r.Outcome, r.Reason, applied)
		}
	}
	if report.Publishing.Failed != 0 || len(w.published(report.RunID)) != len(report.Results)+1 {
		t.Errorf("publishing under MNS faults: %+v", report.Publishing)
	}
}

func TestMalformedMessageIsRejectedAndTheProcessServesOn(t *testing.T) {
	w := newWorld(t, worldOptions{})
	res, _ := w.invoke([]byte(`{"gatewayIds":["SAG-1"],"regions":["cn-beijing"]}`))
	if !res.Failed || res.ErrorType != "RejectedRequest" ||
		!strings.Contains(res.ErrorMessage, "gatewayIds[0]") || !strings.Contains(res.ErrorMessage, "regions[0]") {
		t.Fatalf("malformed request: failed %v type %q message %q", res.Failed, res.ErrorType, res.ErrorMessage)
	}
	// The event carries the raw message in its own field, exactly: the error
	// text names the id too, so a match anywhere in data proves nothing.
	rejected := w.rejected()
	if len(rejected) != 1 || rejected[0].Message != `{"gatewayIds":["SAG-1"],"regions":["cn-beijing"]}` ||
		!strings.Contains(rejected[0].Error, "gatewayIds[0]") {
		t.Fatalf("rejected events: %+v", rejected)
	}
	if n := len(w.Cloud.SAG.Calls()); n != 0 {
		t.Fatalf("%d SAG calls for a rejected message", n)
	}
	pid := w.fn.PID()
	for _, bad := range []struct{ payload, raw string }{
		{"hello topic", "hello topic"},
		{`{"dryRun":"yes"}`, `{"dryRun":"yes"}`},
		{`[{"specversion":"1.0"}]`, `{"specversion":"1.0"}`}, // a batch: the raw element
	} {
		if res, _ := w.invoke([]byte(bad.payload)); !res.Failed || res.ErrorType != "RejectedRequest" {
			t.Errorf("%q: %+v", bad.payload, res)
		}
		rejected := w.rejected()
		if last := rejected[len(rejected)-1]; last.Message != bad.raw {
			t.Errorf("%q: rejected event carries message %q, want %q", bad.payload, last.Message, bad.raw)
		}
	}
	res, report := w.invoke([]byte(`{"dryRun":true}`))
	if res.Failed || report.Counts.Planned == 0 || w.fn.PID() != pid {
		t.Fatalf("the next invocation: failed %v, counts %+v, pid %d → %d", res.Failed, report.Counts, pid, w.fn.PID())
	}
}

func TestDeadlineShorterThanTheWork(t *testing.T) {
	w := newWorld(t, worldOptions{
		sag:     sagsim.Options{Latency: 40 * time.Millisecond},
		env:     []string{"API_QPS=10"}, // ~320 calls need ~32 s; the function has 3
		timeout: 3 * time.Second,
	})
	res, report := w.invoke([]byte(`{}`))
	if res.TimedOut || res.Failed {
		t.Fatalf("timed out %v, failed %v: %s", res.TimedOut, res.Failed, res.Body)
	}
	if res.Duration >= 3*time.Second {
		t.Fatalf("answered after %v, past the 3 s deadline", res.Duration)
	}
	deferred := 0
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred {
			deferred++
			if r.Reason != "deadline" {
				t.Errorf("%s deferred for %q", r.SmartAGID, r.Reason)
			}
		}
		if r.Outcome == upgrade.OutcomeRequested && w.Cloud.SAG.Applied(r.SmartAGID) != 1 {
			t.Errorf("%s requested but not applied", r.SmartAGID)
		}
	}
	// With a work queue the run hands what it cannot do over as a
	// continuation; every gateway is either in the report or continued.
	continued := 0
	if c := report.Continuation; c != nil && c.Enqueued {
		continued = c.Remaining
	}
	if deferred+continued == 0 || len(report.Results)+continued != report.Counts.Scanned {
		t.Fatalf("%d deferred, %d continued, %d results for %d scanned", deferred, continued, len(report.Results), report.Counts.Scanned)
	}
	// A continuation the report claims is on WORK_QUEUE: sweeps of this run's
	// remaining gateways, each once, none of them already in the report.
	// (The queue also holds the delayed verifications of the requested ones.)
	seen := map[string]bool{}
	for _, r := range report.Results {
		seen[r.SmartAGID] = true
	}
	queued := 0
	for _, m := range w.Cloud.MNS.Messages(cloudsim.WorkQueue) {
		req, err := events.ParseRequest([]byte(m.Body))
		if err == nil && req.Kind == upgrade.KindVerify {
			continue
		}
		if err != nil || req.Kind != upgrade.KindSweep || req.ParentRunID != report.RunID {
			t.Fatalf("work queue message %s (%v): want a sweep continuing run %s", m.Body, err, report.RunID)
		}
		for _, id := range req.GatewayIDs {
			if seen[id] {
				t.Errorf("%s is continued but already in the report or another batch", id)
			}
			seen[id] = true
			queued++
		}
	}
	if queued != continued {
		t.Errorf("%d gateways on the work queue, the report says %d continued", queued, continued)
	}
	if report.Publishing.Failed != 0 || len(w.published(report.RunID)) != len(report.Results)+1 {
		t.Errorf("not every event was out before the deadline: %+v", report.Publishing)
	}
}

func TestNoSecretInLogsEventsOrReportsAndEveryLineHasTheRequestAndRunIDs(t *testing.T) {
	w := newWorld(t, worldOptions{sag: sagsim.Options{Faults: sagsim.Faults{Seed: 3, Rate: 0.2}}})
	var bodies [][]byte
	var requestIDs []string
	for _, payload := range []string{`{}`, `{"dryRun":true,"versionTypes":["Dpi"]}`, `{"gatewayIds":["SAG-1"]}`} {
		res, _ := w.invoke([]byte(payload))
		bodies = append(bodies, res.Body)
		requestIDs = append(requestIDs, res.RequestID)
	}
	// An instance with an invalid configuration logs its error line too.
	misconfigured := w.startFunction(worldOptions{env: []string{"RELEASE_CHANNEL=nightly"}})
	res, _ := w.invokeOn(misconfigured, []byte(`{}`))
	if !res.Failed || res.ErrorType != "ConfigurationError" {
		t.Fatalf("invalid configuration: failed %v, type %q", res.Failed, res.ErrorType)
	}
	bodies = append(bodies, res.Body)
	requestIDs = append(requestIDs, res.RequestID)
	var haystack bytes.Buffer
	haystack.WriteString(w.out.String())
	for _, b := range bodies {
		haystack.Write(b)
	}
	for _, p := range w.Cloud.MNS.Published(cloudsim.OutcomeTopic) {
		haystack.WriteString(p.Body)
	}
	issued := w.Issued()
	if len(issued) == 0 {
		t.Fatal("no credential was issued")
	}
	for _, c := range issued {
		for _, secret := range []string{c.AccessKeySecret, c.SecurityToken, url.QueryEscape(c.SecurityToken), c.SecurityToken[:32]} {
			if bytes.Contains(haystack.Bytes(), []byte(secret)) {
				t.Fatalf("a secret of %s reached the logs, events or reports", c.AccessKeyID)
			}
		}
	}
	lines := 0
	inSDKError := false
	for _, line := range strings.Split(w.out.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		lines++
		// The runtime SDK prints a failed invocation on stderr as
		// "<time> <requestId> [ERROR] {" and the error JSON indented below.
		if inSDKError {
			inSDKError = line != "}"
			continue
		}
		if strings.Contains(line, "[ERROR] {") && mentionsAny(line, requestIDs) {
			inSDKError = true
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			id, _ := m["requestId"].(string)
			if !slices.Contains(requestIDs, id) {
				t.Errorf("a JSON log line without the request id: %s", line)
			}
			if run, _ := m["runId"].(string); !strings.HasPrefix(run, "run-") {
				t.Errorf("a JSON log line without the run id: %s", line)
			}
			continue
		}
		// The runtime SDK's own lines ("FC Invoke Start RequestId: …").
		if !mentionsAny(line, requestIDs) {
			t.Errorf("a log line without the request id: %s", line)
		}
	}
	if lines < 10 {
		t.Fatalf("only %d log lines", lines)
	}
}

// mentionsAny reports whether the line holds one of the ids.
func mentionsAny(line string, ids []string) bool {
	return slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(line, id) })
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
