package main

// sagctl in-process, through the official FC and STS SDKs, against the
// simulated cloud's FC 3.0 InvokeFunction (fcapi) and GetCallerIdentity
// (stssim), with stand-in functions that record what they were sent and
// answer what a test says. internal/e2e drives the built sagctl against the
// real function.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcapi"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

func TestMain(m *testing.M) {
	// The SDKs honour proxy variables even for loopback.
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"} {
		os.Unsetenv(v)
	}
	os.Exit(m.Run())
}

// function stands in for a deployed function: it decodes each payload with
// the function's own parser and answers what answer returns.
type function struct {
	mu     sync.Mutex
	got    []events.Request
	answer func(events.Request) fcsim.Result
}

func (f *function) Invoke(ctx context.Context, payload []byte, _ fcsim.InvokeOptions) (fcsim.Result, error) {
	req, err := events.ParseRequest(payload)
	if err != nil {
		return failed("RejectedRequest", "request rejected: "+err.Error()), nil
	}
	f.mu.Lock()
	f.got = append(f.got, req)
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		return reply(events.Report{RunID: "run-1", Trigger: events.TriggerDirect}), nil
	}
	return answer(req), nil
}

func (f *function) requests() []events.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Request(nil), f.got...)
}

func (f *function) answering(a func(events.Request) fcsim.Result) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

func reply(r events.Report) fcsim.Result {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return fcsim.Result{Body: b}
}

// failed is a function error as the runtime posts it.
func failed(errorType, message string) fcsim.Result {
	b, _ := json.Marshal(map[string]string{"errorMessage": message, "errorType": errorType})
	return fcsim.Result{Body: b, Failed: true, ErrorType: errorType, ErrorMessage: message}
}

type harness struct {
	cloud          *cloudsim.Cloud
	query, control *function
	key            auth.Credential // the operator's: a RAM user's key
	env            map[string]string
	secrets        []string // never printed
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	c, err := cloudsim.Start(cloudsim.Options{Fleet: fleet.Generate(fleet.Options{Gateways: 10, Seed: 3})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &harness{cloud: c, query: &function{}, control: &function{}}
	// As deploy/release.sh leaves them: the alias live, which sagctl
	// invokes by default, on the functions' one version.
	for name, f := range map[string]*function{defaultQueryFunction: h.query, defaultControlFunction: h.control} {
		if err := c.FC.Register(fcapi.Function{Name: name, Qualifier: defaultQualifier, VersionID: "1", Target: f}); err != nil {
			t.Fatal(err)
		}
	}
	h.key = c.Keyring.AddUserKey(c.Fleet.AccountID, "oncall")
	h.secrets = []string{h.key.AccessKeySecret}
	h.env = map[string]string{
		"HOME":                            t.TempDir(), // no aliyun CLI profile
		"SAGCTL_ENDPOINT":                 c.URL,
		"ALIBABA_CLOUD_REGION_ID":         cloudsim.Region,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     h.key.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": h.key.AccessKeySecret,
	}
	return h
}

// sagctl runs the command in-process with the harness's environment and
// checks that no secret was printed.
func (h *harness) sagctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = run(args, &out, &errs, func(k string) (string, bool) { v, ok := h.env[k]; return v, ok })
	for _, s := range h.secrets {
		if s != "" && (strings.Contains(out.String(), s) || strings.Contains(errs.String(), s)) {
			t.Errorf("sagctl %v printed a secret", args)
		}
	}
	return code, out.String(), errs.String()
}

func (h *harness) calls() int { return len(h.query.requests()) + len(h.control.requests()) }

func TestHelp(t *testing.T) {
	h := newHarness(t)
	code, out, _ := h.sagctl(t, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("--help does not list %s", c.name)
		}
	}
	for _, want := range []string{"Exit status:", "3  the function could not be called", "SAGCTL_ENDPOINT", "~/.aliyun/config.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {"help", c.name}, {c.name, "-h"}} {
			code, out, _ := h.sagctl(t, args...)
			if code != exitOK || !strings.Contains(out, "Usage: sagctl "+c.name) || !strings.Contains(out, "Examples:\n  sagctl ") ||
				!strings.Contains(out, "Exit status:") || !strings.Contains(out, "-json") {
				t.Errorf("%v: exit %d\n%s", args, code, out)
			}
		}
	}
	if code, _, errs := h.sagctl(t); code != exitUsage || !strings.Contains(errs, "Usage: sagctl <command>") {
		t.Errorf("no arguments: exit %d\n%s", code, errs)
	}
	if h.calls() != 0 {
		t.Errorf("help called the function %d times", h.calls())
	}
}

