package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Handler serves invocations.
type Handler struct {
	Config Config
	// Connect builds the cloud clients of one invocation from its
	// credentials.
	Connect func(ctx context.Context, inv Invocation) (Cloud, error)
	// Clock is the domain time (maintenance windows, EndTime, release ages);
	// nil means time.Now. Deadlines always use the machine's clock.
	Clock func() time.Time
	// Log receives the JSON log lines; every line of an invocation carries
	// its requestId and runId.
	Log zerolog.Logger
	// Control says this function is the operators' control endpoint
	// (CONTROL_ENDPOINT=true): deployed with no trigger, it alone serves
	// control requests and force (authority.go).
	Control bool
	// Query says this function is the look-only endpoint
	// (QUERY_ENDPOINT=true): it answers status, history and plan alone.
	Query bool

	mu    sync.Mutex
	pace  *pace       // the instance's SAG rate limit, made for Config.APIQPS
	topic TopicHealth // when the outcome topic last failed this instance's runs
}

// Invocation is what the runtime says about one invocation.
type Invocation struct {
	RequestID    string
	Region       string
	AccountID    string
	FunctionName string
	RetryCount   int
	Credentials  Credentials
}

// Credentials are the invocation's STS credentials. They print as
// "[redacted]" however they are formatted or marshalled, so a careless log
// line cannot leak them.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

func (Credentials) String() string                      { return "[redacted]" }
func (Credentials) GoString() string                    { return "[redacted]" }
func (Credentials) MarshalJSON() ([]byte, error)        { return []byte(`"[redacted]"`), nil }
func (Credentials) MarshalText() ([]byte, error)        { return []byte("[redacted]"), nil }
func (Credentials) MarshalZerologObject(*zerolog.Event) {}

// Source is the CloudEvents source of the function's events.
func (inv Invocation) Source() string {
	return fmt.Sprintf("acs:fc:%s:%s:functions/%s", inv.Region, inv.AccountID, inv.FunctionName)
}

// Invoke runs one invocation and returns its report.
func (h *Handler) Invoke(ctx context.Context, inv Invocation, payload []byte) (report events.Report, err error) {
	defer func() {
		// [] on the wire, whatever happened (jq '.results[]'). Set here, not
		// by a MarshalJSON of the report, which encoded the results twice:
		// for 12,000 (about a 100,000-gateway planner's), 6.5 MB instead of
		// 2.9 MB allocated at its end, and three times as long.
		if report.Results == nil {
			report.Results = []upgrade.Result{}
		}
	}()
	startedAt := time.Now() // the machine's: the time budget and the run's duration
	now := h.Clock
	if now == nil {
		now = time.Now
	}
	began := now() // the domain's: the report and the run's record
	decoded := events.Decode(payload)
	info := events.RunInfo{RunID: runID(inv, decoded, payload), Trigger: decoded.Trigger}
	log := h.Log.With().Str("requestId", inv.RequestID).Str("runId", info.RunID).Logger()

	defer func() {
		// No panic may escape to the runtime: it would skip the report and
		// the events of everything done so far.
		if p := recover(); p != nil {
			log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("run aborted by a panic")
			err = fmt.Errorf("internal error: %v", p)
		}
	}()

	cloud, err := h.Connect(ctx, inv)
	if err != nil {
		log.Error().Err(err).Msg("cannot build the cloud clients")
		return events.Report{}, err
	}
	budget := h.timeBudget(ctx, startedAt, cloud.CallTimeout)
	set := setting{cfg: h.Config, control: h.Control, query: h.Query, pace: h.instancePace(), topic: &h.topic}
	r := newRun(ctx, set, inv.RequestID, inv.Source(), cloud, info, log, now, budget)
	warnings := h.warnings(ctx, startedAt, cloud)
	log.Info().Str("trigger", string(decoded.Trigger)).Str("source", decoded.Source).
		Int("messages", len(decoded.Messages)).Int("retryCount", inv.RetryCount).
		Interface("config", h.Config).Bool("eventsEnabled", cloud.Events != nil).
		Bool("ledgerEnabled", cloud.Ledger != nil).Strs("warnings", warnings).
		Time("stopStartingAt", budget.stopAt).Msg("run started")
	for _, w := range warnings {
		log.Warn().Msg(w)
	}

	if sweeps(decoded) {
		// Events earlier runs could not publish go out too, once this
		// run finds the topic up.
		r.out.drainOnceUp(info.RunID, now(), now().Add(time.Until(budget.deadline)))
	}
	var problems []string
	allDry := true
	for _, m := range decoded.Messages {
		problem, dry := r.take(ctx, decoded.Trigger, m)
		if problem != "" {
			problems = append(problems, problem)
		}
		allDry = allDry && dry
	}

	r.verifies.send(ctx, r.work, r.lcall, r.now(), log)
	report = r.finish(ctx, decoded, began, startedAt, warnings)
	report.DryRun = allDry && len(problems) < len(decoded.Messages)
	return report, r.verdict(len(decoded.Messages), problems)
}

