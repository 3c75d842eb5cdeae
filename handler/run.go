package handler

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// run is the work of one invocation: its requests share one rate limit, one
// upgrade budget, one deadline and one stream of outcome events. It composes
// the stages of a sweep, each given what it needs: the settler and the
// planner read, the gate decides, the executor calls, and the reporter,
// embedded, reports every outcome.
type run struct {
	*reporter
	cfg  Config
	info events.RunInfo
	// requestID is the invocation's FC request id.
	requestID string
	log       zerolog.Logger
	now       func() time.Time // domain time: EndTime, windows, release ages, leases
	control   bool             // the invocation reached the control endpoint
	query     bool             // the invocation reached the look-only endpoint

	ledger Ledger    // nil without a ledger
	work   WorkQueue // nil without a work queue
	api    *caller   // SAG calls: the run's rate limit
	lcall  *caller   // ledger and queue calls: retries only
	out    *outbox

	reads    *sagReader
	book     *book // nil without a ledger
	settler  settler
	planner  planner
	gate     *gate
	exec     *executor
	rollouts *rollouts
	kill     *killSwitch
	night    *nightCap
	verifies *verifications

	mu           sync.Mutex
	fanout       *events.Fanout       // set when the run was a planner
	continuation *events.Continuation // set when it handed work over
	controls     []upgrade.Control    // what control requests changed
	controlErrs  []string             // control requests that could not be carried out
	kinds        []upgrade.Kind       // of the requests taken, in order
	closed       map[string]time.Time // regions not listed: their window is closed until then
	answers      answers              // what the queries asked
	unanswered   []string             // queries the ledger could not be read for
	aborted      []string             // requests a panic ended
}

// answers are the answers to the run's queries, for the report.
type answers struct {
	status  *events.Status
	history *events.History
	plan    *events.Plan
}

// setting is what a run takes from the instance it runs on: the
// configuration, whether it is the control endpoint, and what the instance's
// runs share (the SAG rate limit, what the outcome topic did lately).
type setting struct {
	cfg     Config
	control bool
	query   bool
	pace    *pace
	topic   *TopicHealth
}

// newRun composes the run of one invocation (requestID, the source of its
// events) on its cloud.
func newRun(ctx context.Context, set setting, requestID, source string, cloud Cloud, info events.RunInfo, log zerolog.Logger, now func() time.Time, b budget) *run {
	cfg := set.cfg
	api := newCaller(set.pace, b.stopAt, b.endAt)
	api.leads = info.Trigger == events.TriggerTimer
	lcall := &caller{stopAt: b.stopAt, endAt: b.endAt, maxTries: 5, initial: 100 * time.Millisecond, maxWait: 2 * time.Second}
	out := newOutbox(ctx, cloud.Events, cloud.Ledger, lcall, source, log, b.publishBy, b.keepBy, set.topic)
	r := &run{
		reporter: newReporter(log, out, now, cfg.PublishOutcomes == PublishChanges),
		cfg:      cfg, info: info, requestID: requestID, log: log, now: now, control: set.control, query: set.query,
		ledger: cloud.Ledger, work: cloud.Work, api: api, lcall: lcall, out: out,
		reads:    &sagReader{sag: cloud.SAG, api: api},
		verifies: &verifications{},
		kill:     &killSwitch{env: cfg.KillSwitch, ledger: cloud.Ledger, lcall: lcall, now: now, log: log, stopAt: b.stopAt},
		rollouts: &rollouts{ledger: cloud.Ledger, lcall: lcall, cfg: cfg, now: now, log: log, publish: out.add, source: out.source},
	}
	if cloud.Ledger != nil {
		r.book = &book{ledger: cloud.Ledger, lcall: lcall, now: now, requestID: requestID, cfg: cfg, log: log, moved: r.rollouts.moved}
	}
	r.settler = settler{book: r.book, reads: r.reads, verifies: r.verifies, now: now, cfg: cfg}
	r.planner = planner{reads: r.reads, policy: Policy{Channel: cfg.Channel, Hold: cfg.HoldVersions, MinReleaseAge: cfg.MinReleaseAge},
		now: now, stopAt: b.stopAt}
	limit := &runLimit{max: cfg.MaxUpgradesPerRun}
	r.night = &nightCap{limit: cfg.MaxUpgradesPerNight, ledger: cloud.Ledger, lcall: lcall, loc: zoneOr(cfg.TimeZone, time.UTC),
		now: now, stopAt: b.stopAt}
	if cloud.Ledger == nil {
		r.night.limit = 0 // ConfigFromEnv refuses a cap without the ledger
	}
	r.gate = &gate{rep: r.reporter, kill: r.kill, limit: limit, night: r.night, cfg: cfg, now: now}
	if cloud.Ledger != nil {
		r.gate.rollouts = r.rollouts
	}
	r.exec = &executor{book: r.book, reads: r.reads, sag: cloud.SAG, api: api, kill: r.kill, limit: limit, verifies: r.verifies, cfg: cfg, now: now}
	if cloud.Ledger != nil {
		r.exec.rollouts = r.rollouts
	}
	return r
}

// zoneOr loads an IANA time zone, or returns def for none.
func zoneOr(tz string, def *time.Location) *time.Location {
	if loc, err := loadZone(tz); err == nil {
		return loc
	}
	return def
}
