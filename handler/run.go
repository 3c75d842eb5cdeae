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
	cfg     Config
	info    events.RunInfo
	log     zerolog.Logger
	now     func() time.Time // domain time: EndTime, windows, release ages, leases
	control bool             // the invocation reached the control endpoint

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
	verifies *verifications

	mu           sync.Mutex
	fanout       *events.Fanout       // set when the run was a planner
	continuation *events.Continuation // set when it handed work over
	controls     []upgrade.Control    // what control requests changed
	controlErrs  []string             // control requests that could not be carried out
	aborted      []string             // requests a panic ended
}

// newRun composes a run of an invocation on its cloud.
func (h *Handler) newRun(ctx context.Context, inv Invocation, cloud Cloud, info events.RunInfo, log zerolog.Logger, now func() time.Time, b budget) *run {
	cfg := h.Config
	api := newCaller(h.instancePace(), b.stopAt, b.endAt)
	lcall := &caller{stopAt: b.stopAt, endAt: b.endAt, maxTries: 5, initial: 100 * time.Millisecond, maxWait: 2 * time.Second}
	out := newOutbox(ctx, cloud.Events, cloud.Ledger, lcall, inv.Source(), log, b.publishBy, b.keepBy, &h.topic)
	r := &run{
		reporter: newReporter(log, out, now),
		cfg:      cfg, info: info, log: log, now: now, control: h.Control,
		ledger: cloud.Ledger, work: cloud.Work, api: api, lcall: lcall, out: out,
		reads:    &sagReader{sag: cloud.SAG, api: api},
		verifies: &verifications{},
		kill:     &killSwitch{env: cfg.KillSwitch, ledger: cloud.Ledger, lcall: lcall, now: now, log: log, stopAt: b.stopAt},
		rollouts: &rollouts{ledger: cloud.Ledger, lcall: lcall, cfg: cfg, now: now, log: log, publish: out.add, source: out.source},
	}
	if cloud.Ledger != nil {
		r.book = &book{ledger: cloud.Ledger, lcall: lcall, now: now, requestID: inv.RequestID, cfg: cfg, log: log, moved: r.rollouts.moved}
	}
	r.settler = settler{book: r.book, reads: r.reads, verifies: r.verifies, now: now, cfg: cfg}
	r.planner = planner{reads: r.reads, policy: Policy{Channel: cfg.Channel, Hold: cfg.HoldVersions, MinReleaseAge: cfg.MinReleaseAge},
		now: now, stopAt: b.stopAt}
	limit := &runLimit{max: cfg.MaxUpgradesPerRun}
	r.gate = &gate{rep: r.reporter, kill: r.kill, limit: limit, cfg: cfg, now: now}
	if cloud.Ledger != nil {
		r.gate.rollouts = r.rollouts
	}
	r.exec = &executor{book: r.book, reads: r.reads, sag: cloud.SAG, api: api, kill: r.kill, limit: limit, verifies: r.verifies, cfg: cfg, now: now}
	return r
}

// job is one request of the run as the function reads it: the wire request
// translated once (jobFor), the configuration's defaults filled in. Nothing
// reads the wire request after.
type job struct {
	id         int // its index among the run's jobs
	kind       upgrade.Kind
	info       events.RunInfo // the run, and the request's correlation id
	regions    []string
	gatewayIDs []string // the gateways named; none: every gateway of the regions
	types      []upgrade.VersionType
	target     string // the pinned version (targetVersion); "": the newest release
	dryRun     bool   // the request's or the configuration's
	force      bool
	// retryFailedOnly narrows a sweep to the gateways whose last upgrade
	// failed or stayed unverified.
	retryFailedOnly bool
}

// jobFor translates a wire request into a job: the configuration's
// defaults for what it leaves out.
func (r *run) jobFor(req events.Request) job {
	j := job{kind: req.Kind, info: r.info, regions: req.Regions, gatewayIDs: req.GatewayIDs, types: req.VersionTypes,
		target: req.TargetVersion, dryRun: r.cfg.DryRun || req.DryRun, force: req.Force, retryFailedOnly: req.RetryFailedOnly}
	j.info.CorrelationID = req.CorrelationID
	if len(j.regions) == 0 {
		j.regions = r.cfg.Regions
	}
	if len(j.types) == 0 {
		j.types = r.cfg.VersionTypes
	}
	j.id = r.newJob(j.gatewayIDs)
	return j
}
