package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

type harness struct {
	h    *Handler
	sag  *fakeSAG
	pub  *fakePublisher
	logs *bytes.Buffer
	// invocations numbers the FC request ids, each invocation its own as
	// under FC (a direct invocation's run id comes from it).
	invocations atomic.Int64
}

func newHarness(t *testing.T, sag *fakeSAG, mutate func(*Config)) *harness {
	t.Helper()
	cfg, err := ConfigFromEnv(env(map[string]string{"API_QPS": "1000"}), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	pub := &fakePublisher{}
	logs := &bytes.Buffer{}
	h := &Handler{
		Config: cfg,
		Connect: func(ctx context.Context, inv Invocation) (Cloud, error) {
			return Cloud{SAG: sag, Events: pub}, nil
		},
		Clock: func() time.Time { return testNow },
		Log:   zerolog.New(&syncWriter{w: logs}),
		// The operator's function: these tests send control requests
		// and force directly (authority_test.go tests who may).
		Control: true,
	}
	return &harness{h: h, sag: sag, pub: pub, logs: logs}
}

func (hs *harness) invoke(t *testing.T, payload string) (events.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv := Invocation{RequestID: fmt.Sprintf("req-%d", hs.invocations.Add(1)), Region: "cn-shanghai", AccountID: "123", FunctionName: "sag-upgrade",
		Credentials: Credentials{AccessKeyID: "STS.id", AccessKeySecret: "top-secret", SecurityToken: "CAIStoken"}}
	return hs.h.Invoke(ctx, inv, []byte(payload))
}

func byID(r events.Report) map[string]upgrade.Result {
	m := map[string]upgrade.Result{}
	for _, res := range r.Results {
		m[res.SmartAGID+"/"+string(res.VersionType)] = res
	}
	return m
}

func TestSweepOutcomes(t *testing.T) {
	offline := gateway("sag-off", "2.0.8")
	offline.Status = "Offline"
	current := gateway("sag-cur", "2.3.1")
	noccn := gateway("sag-noccn", "2.0.8")
	noccn.CcnID = ""
	sag := newFakeSAG(gateway("sag-old", "2.0.8"), offline, current, noccn)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)

	report, err := hs.invoke(t, ``)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	want := map[string][2]string{
		"sag-old/Device":   {"requested", ""},
		"sag-off/Device":   {"skipped", upgrade.ReasonOffline},
		"sag-cur/Device":   {"skipped", upgrade.ReasonUpToDate},
		"sag-noccn/Device": {"skipped", upgrade.ReasonNotBoundCCN},
	}
	for k, w := range want {
		if string(got[k].Outcome) != w[0] || got[k].Reason != w[1] {
			t.Errorf("%s: %s/%s, want %s/%s", k, got[k].Outcome, got[k].Reason, w[0], w[1])
		}
	}
	if r := got["sag-old/Device"]; r.FromVersion != "2.0.8" || r.ToVersion != "2.3.1" || r.RequestID != "REQ-sag-old" {
		t.Errorf("requested result: %+v", r)
	}
	if len(sag.updates) != 1 {
		t.Errorf("update calls %v, want one", sag.updates)
	}
	if c := report.Counts; c.Scanned != 4 || c.Requested != 1 || c.Skipped != 3 {
		t.Errorf("counts %+v", c)
	}
	// No per-gateway call for a gateway the list already rules out.
	if n := sag.count("Versions", "sag-off"); n != 0 {
		t.Errorf("offline gateway: %d version calls", n)
	}
	// One event per result plus run.completed, all published.
	if len(hs.pub.events) != 5 || report.Publishing.Published != 5 || report.Publishing.Failed != 0 {
		t.Errorf("%d events published, report says %+v", len(hs.pub.events), report.Publishing)
	}
	last := hs.pub.events[len(hs.pub.events)-1]
	for _, ev := range hs.pub.events {
		if ev.Type == "sag.upgrade.run.completed" {
			last = ev
		}
	}
	if last.Type != "sag.upgrade.run.completed" || !strings.Contains(string(last.Data), `"requested":1`) {
		t.Errorf("run.completed event: %+v", last)
	}
}

func TestDryRunMakesNoUpdateCall(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.2.0"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"dryRun":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(sag.updates) != 0 || report.Counts.Planned != 2 || !report.DryRun {
		t.Fatalf("dry run: updates %v, report %+v", sag.updates, report.Counts)
	}
	// DRY_RUN in the environment wins over a request that does not ask for it.
	hs = newHarness(t, sag, func(c *Config) { c.DryRun = true })
	report, _ = hs.invoke(t, `{"dryRun":false}`)
	if len(sag.updates) != 0 || report.Counts.Planned != 2 {
		t.Fatalf("DRY_RUN=true: updates %v, counts %+v", sag.updates, report.Counts)
	}
}

