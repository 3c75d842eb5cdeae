package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// A stop request, served by another instance (the first one is busy), stops
// a run under way before its next update call.
func TestStopReachesARunUnderWay(t *testing.T) {
	slow := worldOptions{sag: sagsim.Options{Latency: 20 * time.Millisecond}, env: []string{"API_QPS=40", "MAX_CONCURRENCY=2"}}
	w := newWorld(t, slow)
	other := w.startFunction(worldOptions{control: true})
	updates := func() int {
		n := 0
		for _, c := range w.Cloud.SAG.Calls() {
			if c.Action == simulation.UpdateAction {
				n++
			}
		}
		return n
	}
	done := make(chan events.Report, 1)
	go func() { _, r := w.invoke([]byte(`{"correlationId":"night"}`)); done <- r }()
	for deadline := time.Now().Add(30 * time.Second); updates() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep made no update call")
		}
	}
	if res, _ := w.invokeOn(other, []byte(`{"kind":"stop","correlationId":"incident-4"}`)); res.Failed {
		t.Fatalf("stop: %s", res.Body)
	}
	atStop := updates()
	report := <-done
	// The run reads the switch right before each update call: after the
	// stop is written, only calls whose read came before it reach the
	// service, one per worker (MAX_CONCURRENCY=2).
	if extra := updates() - atStop; extra > 2 {
		t.Fatalf("%d update calls after the stop; at most 2 (one per worker)", extra)
	}
	if !report.KillSwitch || report.Counts.Deferred == 0 {
		t.Fatalf("the run under way: killSwitch %v, counts %+v", report.KillSwitch, report.Counts)
	}
	stopped := 0
	for _, r := range report.Results {
		if r.Reason == "kill_switch" {
			stopped++
		}
	}
	if stopped == 0 {
		t.Fatal("no result says kill_switch")
	}
	// Until resume, no instance calls.
	before := updates()
	if _, r := w.invokeOn(other, []byte(`{}`)); !r.KillSwitch || updates() != before {
		t.Fatalf("a sweep with the switch on: %d calls", updates()-before)
	}
	w.invokeOn(other, []byte(`{"kind":"resume"}`))
	if _, r := w.invokeOn(other, []byte(`{}`)); r.Counts.Requested == 0 {
		t.Fatalf("after resume: %+v", r.Counts)
	}
}

// KILL_SWITCH=true in the function's environment: the compiled binary makes
// no update call and reports each eligible gateway deferred for the switch.
func TestKillSwitchInTheEnvironment(t *testing.T) {
	w := newWorld(t, worldOptions{env: []string{"KILL_SWITCH=true"}})
	res, report := w.invoke([]byte(`{"correlationId":"frozen"}`))
	if res.Failed {
		t.Fatalf("invoke: %s", res.Body)
	}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction {
			t.Fatalf("an update call for %s with KILL_SWITCH=true", c.SmartAGID)
		}
	}
	stopped := 0
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeRequested {
			t.Fatalf("%s requested with KILL_SWITCH=true", r.SmartAGID)
		}
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason == "kill_switch" {
			stopped++
		}
	}
	if !report.KillSwitch || stopped == 0 || stopped != report.Counts.Deferred {
		t.Fatalf("killSwitch %v, %d deferred for the switch, counts %+v", report.KillSwitch, stopped, report.Counts)
	}
}

// Anyone who may publish to the requests topic may ask for a sweep, never
// steer: after a stop from the operators' function, a resume and a forced
// sweep published to the topic, in JSON and in STREAM format, are rejected,
// and no update call follows, theirs or a later sweep's.
func TestTopicCannotLiftAStop(t *testing.T) {
	w := newWorld(t, worldOptions{})
	control := w.startFunction(worldOptions{control: true})
	if res, report := w.invokeOn(control, []byte(`{"kind":"stop","correlationId":"incident-9"}`)); res.Failed || len(report.Control) != 1 || !report.Control[0].Changed {
		t.Fatalf("stop: %s", res.Body)
	}
	// MNS builds the payloads the topic trigger would hand the function,
	// one per subscription format.
	payloads := map[mnssim.NotifyFormat]chan []byte{}
	for _, format := range []mnssim.NotifyFormat{mnssim.FormatJSON, mnssim.FormatStream} {
		ch := make(chan []byte, 8)
		payloads[format] = ch
		if err := w.Cloud.MNS.Subscribe(cloudsim.RequestsTopic, mnssim.Subscription{Name: "fc-" + strings.ToLower(string(format)),
			Format: format, Callback: func(p []byte) { ch <- p }}); err != nil {
			t.Fatal(err)
		}
	}
	for _, request := range []string{`{"kind":"resume"}`, `{"force":true}`, `{"force":true,"gatewayIds":["` + w.outdated(1, map[string]bool{})[0] + `"]}`} {
		w.publishRequest(request)
		w.Cloud.MNS.Flush()
		for format, ch := range payloads {
			res, _ := w.invoke(<-ch)
			if !res.Failed || !strings.Contains(string(res.Body), "RejectedRequest") || !strings.Contains(string(res.Body), "control function") {
				t.Fatalf("%s %s: %s", format, request, res.Body)
			}
		}
	}
	if _, report := w.invoke([]byte(`{}`)); !report.KillSwitch || report.Counts.Requested != 0 {
		t.Fatalf("the sweep after: killSwitch %v, counts %+v", report.KillSwitch, report.Counts)
	}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction {
			t.Fatalf("an update call for %s after the stop", c.SmartAGID)
		}
	}
	rejected := 0
	for _, p := range w.Cloud.MNS.Published(cloudsim.OutcomeTopic) {
		if strings.Contains(p.Body, `"type":"sag.upgrade.rejected"`) && strings.Contains(p.Body, `"reason":"unauthorized"`) {
			rejected++
		}
	}
	if rejected != 6 {
		t.Fatalf("%d sag.upgrade.rejected events for unauthorized requests, want 6", rejected)
	}
}