// A command line the function would refuse is refused here, with the
// function's own words, and nothing is sent.
func TestUsageErrorsSendNothing(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"status", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"status", "extra"}, "status takes no arguments"},
		{[]string{"history"}, "history takes one gateway id"},
		{[]string{"history", "sag-a", "sag-b"}, "history takes one gateway id"},
		{[]string{"history", "SAG-Upper"}, "gatewayIds[0]"},
		{[]string{"run"}, "run names the gateways"},
		{[]string{"run", "--type", "Firmware", "sag-abc"}, "versionTypes[0]"},
		{[]string{"plan", "--regions", "mars-1"}, "regions[0]"},
		{[]string{"stop", "sag-abc"}, "stop takes no arguments"},
		{[]string{"reset"}, "targetVersion: a reset names the rollout's targetVersion"},
		{[]string{"pause", "--model", "sag-1000"}, "targetVersion: a pause names"},
		{[]string{"unpause", "--target", "two"}, "targetVersion"},
		{[]string{"approve", "--target", "2.3.1", "--model", "sag-1000"}, "wave: an approval names the wave"},
		{[]string{"approve", "--target", "2.3.1", "--wave", "1"}, "model: an approval names the rollout's model"},
		{[]string{"approve", "--target", "2.3.1", "--model", "sag-1000", "--wave", "99"}, "wave: 99 is not a wave"},
		{[]string{"status", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"status", "--endpoint", "ftp://x"}, "want a URL"},
		{[]string{"stop", "--operator", "bad\x01name"}, "operator: has a character that is not printable"},
	} {
		code, _, errs := h.sagctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, want %d and %q in:\n%s", tc.args, code, exitUsage, tc.want, errs)
		}
	}
	delete(h.env, "SAGCTL_ENDPOINT")
	delete(h.env, "ALIBABA_CLOUD_REGION_ID")
	if code, _, errs := h.sagctl(t, "status"); code != exitUsage || !strings.Contains(errs, "no region") {
		t.Errorf("no region: exit %d\n%s", code, errs)
	}
	h.env["DEBUG"] = "dara"
	if code, _, errs := h.sagctl(t, "status", "--region", "cn-shanghai"); code != exitUsage || !strings.Contains(errs, "DEBUG=dara") {
		t.Errorf("DEBUG=dara: exit %d\n%s", code, errs)
	}
	if n := h.calls() + len(h.cloud.FC.Calls()) + len(h.cloud.STS.Calls()); n != 0 {
		t.Errorf("%d calls went out", n)
	}
}