func TestUpdateRetriedOnlyWhenCertainlyNotActedOn(t *testing.T) {
	cases := []struct {
		name        string
		err         *APIError
		startedRead bool // the device read after the failure shows the upgrade
		calls       int
		outcome     upgrade.Outcome
		reason      string
	}{
		{"throttled then accepted", &APIError{Code: "Throttling.User", Status: 400}, false, 2, upgrade.OutcomeRequested, ""},
		{"not sent then accepted", &APIError{NoAnswer: true, NotSent: true}, false, 2, upgrade.OutcomeRequested, ""},
		{"lost reply, upgrade visible", &APIError{NoAnswer: true}, true, 1, upgrade.OutcomeRequested, upgrade.ReasonConfirmed},
		{"internal error, no upgrade", &APIError{Code: "InternalError", Status: 500}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonUnconfirmed},
		{"HTML 502, no upgrade", &APIError{Status: 502, Message: "<html>"}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonUnconfirmed},
		{"offline meanwhile", &APIError{Code: "SmartAccessGatewayNotOnline", Status: 403}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonOffline},
		{"state unknown", &APIError{Code: "GetSmartAccessGatewayStateError", Status: 403}, false, 1, upgrade.OutcomeDeferred, upgrade.ReasonTryLater},
		{"already newer", &APIError{Code: "VersionTooOld", Status: 403}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonUpToDate},
		{"forbidden", &APIError{Code: "Forbidden", Status: 403}, false, 1, upgrade.OutcomeFailed, upgrade.ReasonAPIError},
		{"in arrears", &APIError{Code: "SmartAccessGatewayInArrears", Status: 500}, false, 1, upgrade.OutcomeSkipped, upgrade.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := gateway("sag-x", "2.0.8")
			sag := newFakeSAG(g)
			sag.offered = catalog()
			sag.fail = func(action, id string, n int) error {
				if action == "Update" && n == 0 {
					c.err.Action = "UpdateSmartAccessGatewayVersion"
					return c.err
				}
				return nil
			}
			if c.startedRead {
				sag.details[g.ID] = Detail{Status: "Offline", Devices: []Device{{SerialNumber: "sn-sag-x", Software: "2.0.8"}}}
			}
			hs := newHarness(t, sag, nil)
			hs.h.Config.APIQPS = 1000
			report, err := hs.invoke(t, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			res := report.Results[0]
			if n := sag.count("Update", g.ID); n != c.calls {
				t.Errorf("%d update calls, want %d", n, c.calls)
			}
			if res.Outcome != c.outcome || res.Reason != c.reason {
				t.Errorf("outcome %s/%s, want %s/%s (%+v)", res.Outcome, res.Reason, c.outcome, c.reason, res)
			}
			if c.outcome != upgrade.OutcomeRequested && c.err.Code != "" && res.ErrorCode != c.err.Code {
				t.Errorf("errorCode %q, want %q", res.ErrorCode, c.err.Code)
			}
		})
	}
}

func TestReadsRetryTransientErrors(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		if action == "Versions" && n < 2 {
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "ServiceUnavailable", Status: 503}
		}
		if action == "List" && n == 0 {
			return &APIError{Action: "DescribeSmartAccessGateways", NoAnswer: true}
		}
		return nil
	}
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Requested != 1 || sag.count("Versions", "sag-a") != 3 || sag.count("List", "cn-shanghai") != 2 {
		t.Fatalf("counts %+v, versions calls %d, list calls %d", report.Counts, sag.count("Versions", "sag-a"), sag.count("List", "cn-shanghai"))
	}
}

func TestPermanentReadErrorsAreNotRetried(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		switch {
		case action == "Versions" && id == "sag-a":
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "Forbidden", Status: 403}
		case action == "Versions" && id == "sag-b":
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "VersionNotExist", Status: 400}
		}
		return nil
	}
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, `{}`)
	got := byID(report)
	if r := got["sag-a/Device"]; r.Outcome != upgrade.OutcomeFailed || r.ErrorCode != "Forbidden" {
		t.Errorf("forbidden: %+v", r)
	}
	if r := got["sag-b/Device"]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonNoRelease || r.ErrorCode != "VersionNotExist" {
		t.Errorf("no versions: %+v", r)
	}
	if sag.count("Versions", "sag-a") != 1 || len(sag.updates) != 0 {
		t.Errorf("a permanent error was retried or an update made")
	}
}