// take serves one message of the invocation: a message that cannot be read,
// or that asks what its sender may not, is rejected; any other is
// translated into a job and served. It returns why it was rejected, if it
// was, and whether it was a dry run.
func (r *run) take(ctx context.Context, trigger events.Trigger, m events.Message) (problem string, dry bool) {
	if m.Err == nil {
		if err := r.authorise(ctx, trigger, m.Request); err != nil {
			m.Err = err
			r.reject(m, upgrade.ReasonUnauthorized)
			return err.Error(), true
		}
	}
	if m.Err != nil {
		r.reject(m, upgrade.ReasonInvalidRequest)
		return m.Err.Error(), true
	}
	j := jobFor(m.Request, r.cfg, r.info)
	j.id = r.newJob(j.gatewayIDs)
	r.mu.Lock()
	r.kinds = append(r.kinds, j.kind)
	r.mu.Unlock()
	r.log.Info().Str("messageId", m.ID).Str("kind", string(j.kind)).Str("parentRunId", m.Request.ParentRunID).Strs("regions", j.regions).
		Strs("gatewayIds", j.gatewayIDs).Str("targetVersion", j.target).
		Bool("dryRun", j.dryRun).Bool("force", j.force).Str("correlationId", j.info.CorrelationID).
		Msg("request")
	if j.force {
		r.log.Warn().Str("correlationId", j.info.CorrelationID).Msg("force: maintenance window bypassed for this request")
	}
	return r.serve(ctx, m, j), j.dryRun
}

// finish publishes the run's last event, run.completed, once every other
// is out or kept, and returns the report, timed on the domain's clock
// (began) as its events and audit entries are; startedAt is the machine's.
func (r *run) finish(ctx context.Context, decoded events.Invocation, began, startedAt time.Time, warnings []string) events.Report {
	counts, results := r.tally()
	completed := r.info
	if ids := correlationIDs(decoded); len(ids) == 1 {
		completed.CorrelationID = ids[0]
	}
	publishing := r.out.finish(func(p events.Publishing) events.CloudEvent {
		return events.RunCompletedEvent(r.out.source, completed, counts, p, r.now())
	})
	r.noteRun(ctx, began, decoded.Trigger, completed.CorrelationID, counts)
	r.log.Info().Str("trigger", string(decoded.Trigger)).Interface("counts", counts).Int("apiCalls", int(r.api.calls.Load())).
		Int("apiRetries", int(r.api.retries.Load())).Int("throttled", int(r.api.throttles.Load())).
		Int("rateCuts", int(r.api.cuts.Load())).Int("burstsTrimmed", int(r.api.trims.Load())).
		Int("eventsPublished", publishing.Published).Int("eventsFailed", publishing.Failed).
		Dur("duration", time.Since(startedAt)).Msg("run finished")
	return events.Report{
		RunID: r.info.RunID, Trigger: decoded.Trigger,
		StartedAt: began, FinishedAt: r.now(), Counts: counts, Results: results, Publishing: publishing,
		Rollouts: r.rollouts.list(), KillSwitch: r.kill.stopped, Fanout: r.fanout, Continuation: r.continuation,
		Ledger: r.ledger != nil, Warnings: warnings, Control: r.controls,
		Status: r.answers.status, History: r.answers.history, Plan: r.answers.plan, RegionsClosed: r.closed,
	}
}

// verdict is the invocation's error, if it failed: a bug ended a request, a
// control write could not be made, a service was unreachable for all a
// request had to do, or every message was rejected.
func (r *run) verdict(messages int, problems []string) error {
	if len(r.aborted) > 0 {
		return &InternalError{Problems: r.aborted}
	}
	if len(r.controlErrs) > 0 {
		return &ControlError{Problems: r.controlErrs}
	}
	if down := append(r.unreachable(), r.unanswered...); len(down) > 0 {
		return &InfrastructureError{Problems: down}
	}
	if messages > 0 && len(problems) == messages {
		return &RejectedError{Problems: problems}
	}
	return nil
}