// Each subcommand sends the request it names to the function that serves
// it, as the function decodes it, with the operator and a correlation id.
func TestRequests(t *testing.T) {
	h := newHarness(t)
	arn := "acs:ram::" + h.cloud.Fleet.AccountID + ":user/oncall"
	for _, tc := range []struct {
		args  []string
		query bool
		want  events.Request
	}{
		{[]string{"status"}, true, events.Request{Kind: upgrade.KindStatus}},
		{[]string{"history", "sag-abc", "--type", "Dpi"}, true, events.Request{Kind: upgrade.KindHistory, GatewayIDs: []string{"sag-abc"},
			VersionTypes: []upgrade.VersionType{upgrade.VersionDpi}}},
		{[]string{"plan", "--regions", "cn-shanghai", "--target", "2.3.1", "sag-abc"}, true, events.Request{Kind: upgrade.KindPlan,
			Regions: []string{"cn-shanghai"}, GatewayIDs: []string{"sag-abc"}, TargetVersion: "2.3.1"}},
		{[]string{"plan"}, true, events.Request{Kind: upgrade.KindPlan}},
		{[]string{"run", "--force", "--dry-run", "--target", "2.3.1", "--type", "Device,Dpi", "sag-abc", "sag-def"}, false,
			events.Request{Kind: upgrade.KindSweep, GatewayIDs: []string{"sag-abc", "sag-def"}, Force: true, DryRun: true,
				TargetVersion: "2.3.1", VersionTypes: []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi}}},
		{[]string{"run", "sag-abc"}, false, events.Request{Kind: upgrade.KindSweep, GatewayIDs: []string{"sag-abc"}}},
		{[]string{"stop"}, false, events.Request{Kind: upgrade.KindStop}},
		{[]string{"resume"}, false, events.Request{Kind: upgrade.KindResume}},
		{[]string{"pause", "--target", "2.3.1", "--model", "sag-1000", "--type", "Device"}, false, events.Request{Kind: upgrade.KindPause,
			TargetVersion: "2.3.1", Model: "sag-1000", VersionTypes: []upgrade.VersionType{upgrade.VersionDevice}}},
		{[]string{"unpause", "--target", "2.3.1"}, false, events.Request{Kind: upgrade.KindUnpause, TargetVersion: "2.3.1"}},
		{[]string{"reset", "--target", "2.3.1", "--model", "sag-1000"}, false, events.Request{Kind: upgrade.KindReset, TargetVersion: "2.3.1", Model: "sag-1000"}},
		{[]string{"approve", "--target", "2.3.1", "--model", "sag-1000", "--wave", "2"}, false, events.Request{Kind: upgrade.KindApprove,
			TargetVersion: "2.3.1", Model: "sag-1000", Wave: 2}},
	} {
		before := map[bool]int{true: len(h.query.requests()), false: len(h.control.requests())}
		code, _, errs := h.sagctl(t, tc.args...)
		if code != exitOK && !strings.Contains(errs, "does not say what the request changed") && !strings.Contains(errs, "has no") &&
			!strings.Contains(errs, "does not say how the plan") {
			t.Fatalf("%q: exit %d\n%s", tc.args, code, errs)
		}
		f := map[bool]*function{true: h.query, false: h.control}
		if got := len(f[!tc.query].requests()); got != before[!tc.query] {
			t.Fatalf("%q reached the wrong function", tc.args)
		}
		reqs := f[tc.query].requests()
		if len(reqs) != before[tc.query]+1 {
			t.Fatalf("%q: %d requests reached the function", tc.args, len(reqs)-before[tc.query])
		}
		got := reqs[len(reqs)-1]
		if got.Operator != arn || !strings.HasPrefix(got.CorrelationID, "sagctl-") {
			t.Errorf("%q: operator %q, correlation id %q", tc.args, got.Operator, got.CorrelationID)
		}
		tc.want.Operator, tc.want.CorrelationID = got.Operator, got.CorrelationID
		if a, b := mustJSON(got), mustJSON(tc.want); a != b {
			t.Errorf("%q sent\n%s\nwant\n%s", tc.args, a, b)
		}
	}
	// The caller's identity was asked once per command that needed it.
	if n := len(h.cloud.STS.Calls()); n != h.calls() {
		t.Errorf("%d GetCallerIdentity calls for %d commands", n, h.calls())
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// An operator named by flag or variable needs no caller identity; the
// function names, the qualifier and the correlation id can be chosen.
func TestOperatorFunctionsAndQualifier(t *testing.T) {
	h := newHarness(t)
	h.sagctl(t, "stop", "--operator", "alice@noc", "--correlation-id", "INC-1")
	h.env["SAGCTL_OPERATOR"] = "bob@noc"
	h.sagctl(t, "resume")
	reqs := h.control.requests()
	if len(reqs) != 2 || reqs[0].Operator != "alice@noc" || reqs[0].CorrelationID != "INC-1" || reqs[1].Operator != "bob@noc" {
		t.Fatalf("requests %+v", reqs)
	}
	if n := len(h.cloud.STS.Calls()); n != 0 {
		t.Fatalf("%d GetCallerIdentity calls with the operator named", n)
	}

	other, prod := &function{}, &function{}
	h.cloud.FC.Register(fcapi.Function{Name: "ops-control", Qualifier: "live", VersionID: "1", Target: other})
	h.cloud.FC.Register(fcapi.Function{Name: "ops-query", Qualifier: "live", VersionID: "1", Target: other})
	h.cloud.FC.Register(fcapi.Function{Name: defaultControlFunction, Qualifier: "prod", VersionID: "4", Target: prod})
	h.sagctl(t, "stop", "--control-function", "ops-control")
	h.env["SAGCTL_QUERY_FUNCTION"] = "ops-query"
	h.sagctl(t, "status")
	h.sagctl(t, "stop", "--qualifier", "prod")
	h.env["SAGCTL_QUALIFIER"] = "prod"
	h.sagctl(t, "resume")
	if n := len(other.requests()); n != 2 {
		t.Errorf("the functions named got %d requests, want 2", n)
	}
	if n := len(prod.requests()); n != 2 {
		t.Errorf("the prod alias got %d requests, want 2", n)
	}
	delete(h.env, "SAGCTL_QUALIFIER")
	if code, _, errs := h.sagctl(t, "stop", "--qualifier", "staging"); code != exitUnreachable || !strings.Contains(errs, "AliasNotFound") {
		t.Errorf("an alias that does not exist: exit %d\n%s", code, errs)
	}
	for _, c := range h.cloud.FC.Calls() {
		if c.InvocationType != "Sync" {
			t.Errorf("an invocation of type %q", c.InvocationType)
		}
	}
}

func TestExitStatus(t *testing.T) {
	h := newHarness(t)
	h.control.answering(func(req events.Request) fcsim.Result {
		switch req.CorrelationID {
		case "rejected":
			return failed("RejectedRequest", "request rejected: no such rollout: no Device rollout to version 9.9.9 in the ledger")
		case "control-failed":
			return failed("ControlFailed", "control request failed: pause: the ledger timed out")
		case "failures":
			return reply(events.Report{RunID: "run-f", Counts: upgrade.Counts{Scanned: 2, Requested: 1, Failed: 1},
				Results: []upgrade.Result{{SmartAGID: "sag-abc", Outcome: upgrade.OutcomeFailed, ErrorCode: "PermissionError"}}})
		case "slow":
			time.Sleep(2 * time.Second)
		}
		return reply(events.Report{RunID: "run-ok", Counts: upgrade.Counts{Scanned: 1, Requested: 1},
			Control: []upgrade.Control{{Kind: upgrade.KindStop, Subject: "killSwitch", Changed: true}}})
	})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stop", "--correlation-id", "ok"}, exitOK, ""},
		{[]string{"reset", "--target", "9.9.9", "--correlation-id", "rejected"}, exitFailed,
			"sag-upgrade-control rejected the request (RejectedRequest): request rejected: no such rollout"},
		{[]string{"pause", "--target", "2.3.1", "--correlation-id", "control-failed"}, exitFailed, "could not carry out the request (ControlFailed)"},
		{[]string{"run", "sag-abc", "--correlation-id", "failures"}, exitFailed, "the run reports 1 failed and 0 rejected (run run-f)"},
		{[]string{"status"}, exitFailed, "the answer has no status"},
		{[]string{"stop", "--control-function", "nope"}, exitUnreachable, "FunctionNotFound (HTTP 404)"},
		{[]string{"stop", "--correlation-id", "slow", "--timeout", "300ms"}, exitUnreachable, "no answer within 300ms"},
	} {
		code, _, errs := h.sagctl(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, want %d and %q in:\n%s", tc.args, code, tc.code, tc.want, errs)
		}
	}

	// Credentials FC does not accept; an endpoint nobody answers.
	h.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "not-the-secret"
	h.secrets = append(h.secrets, "not-the-secret")
	if code, _, errs := h.sagctl(t, "stop", "--operator", "x"); code != exitUnreachable || !strings.Contains(errs, "SignatureNotMatch") {
		t.Errorf("a wrong secret: exit %d\n%s", code, errs)
	}
	h.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = h.key.AccessKeySecret
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if code, _, errs := h.sagctl(t, "stop", "--endpoint", "http://"+closed); code != exitUnreachable || !strings.Contains(errs, "connection refused") {
		t.Errorf("nobody answering: exit %d\n%s", code, errs)
	}
}