func TestHAPairUpgradesOneDevicePerRunStandbyFirst(t *testing.T) {
	g := gateway("sag-ha", "2.0.8")
	g.SerialNumbers = []string{"sn-master", "sn-standby"}
	g.BackupSoftwareVersion = "2.0.8"
	sag := newFakeSAG(g)
	sag.offered = catalog()
	sag.details[g.ID] = Detail{Status: "Active", MasterSN: "sn-master", Devices: []Device{
		{SerialNumber: "sn-master", Software: "2.0.8"}, {SerialNumber: "sn-standby", Software: "2.0.8"}}}
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, `{}`)
	res := report.Results[0]
	if len(sag.updates) != 1 || sag.updates[0] != "sag-ha sn-standby 2.3.1" {
		t.Fatalf("updates %v, want one for the standby", sag.updates)
	}
	if res.Outcome != upgrade.OutcomeRequested || res.SerialNumber != "sn-standby" || res.Reason != upgrade.ReasonHAPeerPending {
		t.Fatalf("result %+v", res)
	}
	// Next run: the standby is done, the master follows.
	sag.details[g.ID] = Detail{Status: "Active", MasterSN: "sn-master", Devices: []Device{
		{SerialNumber: "sn-master", Software: "2.0.8"}, {SerialNumber: "sn-standby", Software: "2.3.1"}}}
	report, _ = hs.invoke(t, `{}`)
	if len(sag.updates) != 2 || sag.updates[1] != "sag-ha sn-master 2.3.1" || report.Results[0].Reason != "" {
		t.Fatalf("second run: updates %v, result %+v", sag.updates, report.Results[0])
	}
}

func TestRunLimitAndWindowDefer(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"), gateway("sag-c", "2.0.8"))
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.MaxUpgradesPerRun = 2 })
	report, _ := hs.invoke(t, `{}`)
	if report.Counts.Requested != 2 || report.Counts.Deferred != 1 || len(sag.updates) != 2 {
		t.Fatalf("run limit: counts %+v, updates %v", report.Counts, sag.updates)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonRunLimit {
			t.Errorf("deferred %s for %q, want %s", r.SmartAGID, r.Reason, upgrade.ReasonRunLimit)
		}
	}

	// A dry run is the same path: the cap applies, without a call.
	sag = newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"), gateway("sag-c", "2.0.8"))
	sag.offered = catalog()
	hs = newHarness(t, sag, func(c *Config) { c.MaxUpgradesPerRun = 2 })
	report, _ = hs.invoke(t, `{"dryRun":true}`)
	if c := report.Counts; c.Planned != 2 || c.Deferred != 1 || c.Requested != 0 || len(sag.updates) != 0 {
		t.Fatalf("dry run with the run limit: counts %+v, updates %v", c, sag.updates)
	}
	for _, r := range report.Results {
		if r.Outcome == upgrade.OutcomeDeferred && r.Reason != upgrade.ReasonRunLimit {
			t.Errorf("dry run deferred %s for %q, want %s", r.SmartAGID, r.Reason, upgrade.ReasonRunLimit)
		}
	}

	sag = newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	w, _ := ParseWindow("03:00-05:00", "Asia/Shanghai") // testNow is 02:00 in Shanghai
	hs = newHarness(t, sag, func(c *Config) { c.Window = w })
	report, _ = hs.invoke(t, `{}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeDeferred || r.Reason != upgrade.ReasonOutsideWindow || len(sag.updates) != 0 {
		t.Fatalf("outside the window: %+v, updates %v", r, sag.updates)
	}
	report, _ = hs.invoke(t, `{"force":true,"correlationId":"ticket-1"}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeRequested || !r.Force {
		t.Fatalf("force: %+v", r)
	}
	if !strings.Contains(hs.logs.String(), `"force":true`) {
		t.Error("force is not recorded in the logs")
	}
}

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

func TestLogsCarryIDsAndNoSecret(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		if action == "Versions" && n == 0 {
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "InternalError", Status: 500}
		}
		return nil
	}
	hs := newHarness(t, sag, nil)
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
		Config map[string]any  `json:"config"`
		Counts *upgrade.Counts `json:"counts"`
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

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestSweepPagesThroughLargeRegions(t *testing.T) {
	gws := gateways("sag-%03d", 123, "2.3.1")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Scanned != 123 || report.Counts.Skipped != 123 || sag.count("List", "cn-shanghai") != 3 {
		t.Fatalf("counts %+v after %d list calls", report.Counts, sag.count("List", "cn-shanghai"))
	}
}

