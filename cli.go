package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

type cliOptions struct {
	simulate bool
	event    string
	fleet    string
	serve    string
	nights   int
	audit    string
}

// The simulated function's invocation timeout, as in s.yaml.
const localTimeout = 15 * time.Minute

// runCLI runs the local command line and returns the exit code. The report
// goes to stdout and nothing else does, so `go run . -simulate | jq .counts`
// works; progress and the summary go to stderr.
func runCLI(o cliOptions, stdout, stderr io.Writer) int {
	switch {
	case o.simulate && o.serve != "":
		return serveSimulated(o, stderr)
	case o.simulate:
		return simulate(o, stdout, stderr)
	case o.serve != "":
		fmt.Fprintln(stderr, "sag-upgrade: -serve needs -simulate")
		return 2
	case o.event != "":
		return realRun(o, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: sag-upgrade -simulate [-event FILE] [-fleet FILE] | -simulate -serve ADDR | -event FILE")
	return 2
}

// simulation is the function running in-process on the simulated cloud, with
// the same handler and adapters as production and the cloud's clock as its
// domain time.
type simulation struct {
	cloud *cloudsim.Cloud
	h     *handler.Handler
	inv   handler.Invocation
}

func newSimulation(o cliOptions, stderr io.Writer) (*simulation, error) {
	f, err := fleet.Load(o.fleet)
	if err != nil {
		return nil, err
	}
	cloud, err := cloudsim.Start(cloudsim.Options{Fleet: f, SAG: sagsim.Options{Latency: 10 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	// The simulated cloud's endpoints always win; the rest of the
	// environment (DRY_RUN, MAINTENANCE_WINDOW, …) is the operator's.
	simEnv := map[string]string{}
	for _, kv := range cloud.Env() {
		k, v, _ := strings.Cut(kv, "=")
		simEnv[k] = v
	}
	simEnv["API_QPS"] = "100" // the emulator is local; a real account gets the conservative default
	getenv := func(k string) string {
		if _, fixed := cloudsim.Endpoints[k]; fixed {
			return simEnv[k]
		}
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return simEnv[k]
	}
	cfg, err := handler.ConfigFromEnv(getenv, cloudsim.Region)
	if err != nil {
		cloud.Close()
		return nil, err
	}
	creds := cloud.Credentials(24 * time.Hour * time.Duration(max(o.nights, 1)+1))
	return &simulation{
		cloud: cloud,
		// The simulation plays the operators' function: an event file is
		// invoked as `s invoke` would, so a direct stop or reset is served
		// (a timer, topic or queue event is still refused control).
		h: &handler.Handler{Config: cfg, Connect: connector(cfg), Clock: cloud.Clock.Now, Log: newLogger(progressWriter(stderr), cfg.LogLevel),
			Control: true},
		inv: handler.Invocation{Region: cloudsim.Region, AccountID: f.AccountID, FunctionName: "sag-upgrade",
			Credentials: handler.Credentials{AccessKeyID: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken}},
	}, nil
}

// invoke runs one invocation, as FC would with its timeout.
func (s *simulation) invoke(payload []byte) (events.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), localTimeout)
	defer cancel()
	inv := s.inv
	inv.RequestID = "sim-" + randomHex(8)
	return s.h.Invoke(ctx, inv, payload)
}

// simulate runs one invocation on the embedded simulated cloud, or with
// -nights N, N nights: each a timer sweep, then the night's work queue (the
// verify requests, due when the devices have rebooted) delivered as the
// simulated clock moves on.
func simulate(o cliOptions, stdout, stderr io.Writer) int {
	payload, err := readEvent(o.event)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	s, err := newSimulation(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	defer s.cloud.Close()
	f := s.cloud.Fleet
	fmt.Fprintf(stderr, "Simulated cloud at %s: fleet %s (%d gateways in %s), clock %s\n",
		s.cloud.URL, o.fleet, len(f.Gateways), strings.Join(f.Regions, ", "), localTime(s.cloud.Clock.Now()))

	if o.nights <= 1 {
		report, err := s.invoke(payload)
		var rejected *handler.RejectedError
		if err != nil && !errors.As(err, &rejected) {
			fmt.Fprintln(stderr, "sag-upgrade:", err)
			return 1
		}
		var out any = report
		if report.Fanout != nil {
			// A planner: run its batches now, as the queue trigger would
			// (the verify requests stay on the queue, due later).
			all, err := s.drain([]events.Report{report})
			if err != nil {
				fmt.Fprintln(stderr, "sag-upgrade:", err)
				return 1
			}
			report, out = combine(all), all
		}
		summarize(stderr, report, s.cloud)
		if err := writeJSON(stdout, out); err != nil {
			fmt.Fprintln(stderr, "sag-upgrade:", err)
			return 1
		}
		if rejected != nil {
			fmt.Fprintln(stderr, "\nsag-upgrade:", err)
			return 1
		}
		return 0
	}

	var all []events.Report
	start := s.cloud.Clock.Now()
	for night := 1; night <= o.nights; night++ {
		fired := start.Add(time.Duration(night-1) * 24 * time.Hour)
		fmt.Fprintf(stderr, "\n=== Night %d, %s\n", night, localTime(fired))
		tonight, err := s.night(fired, payload)
		if err != nil {
			fmt.Fprintln(stderr, "sag-upgrade:", err)
			return 1
		}
		all = append(all, tonight...)
		summarizeNight(stderr, night, tonight, latestRollouts(all))
	}
	s.summarizeLedger(stderr, o.audit)
	if err := writeJSON(stdout, all); err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	return 0
}

// night runs one night from fired: the timer's sweep (or payload, when
// given), then the work queue's messages as they become due, for four hours
// of simulated time.
func (s *simulation) night(fired time.Time, payload []byte) ([]events.Report, error) {
	s.cloud.Clock.Set(fired)
	if payload == nil {
		payload = timerEvent(fired)
	}
	report, err := s.invoke(payload)
	if err != nil {
		return nil, err
	}
	reports := []events.Report{report}
	for end := fired.Add(4 * time.Hour); s.cloud.Clock.Now().Before(end); s.cloud.Clock.Advance(time.Minute) {
		if reports, err = s.drain(reports); err != nil {
			return reports, err
		}
	}
	return reports, nil
}

// drain runs the work queue's messages that are due now, one invocation
// each, until none is left.
func (s *simulation) drain(reports []events.Report) ([]events.Report, error) {
	for batch := s.cloud.QueueBatch(cloudsim.WorkQueue, 1); batch != nil; batch = s.cloud.QueueBatch(cloudsim.WorkQueue, 1) {
		r, err := s.invoke(batch)
		if err != nil {
			return reports, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// combine sums the reports of a planner and its workers into one, for the
// summary.
func combine(reports []events.Report) events.Report {
	out := reports[0]
	out.Results = nil
	out.Counts = upgrade.Counts{Scanned: reports[0].Counts.Scanned} // the planner listed the fleet
	seen := map[string]bool{}
	for _, r := range reports {
		out.Results = append(out.Results, r.Results...)
		c := r.Counts
		out.Counts.Requested += c.Requested
		out.Counts.Planned += c.Planned
		out.Counts.Skipped += c.Skipped
		out.Counts.Deferred += c.Deferred
		out.Counts.Failed += c.Failed
		out.Counts.Rejected += c.Rejected
		out.Counts.Verified += c.Verified
		out.Counts.Unverified += c.Unverified
		out.Publishing.Published += r.Publishing.Published
		out.Publishing.Failed += r.Publishing.Failed
		for _, ro := range r.Rollouts {
			if !seen[ro.ID] {
				seen[ro.ID] = true
				out.Rollouts = append(out.Rollouts, ro)
			}
		}
		if r.FinishedAt.After(out.FinishedAt) {
			out.FinishedAt = r.FinishedAt
		}
	}
	out.Publishing.Published -= reports[0].Publishing.Published // counted twice above
	out.Publishing.Failed -= reports[0].Publishing.Failed
	return out
}

// timerEvent is the nightly timer's event for a night, as s.yaml configures
// it; its trigger time makes each night a run of its own.
func timerEvent(at time.Time) []byte {
	b, _ := json.Marshal(map[string]string{
		"triggerTime": at.UTC().Format(time.RFC3339), "triggerName": "nightly-sweep",
		"payload": `{"kind":"sweep","correlationId":"nightly"}`,
	})
	return b
}

// summarizeNight prints one line per invocation of a night, then where the
// rollouts stand at its end.
func summarizeNight(w io.Writer, night int, reports []events.Report, rollouts []upgrade.Rollout) {
	fmt.Fprintf(w, "\nNight %d:\n", night)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tTRIGGER\tREQUESTED\tVERIFIED\tUNVERIFIED\tSKIPPED\tDEFERRED\tFAILED\tIN PROGRESS\tPENALTY")
	for _, r := range reports {
		inProgress, penalty := 0, 0
		for _, res := range r.Results {
			switch res.Reason {
			case upgrade.ReasonInProgress:
				inProgress++
			case upgrade.ReasonPenalty:
				penalty++
			}
		}
		c := r.Counts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.RunID, r.Trigger, c.Requested, c.Verified, c.Unverified,
			c.Skipped, c.Deferred, c.Failed, inProgress, penalty)
	}
	tw.Flush()
	printRollouts(w, rollouts)
}

// latestRollouts is each rollout as the last run that touched it left it:
// after a night, its state at the end of that night, not at the start of its
// sweep (so a breaker that opened or a wave verified later that night shows).
func latestRollouts(reports []events.Report) []upgrade.Rollout {
	var out []upgrade.Rollout
	at := map[string]int{}
	for _, r := range reports {
		for _, ro := range r.Rollouts {
			if i, ok := at[ro.ID]; ok {
				out[i] = ro
				continue
			}
			at[ro.ID] = len(out)
			out = append(out, ro)
		}
	}
	return out
}

// printRollouts shows where each rollout stands.
func printRollouts(w io.Writer, rollouts []upgrade.Rollout) {
	if len(rollouts) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLLOUT\tWAVE\tLET IN\tVERIFIED\tFAILED\tBREAKER\tWHY")
	for _, ro := range rollouts {
		wave := fmt.Sprint(ro.Wave)
		if ro.Wave == 0 {
			wave = "canary"
		}
		if ro.Done {
			wave = "done"
		}
		fmt.Fprintf(tw, "%s %s → %s\t%s\t%d (wave: %d of %d)\t%d\t%d\t%s\t%s\n", ro.VersionType, ro.Model, ro.Target, wave,
			ro.LetIn, ro.WaveLimit, ro.Population, ro.Verified, ro.Failed, ro.Breaker, ro.Reason)
	}
	tw.Flush()
}

// summarizeLedger prints the ledger's records by state, and one gateway's
// audit trail when asked.
func (s *simulation) summarizeLedger(w io.Writer, auditID string) {
	ctx := context.Background()
	cloud, err := s.h.Connect(ctx, s.inv)
	if err != nil || cloud.Ledger == nil {
		return
	}
	all := []handler.State{handler.StateClaimed, handler.StateRequested, handler.StateVerified, handler.StateUnverified, handler.StateFailed, handler.StateReleased}
	recs, err := cloud.Ledger.Scan(ctx, all...)
	if err != nil {
		fmt.Fprintln(w, "ledger:", err)
		return
	}
	byState := map[handler.State]int{}
	inBox := 0
	for _, r := range recs {
		byState[r.State]++
		if s.cloud.Clock.Now().Before(r.PenaltyUntil) {
			inBox++
		}
	}
	var parts []string
	for _, st := range all {
		if byState[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, byState[st]))
		}
	}
	fmt.Fprintf(w, "\nLedger: %s; %d in the penalty box\n", strings.Join(parts, ", "), inBox)
	if auditID == "" {
		return
	}
	history, err := cloud.Ledger.History(ctx, auditID)
	if err != nil {
		fmt.Fprintln(w, "ledger:", err)
		return
	}
	fmt.Fprintf(w, "\nAudit trail of %s:\n", auditID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tVERSIONS\tTRIGGER\tRUN\tFC REQUEST\tAPI REQUEST\tERROR")
	for _, e := range history {
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\t%s\t%s\t%s\t%s\n", localTime(e.Time), e.Event, e.From, e.Target, e.Trigger,
			e.RunID, e.RequestID, e.APIRequestID, e.Error)
	}
	tw.Flush()
}

func localTime(t time.Time) string { return t.In(shanghai()).Format("2006-01-02 15:04 MST") }

// progressWriter renders the handler's log lines for people: a decision as
// "sag-… (region) Device 2.0.8 → 2.3.1: requested", other lines as zerolog's
// console format.
func progressWriter(w io.Writer) zerolog.ConsoleWriter {
	noColor := true
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			noColor = false
		}
	}
	return zerolog.ConsoleWriter{
		Out: w, NoColor: noColor, TimeFormat: "15:04:05.000",
		FieldsExclude: []string{"service", "requestId", "runId", "config", "duration"},
		FormatPrepare: func(m map[string]any) error {
			if m[zerolog.MessageFieldName] != "decision" {
				return nil
			}
			str := func(k string) string { s, _ := m[k].(string); delete(m, k); return s }
			line := fmt.Sprintf("%s (%s) %s %s", str("smartAGId"), str("regionId"), str("versionType"), str("fromVersion"))
			if to := str("toVersion"); to != "" {
				line += " → " + to
			}
			line += ": " + str("outcome")
			if reason := str("reason"); reason != "" {
				line += " " + reason
			}
			m[zerolog.MessageFieldName] = line
			return nil
		},
	}
}

// summarize prints a table of the outcomes and their reasons.
func summarize(w io.Writer, r events.Report, cloud *cloudsim.Cloud) {
	reasons := map[upgrade.Outcome]map[string]int{}
	for _, res := range r.Results {
		if reasons[res.Outcome] == nil {
			reasons[res.Outcome] = map[string]int{}
		}
		reason := res.Reason
		if res.ErrorCode != "" {
			reason += "/" + res.ErrorCode
		}
		reasons[res.Outcome][strings.TrimPrefix(reason, "/")]++
	}
	fmt.Fprintf(w, "\nRun %s (%s), %s, %d gateways scanned\n\n", r.RunID, r.Trigger,
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond), r.Counts.Scanned)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTCOME\tCOUNT\tREASONS")
	c := r.Counts
	for _, row := range []struct {
		o upgrade.Outcome
		n int
	}{
		{upgrade.OutcomeRequested, c.Requested}, {upgrade.OutcomePlanned, c.Planned}, {upgrade.OutcomeSkipped, c.Skipped},
		{upgrade.OutcomeDeferred, c.Deferred}, {upgrade.OutcomeFailed, c.Failed}, {upgrade.OutcomeRejected, c.Rejected},
		{upgrade.OutcomeVerified, c.Verified}, {upgrade.OutcomeUnverified, c.Unverified},
	} {
		if row.n == 0 {
			continue
		}
		var parts []string
		for reason, n := range reasons[row.o] {
			if reason == "" {
				reason = "-"
			}
			parts = append(parts, fmt.Sprintf("%s %d", reason, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(tw, "%s\t%d\t%s\n", row.o, row.n, strings.Join(parts, ", "))
	}
	tw.Flush()
	printRollouts(w, r.Rollouts)
	fmt.Fprintf(w, "\nOutcome events published to %s: %d (%d failed)\n", cloudsim.OutcomeTopic, r.Publishing.Published, r.Publishing.Failed)
	if cloud != nil {
		calls := map[string]int{}
		for _, call := range cloud.SAG.Calls() {
			calls[call.Action]++
		}
		var parts []string
		for a, n := range calls {
			parts = append(parts, fmt.Sprintf("%s %d", a, n))
		}
		slices.Sort(parts)
		fmt.Fprintf(w, "SAG API calls: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "The run report is on stdout.")
}

// serveSimulated serves the simulated cloud until interrupted, and prints how
// to point the function (or the CLI) at it.
func serveSimulated(o cliOptions, w io.Writer) int {
	f, err := fleet.Load(o.fleet)
	if err != nil {
		fmt.Fprintln(w, "sag-upgrade:", err)
		return 1
	}
	cloud, err := cloudsim.Start(cloudsim.Options{Fleet: f, Addr: o.serve})
	if err != nil {
		fmt.Fprintln(w, "sag-upgrade:", err)
		return 1
	}
	defer cloud.Close()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	key := cloud.Keyring.AddAccessKey(f.AccountID)
	fmt.Fprintf(w, "Simulated cloud for %s (%d gateways) serving SAG and MNS at %s\n", o.fleet, len(f.Gateways), cloud.URL)
	fmt.Fprintln(w, "Environment for the function (simulated credentials, valid only here):")
	for _, kv := range cloud.Env() {
		fmt.Fprintln(w, "  export "+kv)
	}
	fmt.Fprintln(w, "  export ALIBABA_CLOUD_ACCESS_KEY_ID="+key.AccessKeyID)
	fmt.Fprintln(w, "  export ALIBABA_CLOUD_ACCESS_KEY_SECRET="+key.AccessKeySecret)
	fmt.Fprintln(w, "Interrupt (Ctrl-C) to stop.")
	<-stop
	return 0
}

// realRun makes one invocation against Alibaba Cloud with the credentials of
// the environment. Logs go to stderr, the report to stdout.
func realRun(o cliOptions, stdout, stderr io.Writer) int {
	payload, err := readEvent(o.event)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	region := os.Getenv("FC_REGION")
	if region == "" {
		region = os.Getenv("ALIBABA_CLOUD_REGION_ID")
	}
	cfg, err := handler.ConfigFromEnv(os.Getenv, region)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	inv := handler.Invocation{
		RequestID: "cli-" + randomHex(8), Region: region, AccountID: os.Getenv("ALIBABA_CLOUD_ACCOUNT_ID"), FunctionName: "sag-upgrade-cli",
		Credentials: handler.Credentials{
			AccessKeyID:     os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"),
			AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
			SecurityToken:   os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"),
		},
	}
	if inv.Credentials.AccessKeyID == "" || inv.Credentials.AccessKeySecret == "" {
		fmt.Fprintln(stderr, "sag-upgrade: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for STS)")
		return 1
	}
	h := &handler.Handler{Config: cfg, Connect: connector(cfg), Log: newLogger(stderr, cfg.LogLevel)}
	ctx, cancel := context.WithTimeout(context.Background(), localTimeout)
	defer cancel()
	report, err := h.Invoke(ctx, inv, payload)
	if werr := writeJSON(stdout, report); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	return 0
}

func readEvent(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return os.ReadFile(path)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func shanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.UTC
	}
	return loc
}