// --json prints the function's answer as it came, an error too.
func TestJSON(t *testing.T) {
	h := newHarness(t)
	sent := events.Report{RunID: "run-j", Trigger: events.TriggerDirect, Status: &events.Status{NightUsed: 3, NightLimit: 10,
		KillSwitch: upgrade.State{KillSwitch: new(bool)}}}
	h.query.answering(func(events.Request) fcsim.Result { return reply(sent) })
	code, out, errs := h.sagctl(t, "status", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var got events.Report
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, out)
	}
	if mustJSON(got) != mustJSON(sent) || !strings.Contains(out, "\n  \"runId\": \"run-j\"") {
		t.Fatalf("--json printed\n%s", out)
	}
	h.control.answering(func(events.Request) fcsim.Result {
		return failed("RejectedRequest", "request rejected: wave: not the next wave")
	})
	code, out, _ = h.sagctl(t, "approve", "--target", "2.3.1", "--model", "sag-1000", "--wave", "3", "--json")
	var fe functionError
	if err := json.Unmarshal([]byte(out), &fe); code != exitFailed || err != nil || fe.ErrorType != "RejectedRequest" {
		t.Fatalf("exit %d, stdout %s", code, out)
	}
}

// The tables say what the reports say.
func TestTables(t *testing.T) {
	h := newHarness(t)
	on := true
	at := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	ro := upgrade.Rollout{ID: "rollout#Device#sag-1000#2.3.1", VersionType: upgrade.VersionDevice, Model: "sag-1000", Target: "2.3.1", Wave: 1,
		WaveLimit: 7, Verified: 9, Failed: 1, InFlight: 2, Breaker: "closed", AwaitingApproval: 2, NextWaveAt: at}
	paused := ro
	paused.ID, paused.Model, paused.Paused, paused.PausedBy, paused.AwaitingApproval = "rollout#Device#sag-100wm#2.3.1", "sag-100wm", true, "acs:ram::1:user/alice", 0
	answers := map[upgrade.Kind]events.Report{
		upgrade.KindStatus: {RunID: "run-s", Status: &events.Status{
			Rollouts:   []upgrade.Rollout{ro, paused},
			KillSwitch: upgrade.State{KillSwitch: &on, SetBy: "run-k", SetAt: at},
			Runs: []upgrade.RunSummary{{RunID: "run-n1", Kind: upgrade.KindSweep, Trigger: "timer", CorrelationID: "nightly",
				StartedAt: at, FinishedAt: at.Add(time.Minute), Counts: upgrade.Counts{Scanned: 198, Requested: 12}}},
			KeptEvents: 4, KeptAtLeast: true, NightUsed: 12, NightLimit: 50,
			Fleet: &upgrade.Fleet{Regions: []upgrade.FleetRegion{{Region: "cn-shanghai", RunID: "run-n1", SeenAt: at,
				Versions: []upgrade.FleetVersion{{VersionType: upgrade.VersionDevice, Model: "sag-1000", Version: "2.0.8", Gateways: 31}}}}},
		}},
		upgrade.KindHistory: {RunID: "run-h", History: &events.History{SmartAGID: "sag-abc",
			Records: []upgrade.GatewayRecord{{VersionType: upgrade.VersionDevice, State: "verified", From: "2.0.8", Target: "2.3.1", Attempts: 1, RunID: "run-n1"}},
			Trail: []upgrade.AuditEntry{{Gateway: "sag-abc", VersionType: upgrade.VersionDevice, Time: at, Event: "requested", From: "2.0.8", Target: "2.3.1",
				RunID: "run-n1", Trigger: "direct", Correlation: "CHG-1", Operator: "acs:ram::1:user/alice", Force: true}}}},
		upgrade.KindPlan: {RunID: "run-p", DryRun: true, Plan: &events.Plan{At: map[string]time.Time{"cn-shanghai": at, "ap-southeast-1": at.Add(time.Hour)}, NoFanout: true},
			Counts:  upgrade.Counts{Scanned: 2, Planned: 1, Deferred: 1},
			Results: []upgrade.Result{{SmartAGID: "sag-abc", RegionID: "cn-shanghai", VersionType: upgrade.VersionDevice, FromVersion: "2.0.8", ToVersion: "2.3.1", Outcome: upgrade.OutcomePlanned}, {SmartAGID: "sag-def", RegionID: "cn-shanghai", VersionType: upgrade.VersionDevice, FromVersion: "2.0.8", ToVersion: "2.3.1", Outcome: upgrade.OutcomeDeferred, Reason: upgrade.ReasonAwaitingApproval}}},
	}
	answers[upgrade.KindSweep] = events.Report{RunID: "run-r", Trigger: events.TriggerDirect, RegionsClosed: map[string]time.Time{"eu-central-1": at},
		Counts:  upgrade.Counts{Scanned: 1, Deferred: 1},
		Results: []upgrade.Result{{SmartAGID: "sag-abc", RegionID: "eu-central-1", VersionType: upgrade.VersionDevice, Outcome: upgrade.OutcomeDeferred, Reason: "outside_window"}}}
	pausedAfter := ro
	pausedAfter.Paused = true
	answers[upgrade.KindPause] = events.Report{RunID: "run-c", Control: []upgrade.Control{
		{Kind: upgrade.KindPause, Subject: ro.ID, Changed: true, Before: upgrade.State{Rollout: &ro}, After: upgrade.State{Rollout: &pausedAfter}},
		{Kind: upgrade.KindPause, Subject: paused.ID, Changed: false, Before: upgrade.State{Rollout: &paused}, After: upgrade.State{Rollout: &paused}}}}
	answer := func(req events.Request) fcsim.Result { return reply(answers[req.Kind]) }
	h.query.answering(answer)
	h.control.answering(answer)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"Kill switch: ON: no update call anywhere until resume (set by run-k at " + when(at) + ")",
			"Tonight: 12 of 50 upgrades (MAX_UPGRADES_PER_NIGHT)", "Events kept for later publication: at least 4",
			"AWAITING APPROVAL", "wave 2", "yes, by acs:ram::1:user/alice", when(at), "run-n1", "nightly", "Fleet versions (each region",
			"cn-shanghai  Device  sag-1000  2.0.8    31        " + when(at) + "  run-n1"}},
		{[]string{"history", "sag-abc"}, []string{"Gateway sag-abc", "verified", "2.0.8 → 2.3.1", "requested (forced)", "CHG-1", "acs:ram::1:user/alice"}},
		{[]string{"plan"}, []string{"Evaluated as at the next window opening: ap-southeast-1 " + when(at.Add(time.Hour)) + ", cn-shanghai " + when(at),
			"Without fan-out", "planned", "awaiting_approval", "Counts: 2 scanned, 1 planned, 1 deferred"}},
		{[]string{"run", "sag-abc"}, []string{"sag-abc  eu-central-1  Device  -        deferred  outside_window", "Counts: 1 scanned, 1 deferred",
			"Not swept, their windows closed: eu-central-1 (opens " + when(at) + ")", "Run run-r (direct)"}},
		{[]string{"pause", "--target", "2.3.1"}, []string{"rollout#Device#sag-1000#2.3.1   paused no → yes",
			"rollout#Device#sag-100wm#2.3.1  unchanged: wave 1, breaker closed, paused"}},
	} {
		code, out, errs := h.sagctl(t, tc.args...)
		if code != exitOK {
			t.Errorf("%q: exit %d\n%s", tc.args, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: no %q in\n%s", tc.args, w, out)
			}
		}
	}
	// Rollout columns line up under their heads.
	_, out, _ := h.sagctl(t, "status")
	lines := strings.Split(out, "\n")
	head := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TYPE") && strings.Contains(l, "BREAKER") })
	if head < 0 || strings.Index(lines[head], "BREAKER") != strings.Index(lines[head+1], "closed") {
		t.Errorf("the rollout table is not aligned:\n%s", out)
	}
}

