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

func TestDeadlineDefersTheRest(t *testing.T) {
	// Six chunks of 8 gateways (MaxConcurrency 2), 48 version lists and 48
	// updates at 20 calls a second of each: about 2.4 s of work for a 1.5 s
	// invocation.
	gws := gateways("sag-d%02d", 48, "2.0.8")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.APIQPS = 20; c.MaxConcurrency = 2; c.DeadlineMargin = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	report, err := hs.h.Invoke(ctx, Invocation{RequestID: "req-d"}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Invoke returned after the deadline")
	}
	c := report.Counts
	if c.Deferred == 0 || c.Requested == 0 || c.Requested+c.Deferred != 48 {
		t.Fatalf("counts %+v: want some requested and the rest deferred", c)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonDeadline {
			t.Errorf("deferred for %q, want deadline", r.Reason)
		}
	}
}

func TestNamedGatewaysAndRejection(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"gatewayIds":["sag-a","sag-zzz"]}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	if got["sag-a/Device"].Outcome != upgrade.OutcomeRequested || got["sag-zzz/Device"].Reason != upgrade.ReasonNotFound {
		t.Fatalf("results %+v", report.Results)
	}
	if _, ok := got["sag-b/Device"]; ok || len(sag.updates) != 1 {
		t.Fatalf("a gateway not named was touched: %v", sag.updates)
	}

	report, err = hs.invoke(t, `{"gatewayIds":["SAG-1"]}`)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "gatewayIds[0]") {
		t.Fatalf("err = %v, want a rejection naming gatewayIds[0]", err)
	}
	if report.Counts.Rejected != 1 || len(sag.updates) != 1 {
		t.Fatalf("rejection: counts %+v, updates %v", report.Counts, sag.updates)
	}
	var rejected *events.CloudEvent
	for i, ev := range hs.pub.events {
		if ev.Type == "sag.upgrade.rejected" {
			rejected = &hs.pub.events[i]
		}
	}
	if rejected == nil {
		t.Fatalf("no rejected event: %+v", hs.pub.events)
	}
	// The raw message in its own field, exactly (the error names SAG-1 too).
	var data upgrade.Result
	if err := json.Unmarshal(rejected.Data, &data); err != nil || data.Message != `{"gatewayIds":["SAG-1"]}` {
		t.Fatalf("rejected event data %s (%v): want the raw message", rejected.Data, err)
	}
}

// firstReadFails serves one gateway, sag-a, whose first version read is
// answered with code and status.
func firstReadFails(code string, status int) *fakeSAG {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		if action == "Versions" && n == 0 {
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: code, Status: status}
		}
		return nil
	}
	return sag
}