func TestDpiSweepUsesDeviceVersions(t *testing.T) {
	g := gateway("sag-dpi", "2.3.1")
	sag := newFakeSAG(g)
	sag.offered = []Release{{Code: "1.7.0", Type: "release", Created: testNow.Add(-90 * day)}, {Code: "1.8.3", Type: "release", Created: testNow.Add(-30 * day)}}
	sag.details[g.ID] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-sag-dpi", Software: "2.3.1", Dpi: "1.7.0"}}}
	// 04:59 in Shanghai: no firmware upgrade fits before 05:00, a DPI update
	// (no reboot) still does.
	w, _ := ParseWindow("01:00-05:00", "Asia/Shanghai")
	hs := newHarness(t, sag, func(c *Config) { c.Window = w })
	hs.h.Clock = func() time.Time { return time.Date(2026, 11, 22, 20, 59, 0, 0, time.UTC) }
	report, err := hs.invoke(t, `{"versionTypes":["Dpi"]}`)
	if err != nil {
		t.Fatal(err)
	}
	r := report.Results[0]
	if r.VersionType != upgrade.VersionDpi || r.Outcome != upgrade.OutcomeRequested || r.FromVersion != "1.7.0" || r.ToVersion != "1.8.3" {
		t.Fatalf("dpi result %+v", r)
	}
	if sag.count("Devices", g.ID) != 1 || len(sag.updates) != 1 {
		t.Fatalf("devices calls %d, updates %v", sag.count("Devices", g.ID), sag.updates)
	}
}

func TestVerify(t *testing.T) {
	done, pending, rebooting := gateway("sag-done", "2.3.1"), gateway("sag-pending", "2.0.8"), gateway("sag-boot", "2.0.8")
	rebooting.Status = "Offline"
	sag := newFakeSAG(done, pending, rebooting)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"kind":"verify","gatewayIds":["sag-done","sag-pending","sag-boot","sag-gone"],"targetVersion":"2.3.1"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	want := map[string][2]string{
		"sag-done/Device":    {"verified", ""},
		"sag-pending/Device": {"unverified", upgrade.ReasonVersionDiff},
		"sag-boot/Device":    {"unverified", upgrade.ReasonOffline},
		"sag-gone/Device":    {"unverified", upgrade.ReasonNotFound},
	}
	for k, w := range want {
		if string(got[k].Outcome) != w[0] || got[k].Reason != w[1] {
			t.Errorf("%s: %s/%s, want %s/%s", k, got[k].Outcome, got[k].Reason, w[0], w[1])
		}
	}
	if len(sag.updates) != 0 || report.Counts.Verified != 1 || report.Counts.Unverified != 3 {
		t.Fatalf("verify made updates %v or miscounted %+v", sag.updates, report.Counts)
	}
	// Without a targetVersion the target is the newest release the policy allows.
	report, _ = hs.invoke(t, `{"kind":"verify","gatewayIds":["sag-done"]}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeVerified || r.ToVersion != "2.3.1" {
		t.Fatalf("verify against the policy's newest: %+v", r)
	}
}

// A pin applies to each version type asked for; where the gateway's list does
// not offer it, the result says so instead of passing silently.
func TestPinWithBothVersionTypes(t *testing.T) {
	g := gateway("sag-pin", "2.0.8")
	sag := newFakeSAG(g)
	sag.offered = catalog()
	sag.dpi = []Release{{Code: "1.8.3", Type: "release", Created: testNow.Add(-30 * day)}}
	sag.details[g.ID] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-sag-pin", Software: "2.0.8", Dpi: "1.7.0"}}}
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"versionTypes":["Device","Dpi"],"targetVersion":"2.3.1"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	if r := got["sag-pin/Device"]; r.Outcome != upgrade.OutcomeRequested || r.ToVersion != "2.3.1" {
		t.Errorf("Device: %+v", r)
	}
	if r := got["sag-pin/Dpi"]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonNotOffered {
		t.Errorf("Dpi: %+v", r)
	}
}

// A bug met by one gateway (here a panic in the SAG adapter, while planning
// one gateway and while requesting another's upgrade) fails that gateway
// alone, with the panic in the log: the run goes on, the other gateways are
// upgraded, and the report comes back.
func TestPanicFailsOneGatewayNotTheRun(t *testing.T) {
	gws := gateways("sag-p%02d", 20, "2.0.8")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		switch {
		case action == "Versions" && id == "sag-p03":
			panic("adapter bug in a version list")
		case action == "Update" && id == "sag-p11":
			panic("adapter bug in an update")
		}
		return nil
	}
	hs := newHarness(t, sag, func(c *Config) { c.VersionTypes = []upgrade.VersionType{upgrade.VersionDevice} })
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	if len(report.Results) != 20 {
		t.Fatalf("%d results for 20 gateways", len(report.Results))
	}
	for _, id := range []string{"sag-p03", "sag-p11"} {
		if r := got[id+"/Device"]; r.Outcome != upgrade.OutcomeFailed || r.Reason != upgrade.ReasonInternal || !strings.Contains(r.Error, "adapter bug") {
			t.Errorf("%s: %+v, want failed/%s", id, r, upgrade.ReasonInternal)
		}
	}
	if report.Counts.Requested != 18 {
		t.Errorf("counts %+v: want the 18 other gateways requested", report.Counts)
	}
	if n := strings.Count(hs.logs.String(), "gateway aborted by a panic"); n != 2 {
		t.Errorf("%d panic log lines, want 2", n)
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