// writeProfile writes an aliyun CLI configuration under home.
func writeProfile(t *testing.T, home string, cfg any) string {
	t.Helper()
	dir := filepath.Join(home, ".aliyun")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func profile(name, mode, id, secret, token, region string) map[string]string {
	return map[string]string{"name": name, "mode": mode, "access_key_id": id, "access_key_secret": secret, "sts_token": token, "region_id": region}
}

// Without credentials in the environment, the aliyun CLI's profile: the
// current one, or the one ALIBABA_CLOUD_PROFILE or --profile names, with
// its region.
func TestCredentialsFromTheCLIProfile(t *testing.T) {
	h := newHarness(t)
	delete(h.env, "ALIBABA_CLOUD_ACCESS_KEY_ID")
	delete(h.env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	delete(h.env, "ALIBABA_CLOUD_REGION_ID")
	acct := h.cloud.Fleet.AccountID
	sts := h.cloud.Keyring.IssueSTS(acct, time.Hour)
	bob := h.cloud.Keyring.AddUserKey(acct, "bob")
	h.secrets = append(h.secrets, sts.AccessKeySecret, sts.SecurityToken, bob.AccessKeySecret)
	writeProfile(t, h.env["HOME"], map[string]any{"current": "oncall", "profiles": []any{
		profile("oncall", "AK", h.key.AccessKeyID, h.key.AccessKeySecret, "", "cn-shanghai"),
		profile("temp", "StsToken", sts.AccessKeyID, sts.AccessKeySecret, sts.SecurityToken, "eu-central-1"),
		profile("bob", "AK", bob.AccessKeyID, bob.AccessKeySecret, "", "ap-southeast-1"),
	}})
	for _, tc := range []struct {
		flag       string // --profile
		env        string // ALIBABA_CLOUD_PROFILE
		key        string
		region     string
		identifies string
	}{
		{"", "", h.key.AccessKeyID, "cn-shanghai", ":user/oncall"},
		{"", "temp", sts.AccessKeyID, "eu-central-1", ":assumed-role/"},
		{"bob", "temp", bob.AccessKeyID, "ap-southeast-1", ":user/bob"},
	} {
		h.env["ALIBABA_CLOUD_PROFILE"] = tc.env
		args := []string{"stop"}
		if tc.flag != "" {
			args = append(args, "--profile", tc.flag)
		}
		if code, _, errs := h.sagctl(t, args...); code != exitOK && !strings.Contains(errs, "does not say what") {
			t.Fatalf("%q with profile %q: exit %d\n%s", args, tc.env, code, errs)
		}
		calls := h.cloud.FC.Calls()
		reqs := h.control.requests()
		if last := calls[len(calls)-1]; last.AccessKeyID != tc.key || !strings.Contains(reqs[len(reqs)-1].Operator, tc.identifies) {
			t.Errorf("%q with profile %q: called as %s (%s), want %s", args, tc.env, last.AccessKeyID, reqs[len(reqs)-1].Operator, tc.key)
		}
		c, err := (&options{profile: tc.flag, timeout: time.Minute}).connect(func(k string) (string, bool) { v, ok := h.env[k]; return v, ok })
		if err != nil || c.region != tc.region {
			t.Errorf("profile %q: region %q, %v; want %s", tc.env, c.region, err, tc.region)
		}
	}
	// The environment's credentials come first.
	h.env["ALIBABA_CLOUD_ACCESS_KEY_ID"], h.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = bob.AccessKeyID, bob.AccessKeySecret
	h.env["ALIBABA_CLOUD_PROFILE"] = ""
	h.sagctl(t, "stop")
	if calls := h.cloud.FC.Calls(); calls[len(calls)-1].AccessKeyID != bob.AccessKeyID {
		t.Errorf("the environment's key did not win over the profile")
	}
	// A configuration that is not JSON is reported without quoting it.
	delete(h.env, "ALIBABA_CLOUD_ACCESS_KEY_ID")
	delete(h.env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	file := filepath.Join(h.env["HOME"], ".aliyun", "config.json")
	os.WriteFile(file, []byte(`{"current":"x","profiles":[{"access_key_secret":"`+h.key.AccessKeySecret+`"`), 0o600)
	if code, _, errs := h.sagctl(t, "stop", "--region", "cn-shanghai"); code != exitUsage && code != exitUnreachable || !strings.Contains(errs, "is not JSON") {
		t.Errorf("a broken configuration: exit %d\n%s", code, errs)
	}
	h.env["ALIBABA_CLOUD_PROFILE"] = "nobody"
	writeProfile(t, h.env["HOME"], map[string]any{"current": "oncall", "profiles": []any{profile("oncall", "AK", "a", "b", "", "")}})
	if code, _, errs := h.sagctl(t, "stop", "--region", "cn-shanghai"); code != exitUnreachable || !strings.Contains(errs, `has no profile "nobody"`) {
		t.Errorf("an unknown profile: exit %d\n%s", code, errs)
	}
}

// Without an endpoint, the account's FC endpoint: the account from the
// flag, the environment, or the caller's identity.
func TestAccountEndpoint(t *testing.T) {
	h := newHarness(t)
	delete(h.env, "SAGCTL_ENDPOINT")
	h.env["SAGCTL_STS_ENDPOINT"] = h.cloud.URL
	getenv := func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }
	acct := h.cloud.Fleet.AccountID
	c, err := (&options{timeout: time.Minute}).connect(getenv)
	if err != nil || c.host != acct+".cn-shanghai.fc.aliyuncs.com" || c.scheme != "https" {
		t.Fatalf("from the caller's identity: %+v, %v", c, err)
	}
	if n := len(h.cloud.STS.Calls()); n != 1 {
		t.Fatalf("%d GetCallerIdentity calls", n)
	}
	if op := c.operator(); op != "acs:ram::"+acct+":user/oncall" || len(h.cloud.STS.Calls()) != 1 {
		t.Fatalf("operator %q after %d calls: the identity is asked once", op, len(h.cloud.STS.Calls()))
	}
	h.env["ALIBABA_CLOUD_ACCOUNT_ID"] = "5555"
	if c, err := (&options{timeout: time.Minute, region: "eu-central-1"}).connect(getenv); err != nil || c.host != "5555.eu-central-1.fc.aliyuncs.com" {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
	if c, err := (&options{timeout: time.Minute, accountID: "7777"}).connect(getenv); err != nil || c.host != "7777.cn-shanghai.fc.aliyuncs.com" {
		t.Fatalf("from the flag: %+v, %v", c, err)
	}
	if n := len(h.cloud.STS.Calls()); n != 1 {
		t.Fatalf("the account named, STS was still asked (%d calls)", n)
	}
	// STS refuses: the account cannot be told.
	delete(h.env, "ALIBABA_CLOUD_ACCOUNT_ID")
	h.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "wrong"
	h.secrets = append(h.secrets, "wrong")
	if code, _, errs := h.sagctl(t, "status"); code != exitUnreachable || !strings.Contains(errs, "cannot tell the account id") ||
		!strings.Contains(errs, "SignatureDoesNotMatch") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
}