func TestLogsCarryIDsAndNoSecret(t *testing.T) {
	hs := newHarness(t, firstReadFails("InternalError", 500), nil)
	report, _ := hs.invoke(t, `{}`)
	lines := strings.Split(strings.TrimSpace(hs.logs.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("only %d log lines", len(lines))
	}
	decisions := 0
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %s", l)
		}
		if m["requestId"] != "req-1" || m["runId"] != report.RunID {
			t.Errorf("line without the ids: %s", l)
		}
		if m["message"] == "decision" {
			decisions++
			for _, k := range []string{"smartAGId", "regionId", "fromVersion", "toVersion", "outcome", "reason", "duration"} {
				if _, ok := m[k]; !ok {
					t.Errorf("decision line without %s: %s", k, l)
				}
			}
		}
	}
	if decisions != 1 {
		t.Errorf("%d decision lines, want 1", decisions)
	}
	for _, secret := range []string{"top-secret", "CAIStoken"} {
		if strings.Contains(hs.logs.String(), secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
}

// The start line carries the effective configuration, durations as Go
// duration strings, and the end line the counts.
func TestStartAndEndLines(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-cur", "2.3.1"))
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) {
		c.UpgradeTime, c.MinReleaseAge, c.MaxUpgradesPerRun = 15*time.Minute, 72*time.Hour, 7
	})
	report, _ := hs.invoke(t, `{}`)
	var start, end struct {
		Config  map[string]any  `json:"config"`
		Counts  *upgrade.Counts `json:"counts"`
		Trigger string          `json:"trigger"`
	}
	for _, l := range strings.Split(strings.TrimSpace(hs.logs.String()), "\n") {
		var m struct{ Message string }
		json.Unmarshal([]byte(l), &m)
		switch m.Message {
		case "run started":
			json.Unmarshal([]byte(l), &start)
		case "run finished":
			json.Unmarshal([]byte(l), &end)
		}
	}
	want := map[string]any{
		"upgradeTime": "15m0s", "minReleaseAge": "72h0m0s", "deadlineMargin": "0s",
		"ledgerLease": DefaultLedgerLease.String(), "maxUpgradesPerRun": 7.0, "releaseChannel": "release",
	}
	for k, v := range want {
		if start.Config[k] != v {
			t.Errorf("run started: config %s = %v, want %v", k, start.Config[k], v)
		}
	}
	for _, k := range []string{"regions", "versionTypes", "maintenanceWindow", "apiQps", "maxConcurrency",
		"verifyTimeout", "penaltyCooldown", "rolloutSoak", "rolloutWaves", "killSwitch"} {
		if _, ok := start.Config[k]; !ok {
			t.Errorf("run started: config without %s", k)
		}
	}
	if end.Counts == nil || *end.Counts != report.Counts || end.Counts.Requested != 1 || end.Counts.Skipped != 1 {
		t.Errorf("run finished: counts %+v, report %+v", end.Counts, report.Counts)
	}
	// Both ends name the trigger: an alert on a night with no finished
	// timer run reads it from the last line.
	if start.Trigger != string(events.TriggerDirect) || end.Trigger != start.Trigger {
		t.Errorf("trigger: run started %q, run finished %q", start.Trigger, end.Trigger)
	}
}