// serve carries out one request. A panic on its path ends the request, not
// the run: every gateway it had given no outcome fails (internal_error), and the
// run goes on to report, publish and return. It returns why the request was
// rejected, if it was.
func (r *run) serve(ctx context.Context, m events.Message, j job) (problem string) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("kind", string(j.kind)).
				Msg("request aborted by a panic")
			r.mu.Lock()
			r.aborted = append(r.aborted, fmt.Sprintf("%s: internal error: %v", j.kind, p))
			r.mu.Unlock()
			r.failUnfinished(j, fmt.Sprintf("internal error: %v", p))
		}
	}()
	switch j.kind {
	case upgrade.KindVerify:
		r.verify(ctx, j)
	case upgrade.KindSweep, "":
		r.sweep(ctx, j)
	case upgrade.KindPlan:
		r.preview(ctx, j)
	case upgrade.KindStatus, upgrade.KindHistory:
		return r.answer(ctx, m, j)
	default:
		if j.kind.Steers() {
			return r.steer(ctx, m, j)
		}
		// A kind the request table knows and this switch does not: a bug,
		// which serve's recover reports.
		panic(fmt.Sprintf("kind %q has no server", j.kind))
	}
	return ""
}

// reject reports a message that cannot be processed, with its raw content.
func (r *run) reject(m events.Message, reason string) {
	r.report(job{id: -1, info: r.info}, rejection(m, reason), 0)
}

// rejection is the result that reports a message the run could not serve:
// its id, its raw text and why, cut so its event fits one MNS message.
func rejection(m events.Message, reason string) upgrade.Result {
	id, raw, problem := m.Fitted()
	return upgrade.Result{Outcome: upgrade.OutcomeRejected, Reason: reason, Error: problem, Message: raw, MessageID: id}
}

// Warnings of a run's setup, in its first log line and its report.
const (
	WarnNoLedger = "the ledger is off (LEDGER_ENDPOINT, LEDGER_INSTANCE and LEDGER_TABLE unset): " +
		"no claims (a redelivered request can upgrade a gateway twice), no rollout waves, no breaker, " +
		"no penalty box and no follow-up verification"
	WarnNoEvents = "OUTCOME_TOPIC is not set: outcome events are not published"
)

// warnings says what an operator should know before reading the run's
// results: features that are off, and a lease shorter than this invocation
// (FC tells the timeout only through the deadline, so ConfigFromEnv cannot
// check it).
func (h *Handler) warnings(ctx context.Context, start time.Time, cloud Cloud) []string {
	var w []string
	if cloud.Ledger == nil {
		w = append(w, WarnNoLedger)
	} else if deadline, ok := ctx.Deadline(); ok && deadline.Sub(start) > h.Config.LedgerLease {
		w = append(w, fmt.Sprintf("LEDGER_LEASE %v is shorter than this invocation's time budget %v: "+
			"a claim of a slow run can expire while its call is on its way; set LEDGER_LEASE above the function's timeout",
			h.Config.LedgerLease, deadline.Sub(start).Round(time.Second)))
	}
	if cloud.Events == nil {
		w = append(w, WarnNoEvents)
	}
	return w
}

// instancePace is the rate limit every run of this process shares (API_QPS
// is per instance); a changed API_QPS starts a new one.
func (h *Handler) instancePace() *pace {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pace == nil || h.pace.qps != h.Config.APIQPS {
		h.pace = newPace(h.Config.APIQPS)
	}
	return h.pace
}

// sweeps reports whether an invocation carries a sweep: only sweeps publish
// the events earlier runs kept, not control requests nor verifications.
func sweeps(inv events.Invocation) bool {
	for _, m := range inv.Messages {
		if m.Err == nil && m.Request.Kind == upgrade.KindSweep {
			return true
		}
	}
	return false
}

// RunID is the run id Invoke gives this payload: for the log lines of an
// invocation that fails before Invoke (an invalid configuration).
func RunID(inv Invocation, payload []byte) string {
	return runID(inv, events.Decode(payload), payload)
}

// runID names the run. The same trigger delivered again (an FC async retry, an
// MNS redelivery) gets the same id, so its events keep their ids too.
func runID(inv Invocation, decoded events.Invocation, payload []byte) string {
	var ids []string
	for _, m := range decoded.Messages {
		if m.ID != "" {
			ids = append(ids, m.ID)
		}
	}
	key := string(decoded.Trigger) + "\n"
	switch {
	case len(ids) > 0:
		key += strings.Join(ids, "\n")
	case decoded.Trigger == events.TriggerDirect:
		key += inv.RequestID
	default:
		key += string(payload)
	}
	sum := sha256.Sum256([]byte(key))
	return "run-" + hex.EncodeToString(sum[:10])
}

func correlationIDs(inv events.Invocation) []string {
	var ids []string
	for _, m := range inv.Messages {
		if m.Err == nil && m.Request.CorrelationID != "" && !slices.Contains(ids, m.Request.CorrelationID) {
			ids = append(ids, m.Request.CorrelationID)
		}
	}
	return ids
}