func TestRunIDStableForRedelivery(t *testing.T) {
	timer := `{"triggerTime":"2026-11-22T18:00:00Z","triggerName":"nightly","payload":"{}"}`
	a := runID(Invocation{RequestID: "r1"}, events.Decode([]byte(timer)), []byte(timer))
	b := runID(Invocation{RequestID: "r2"}, events.Decode([]byte(timer)), []byte(timer))
	c := runID(Invocation{RequestID: "r1"}, events.Decode([]byte(`{}`)), []byte(`{}`))
	d := runID(Invocation{RequestID: "r2"}, events.Decode([]byte(`{}`)), []byte(`{}`))
	if a != b || c == d || a == c {
		t.Fatalf("run ids: timer %s %s, direct %s %s", a, b, c, d)
	}
	// RunID (for lines logged before Invoke) gives the id Invoke uses.
	sag := newFakeSAG(gateway("sag-a", "2.3.1"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, timer)
	if id := RunID(Invocation{RequestID: "other"}, []byte(timer)); id != report.RunID {
		t.Errorf("RunID %s, Invoke's run %s", id, report.RunID)
	}
}

// Without the ledger a run has no claims, waves, breaker or penalty box:
// its first log line and its report say so.
func TestRunWithoutLedgerSaysSo(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, ``)
	if err != nil {
		t.Fatal(err)
	}
	if report.Ledger || !slices.Contains(report.Warnings, WarnNoLedger) {
		t.Errorf("report: ledger %v, warnings %q; want the ledger off and %q", report.Ledger, report.Warnings, WarnNoLedger)
	}
	first, _, _ := strings.Cut(hs.logs.String(), "\n")
	var line struct {
		Msg      string   `json:"message"`
		Ledger   *bool    `json:"ledgerEnabled"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatal(err)
	}
	if line.Msg != "run started" || line.Ledger == nil || *line.Ledger || !slices.Contains(line.Warnings, WarnNoLedger) {
		t.Errorf("first log line %s: want run started with ledgerEnabled false and the warning", first)
	}
	if !slices.ContainsFunc(strings.Split(hs.logs.String(), "\n"), func(l string) bool {
		return strings.Contains(l, `"level":"warn"`) && strings.Contains(l, `"message":"`+WarnNoLedger+`"`)
	}) {
		t.Errorf("no warning line for the ledger being off:\n%s", hs.logs)
	}

	// With the ledger, no such warning.
	lh := newLedgerHarness(t, newFakeSAG(gateway("sag-a", "2.3.1")))
	report, err = lh.invoke(t, ``)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Ledger || slices.Contains(report.Warnings, WarnNoLedger) {
		t.Errorf("with the ledger: ledger %v, warnings %q", report.Ledger, report.Warnings)
	}
}

// FC tells a run its timeout only through the deadline: a lease shorter than
// the run's time budget is warned about.
func TestShortLeaseWarns(t *testing.T) {
	lh := newLedgerHarness(t, newFakeSAG(gateway("sag-a", "2.3.1")))
	lh.h.Config.LedgerLease = 30 * time.Second // the harness's invocations have a minute
	report, err := lh.invoke(t, ``)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Warnings) != 1 || !strings.Contains(report.Warnings[0], "LEDGER_LEASE 30s is shorter than this invocation's time budget") {
		t.Errorf("warnings %q, want the short lease", report.Warnings)
	}
	lh.h.Config.LedgerLease = 30 * time.Minute
	if report, _ = lh.invoke(t, ``); len(report.Warnings) != 0 {
		t.Errorf("warnings %q with a lease longer than the invocation", report.Warnings)
	}
}

// PUBLISH_OUTCOMES=changes publishes no event for a gateway that is simply
// up to date, and every other one; the report and the log keep them all.
func TestPublishOutcomesChanges(t *testing.T) {
	for _, mode := range []string{PublishAll, PublishChanges} {
		sag := upgradingSAG(gateway("sag-old", "2.0.8"), gateway("sag-new", "2.3.1"), gateway("sag-off", "2.0.8"))
		sag.gateways[2].Status = "Offline"
		hs := newHarness(t, sag, func(c *Config) { c.PublishOutcomes = mode })
		report, err := hs.invoke(t, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if len(report.Results) != 3 || strings.Count(hs.logs.String(), `"message":"decision"`) != 3 {
			t.Fatalf("%s: %d results, %d decision lines", mode, len(report.Results), strings.Count(hs.logs.String(), `"message":"decision"`))
		}
		var subjects []string
		for _, ev := range hs.pub.events {
			if ev.Type != events.RunCompletedType {
				subjects = append(subjects, ev.Subject)
			}
		}
		slices.Sort(subjects)
		want := "sag-new sag-off sag-old"
		if mode == PublishChanges {
			want = "sag-off sag-old"
		}
		if strings.Join(subjects, " ") != want {
			t.Fatalf("%s: events for %v, want %s", mode, subjects, want)
		}
	}
}

// The end line says what throttling did to the pacing: an operator sees a
// night whose rates were cut without reading every call.
func TestRunFinishedSaysWhatThrottlingDid(t *testing.T) {
	hs := newHarness(t, firstReadFails("Throttling.User", 400), nil)
	if report, _ := hs.invoke(t, `{}`); report.Counts.Requested != 1 {
		t.Fatalf("counts %+v", report.Counts)
	}
	var end struct {
		Message                            string
		Throttled, RateCuts, BurstsTrimmed *int
	}
	for _, l := range strings.Split(strings.TrimSpace(hs.logs.String()), "\n") {
		if strings.Contains(l, `"run finished"`) {
			json.Unmarshal([]byte(l), &end)
		}
	}
	if end.Throttled == nil || *end.Throttled != 1 || end.RateCuts == nil || *end.RateCuts != 1 || end.BurstsTrimmed == nil || *end.BurstsTrimmed != 0 {
		t.Fatalf("run finished: throttled %v, rateCuts %v, burstsTrimmed %v; want 1, 1, 0", end.Throttled, end.RateCuts, end.BurstsTrimmed)
	}
}

// A report's results are an array on the wire, empty when the run touched
// nothing, and when it could not start (`jq '.results[]'` works on both).
func TestAReportWithoutResultsWritesAnEmptyArray(t *testing.T) {
	hs := newHarness(t, newFakeSAG(), nil)
	empty, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	hs.h.Connect = func(context.Context, Invocation) (Cloud, error) { return Cloud{}, errors.New("no credentials") }
	failed, err := hs.invoke(t, `{}`)
	if err == nil {
		t.Fatal("a run without its clients did not fail")
	}
	for name, r := range map[string]events.Report{"touched nothing": empty, "could not start": failed} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"results":[]`) {
			t.Errorf("%s: %s", name, b)
		}
	}
}
