package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Reasons of deferred and other outcomes that are not eligibility skips.
const (
	ReasonOutsideWindow = "outside_window"    // the upgrade would not fit in the maintenance window
	ReasonDeadline      = "deadline"          // no time left in this invocation
	ReasonRunLimit      = "run_limit"         // MAX_UPGRADES_PER_RUN reached
	ReasonThrottled     = "throttled"         // the API kept answering Throttling
	ReasonTryLater      = "try_later"         // the device could not report its version or state
	ReasonListFailed    = "list_failed"       // the region's gateways could not be listed
	ReasonConfirmed     = "confirmed_by_read" // the update call failed but the device shows the upgrade started
	ReasonUnconfirmed   = "unconfirmed"       // the update call failed and the device shows no upgrade
	ReasonHAPeerPending = "ha_peer_pending"   // an HA pair: this device now, the other in a later run
	ReasonVersionDiff   = "version_mismatch"
	ReasonAPIError      = "api_error"
)

// run is the work of one invocation: its messages share one rate limit, one
// upgrade budget, one deadline and one stream of outcome events.
type run struct {
	cfg       Config
	policy    Policy
	sag       SAG
	ledger    Ledger    // nil without a ledger
	work      WorkQueue // nil without a work queue
	api       *caller   // SAG calls: the run's rate limit
	lcall     *caller   // ledger and queue calls: retries only
	out       *outbox
	now       func() time.Time // domain time: EndTime, windows, release ages, leases
	log       zerolog.Logger
	info      events.RunInfo
	requestID string

	mu       sync.Mutex
	results  []events.Result
	counts   events.Counts
	scanned  map[string]bool
	upgrades atomic.Int64
	verifies map[verifyKey]*verifyBatch
	touched  map[rolloutKey]bool // rollouts with upgrades settled this run
	rollouts *rollouts
	kill     *killSwitch

	fanout       *events.Fanout       // set when the run was a planner
	continuation *events.Continuation // set when it handed work over

	catalogMu sync.Mutex
	catalogs  map[string][]Release // Versions answers of this run, by gateway and version type
}

// job is one request of the run, with the configuration applied.
type job struct {
	req     events.Request
	info    events.RunInfo
	regions []string
	types   []events.VersionType
	dryRun  bool
}

func (r *run) jobFor(req events.Request) job {
	j := job{req: req, info: r.info, regions: req.Regions, types: req.VersionTypes, dryRun: r.cfg.DryRun || req.DryRun}
	j.info.CorrelationID = req.CorrelationID
	if len(j.regions) == 0 {
		j.regions = r.cfg.Regions
	}
	if len(j.types) == 0 {
		j.types = r.cfg.VersionTypes
	}
	return j
}

// record adds a result to the report, logs the decision and queues its event.
func (r *run) record(j job, res events.Result, took time.Duration) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.counts.Add(res.Outcome)
	r.mu.Unlock()

	ev := r.log.Info()
	if res.Outcome == events.OutcomeFailed || res.Outcome == events.OutcomeRejected {
		ev = r.log.Warn()
	}
	ev.Str("smartAGId", res.SmartAGID).Str("regionId", res.RegionID).Str("versionType", string(res.VersionType)).
		Str("fromVersion", res.FromVersion).Str("toVersion", res.ToVersion).
		Str("outcome", string(res.Outcome)).Str("reason", res.Reason).Dur("duration", took)
	// Optional fields only when they say something.
	for k, v := range map[string]string{"serialNumber": res.SerialNumber, "errorCode": res.ErrorCode, "error": res.Error,
		"apiRequestId": res.RequestID, "correlationId": j.info.CorrelationID, "messageId": res.MessageID} {
		if v != "" {
			ev.Str(k, v)
		}
	}
	if j.dryRun {
		ev.Bool("dryRun", true)
	}
	if res.Force {
		ev.Bool("force", true)
	}
	ev.Msg("decision")
	r.out.add(events.OutcomeEvent(r.out.source, j.info, res, r.now()))
}

// candidate is a gateway and version type the plan found due for an
// upgrade; the gate decides whether this run makes the call.
type candidate struct {
	g      Gateway
	vt     events.VersionType
	rec    *Record // nil without a ledger record
	dev    Device  // the device to upgrade (HA pairs: one a run)
	target Release
	serial string // SerialNumber for the call ("" for a single device)
	res    events.Result
	start  time.Time
	// fresh: the gateway has not started this rollout yet (a retry to the
	// same version, or an HA pair's second device, has).
	fresh bool
}

func (c *candidate) key() rolloutKey { return rolloutKey{c.vt, c.g.Model, c.target.Code} }

// sweep lists the job's regions and handles every gateway and version type
// in three steps: plan each one (settling what earlier runs started), gate
// the candidates together (kill switch, maintenance window, rollout waves
// and breaker, run limit), then make the calls.
func (r *run) sweep(ctx context.Context, j job) {
	if j.req.RetryFailedOnly && !r.retryFailedOnly(ctx, &j) {
		return
	}
	fleet, listFailed := r.list(ctx, j)
	records, err := r.records(ctx, fleet, j.types)
	if err != nil {
		// Without the ledger's view no claim can be trusted: call nothing.
		r.log.Error().Err(err).Msg("ledger unreadable: every gateway deferred")
		for _, gw := range fleet {
			for _, vt := range j.types {
				res := events.Result{SmartAGID: gw.ID, RegionID: gw.Region, VersionType: vt, Error: err.Error()}
				r.record(j, deferred(res, ReasonLedgerDown), 0)
			}
		}
		return
	}

	full := len(j.req.GatewayIDs) == 0 && !j.req.RetryFailedOnly
	if r.fanOut(ctx, j, fleet, full) {
		return
	}
	// Chunks of the fleet in spread order: plan, gate and call one chunk,
	// then the next. A wave's first gateways are spread over regions and
	// CCNs, and a deadline cuts the planning of one chunk, not the calls of
	// a whole night. When the next chunk would not fit before the run must
	// stop, the rest goes to the work queue as a continuation.
	chunks := slices.Collect(slices.Chunk(spreadGateways(fleet), max(16, 8*r.cfg.MaxConcurrency)))
	var took time.Duration
	for i, chunk := range chunks {
		if i > 0 && time.Now().Add(took).After(r.api.stopAt) && r.handOver(ctx, j, slices.Concat(chunks[i:]...)) {
			full = false
			break
		}
		if r.stopped(ctx, j, chunk) {
			full = false // the rest was not looked at
			continue
		}
		began := time.Now()
		admitted := r.gate(ctx, j, r.plan(ctx, j, chunk, records))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.cfg.MaxConcurrency)
		for _, c := range admitted {
			g.Go(func() error {
				r.record(j, r.execute(gctx, j, c), time.Since(c.start))
				return nil
			})
		}
		_ = g.Wait()
		took = time.Since(began)
	}
	if full && !j.dryRun {
		r.rollouts.countPopulation(ctx)
	}
	r.reviewTouched(ctx, j)

	// A gateway the request named but no listed region has must not vanish.
	for _, id := range j.req.GatewayIDs {
		if slices.ContainsFunc(fleet, func(g Gateway) bool { return g.ID == id }) {
			continue
		}
		for _, vt := range j.types {
			res := events.Result{SmartAGID: id, VersionType: vt, Outcome: events.OutcomeSkipped, Reason: ReasonNotFound,
				Error: "not found in regions " + strings.Join(j.regions, ", ")}
			if listFailed {
				res.Outcome, res.Reason, res.Error = events.OutcomeFailed, ReasonListFailed, "its region could not be listed"
			}
			r.record(j, res, 0)
		}
	}
}

// list returns the gateways of the job's regions. A region that cannot be
// listed is reported as a failed result of its own.
func (r *run) list(ctx context.Context, j job) (fleet []Gateway, failed bool) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, region := range j.regions {
		g.Go(func() error {
			gws, err := r.listRegion(gctx, region, j.req.GatewayIDs)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = true
				res := events.Result{RegionID: region, Outcome: events.OutcomeFailed, Reason: ReasonListFailed}
				applyError(&res, err)
				if errors.Is(err, errDeadline) {
					res.Outcome, res.Reason = events.OutcomeDeferred, ReasonDeadline
				}
				r.record(j, res, 0)
				return nil
			}
			fleet = append(fleet, gws...)
			r.mu.Lock()
			for _, gw := range gws {
				r.scanned[gw.ID] = true
			}
			r.mu.Unlock()
			r.log.Debug().Str("regionId", region).Int("gateways", len(gws)).Msg("listed region")
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(fleet, func(a, b Gateway) int {
		return strings.Compare(a.Region+"/"+a.ID, b.Region+"/"+b.ID)
	})
	return fleet, failed
}

// listRegion pages through a region, PageSize gateways a call; named
// gateways are listed PageSize ids at a time.
func (r *run) listRegion(ctx context.Context, region string, ids []string) ([]Gateway, error) {
	var out []Gateway
	seen := map[string]bool{}
	filters := []ListFilter{{}}
	if len(ids) > 0 {
		filters = nil
		for chunk := range slices.Chunk(ids, PageSize) {
			filters = append(filters, ListFilter{IDs: chunk})
		}
	}
	type page struct {
		gws   []Gateway
		total int
	}
	for _, f := range filters {
		for n, total := 1, 1; (n-1)*PageSize < total; n++ {
			p, err := read(ctx, r.api, func(ctx context.Context) (page, error) {
				gws, total, err := r.sag.ListGateways(ctx, region, f, n)
				return page{gws, total}, err
			})
			if err != nil {
				return nil, err
			}
			if len(p.gws) == 0 {
				break // the fleet shrank while we paged
			}
			total = p.total
			for _, g := range p.gws {
				// Paging a fleet that changes can repeat a gateway.
				if !seen[g.ID] {
					seen[g.ID] = true
					out = append(out, g)
				}
			}
		}
	}
	return out, nil
}

// versions returns the versions a gateway is offered, asking the API once a
// run: the same gateway's list does not change within an invocation (both
// devices of an HA pair share it; a batch may name a gateway twice).
func (r *run) versions(ctx context.Context, g Gateway, vt events.VersionType) ([]Release, error) {
	key := g.ID + "/" + string(vt)
	r.catalogMu.Lock()
	cached, ok := r.catalogs[key]
	r.catalogMu.Unlock()
	if ok {
		return cached, nil
	}
	offered, err := read(ctx, r.api, func(ctx context.Context) ([]Release, error) {
		return r.sag.Versions(ctx, g, "", vt)
	})
	if err == nil {
		r.catalogMu.Lock()
		if r.catalogs == nil {
			r.catalogs = map[string][]Release{}
		}
		r.catalogs[key] = offered
		r.catalogMu.Unlock()
	}
	return offered, err
}

// stopped reports whether the kill switch is on, and if so defers the
// chunk's gateways without another API call: a stopped run winds down at
// once. A dry run makes no update call, so the switch does not stop it.
func (r *run) stopped(ctx context.Context, j job, chunk []Gateway) bool {
	if j.dryRun {
		return false
	}
	if on, err := r.kill.check(ctx); !on || err != nil {
		return false // a ledger error is reported by the gate, per candidate
	}
	for _, g := range chunk {
		for _, vt := range j.types {
			res := events.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Error: "the kill switch is on"}
			if vt == events.VersionDevice {
				res.FromVersion = g.SoftwareVersion
			}
			r.record(j, deferred(res, ReasonKillSwitch), 0)
		}
	}
	return true
}

// plan decides every gateway and version type of a chunk, concurrently:
// the final results it records, the candidates it returns in the chunk's
// order (the spread order the rollout admits them in).
func (r *run) plan(ctx context.Context, j job, chunk []Gateway, records map[events.VersionType]map[string]Record) []*candidate {
	slots := make([]*candidate, len(chunk)*len(j.types))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.MaxConcurrency)
	for i, gw := range chunk {
		for t, vt := range j.types {
			g.Go(func() error {
				start := time.Now()
				var rec *Record
				if got, ok := records[vt][gw.ID]; ok {
					rec = &got
				}
				c, res := r.decide(gctx, j, gw, vt, rec)
				if c == nil {
					r.record(j, res, time.Since(start))
					return nil
				}
				c.start = start
				slots[i*len(j.types)+t] = c
				return nil
			})
		}
	}
	_ = g.Wait()
	return slices.DeleteFunc(slots, func(c *candidate) bool { return c == nil })
}

// decide handles one gateway and version type up to the update call: first
// its ledger record (an upgrade waiting to be confirmed is settled before
// anything else, and the penalty box holds back a gateway that keeps
// failing), then eligibility, versions and policy. It returns a candidate,
// or the final result.
func (r *run) decide(ctx context.Context, j job, g Gateway, vt events.VersionType, rec *Record) (*candidate, events.Result) {
	if rec != nil && rec.pending() {
		res, next, done := r.resolve(ctx, j, g, vt, *rec)
		if done {
			return nil, res
		}
		rec = &next
	}
	if rec != nil && r.now().Before(rec.PenaltyUntil) && !j.req.RetryFailedOnly {
		res := events.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, FromVersion: rec.From, ToVersion: rec.Target,
			Error: rec.LastError}
		return nil, skipped(res, ReasonPenalty)
	}
	res := events.Result{
		SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Force: j.req.Force,
		SerialNumber: strings.Join(g.SerialNumbers, ","),
	}
	if vt == events.VersionDevice {
		res.FromVersion = g.SoftwareVersion
	}
	if reason := ineligible(g, r.now()); reason != "" {
		return nil, skipped(res, reason)
	}
	if time.Now().After(r.api.stopAt) {
		return nil, deferred(res, ReasonDeadline)
	}

	// A pinned version settles a single device already at or past it
	// without asking for its version list: the answer is known.
	if pin := j.req.TargetVersion; pin != "" && vt == events.VersionDevice && !g.HA() && validVersion(g.SoftwareVersion) {
		switch compareVersions(g.SoftwareVersion, pin) {
		case 0:
			return nil, skipped(res, ReasonUpToDate)
		case 1:
			res.ToVersion = pin
			return nil, skipped(res, ReasonWouldDowngrade)
		}
	}

	devices, master, skip, err := r.devices(ctx, g, vt)
	switch {
	case err != nil:
		return nil, readFailure(res, err)
	case skip != "":
		return nil, skipped(res, skip)
	}
	if vt == events.VersionDpi || g.HA() {
		res.FromVersion = lowest(devices, vt)
	}
	offered, err := r.versions(ctx, g, vt)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "VersionNotExist" {
			res = skipped(res, ReasonNoRelease)
			applyError(&res, err)
			return nil, res
		}
		return nil, readFailure(res, err)
	}

	// Which devices are behind, and what each should run.
	type plan struct {
		dev    Device
		target Release
	}
	var due []plan
	skipReason := ""
	for _, d := range devices {
		target, reason := r.policy.Choose(d.Version(vt), offered, j.req.TargetVersion, r.now())
		if reason != "" {
			if skipReason == "" || reason != ReasonUpToDate {
				skipReason = reason
			}
			continue
		}
		due = append(due, plan{d, target})
	}
	if len(due) == 0 {
		return nil, skipped(res, skipReason)
	}
	// One device of an HA pair per run, the standby first, so the site keeps
	// a working box while the other reboots.
	slices.SortStableFunc(due, func(a, b plan) int {
		return boolInt(a.dev.SerialNumber == master) - boolInt(b.dev.SerialNumber == master)
	})
	p := due[0]
	res.FromVersion, res.ToVersion = p.dev.Version(vt), p.target.Code
	c := &candidate{g: g, vt: vt, rec: rec, dev: p.dev, target: p.target, res: res, fresh: true}
	if g.HA() {
		c.serial = p.dev.SerialNumber
		c.res.SerialNumber = c.serial
		if len(due) > 1 {
			c.res.Reason = ReasonHAPeerPending
		}
	}
	if rec != nil && rec.Target == p.target.Code && rec.State != StateReleased {
		c.fresh = false // a retry, or an HA pair's second device: the rollout counted this gateway already
	}
	return c, c.res
}

// gate decides which candidates this run calls for, together: the kill
// switch stops all; outside the maintenance window none starts (unless
// forced); a rollout lets in only its wave, and nothing while its breaker is
// open (unless forced); the run limit caps the rest. A dry run reports the
// admitted ones as planned and calls nothing.
func (r *run) gate(ctx context.Context, j job, cands []*candidate) []*candidate {
	hold := func(c *candidate, reason, detail string) {
		res := deferred(c.res, reason)
		if detail != "" {
			res.Error = detail
		}
		r.record(j, res, time.Since(c.start))
	}
	if len(cands) == 0 {
		return nil
	}
	if !j.dryRun {
		if on, err := r.kill.check(ctx); on {
			reason, detail := ReasonKillSwitch, "the kill switch is on"
			if err != nil {
				reason, detail = ReasonLedgerDown, err.Error()
			}
			for _, c := range cands {
				hold(c, reason, detail)
			}
			return nil
		}
	}
	var open []*candidate
	for _, c := range cands {
		if !j.req.Force && !r.cfg.Window.Allows(r.now(), r.upgradeTime(c.vt)) {
			hold(c, ReasonOutsideWindow, fmt.Sprintf("the upgrade would not end inside %s", r.cfg.Window))
			continue
		}
		open = append(open, c)
	}

	var admitted []*candidate
	if r.ledger == nil || j.req.Force {
		admitted = open // no rollout state to keep; force is recorded in every result
	} else {
		byKey := map[rolloutKey][]*candidate{}
		var keys []rolloutKey
		for _, c := range open {
			if _, ok := byKey[c.key()]; !ok {
				keys = append(keys, c.key())
			}
			byKey[c.key()] = append(byKey[c.key()], c)
		}
		for _, c := range cands {
			if c.fresh {
				r.rollouts.sawFresh(c.key()) // the population counts them, held back or not
			}
		}
		for _, k := range keys {
			var fresh, retries []*candidate
			for _, c := range byKey[k] {
				if c.fresh {
					fresh = append(fresh, c)
				} else {
					retries = append(retries, c)
				}
			}
			d, err := r.rollouts.admit(ctx, j, k, len(fresh))
			if err != nil {
				for _, c := range byKey[k] {
					hold(c, ReasonLedgerDown, err.Error())
				}
				continue
			}
			if d.reason == ReasonBreakerOpen {
				for _, c := range byKey[k] {
					hold(c, d.reason, d.detail)
				}
				continue
			}
			admitted = append(admitted, retries...)
			admitted = append(admitted, fresh[:d.allow]...)
			r.rollouts.admitted(k, len(retries)+d.allow)
			for _, c := range fresh[d.allow:] {
				hold(c, d.reason, d.detail)
			}
		}
	}

	var out []*candidate
	for _, c := range admitted {
		switch {
		case j.dryRun:
			res := c.res
			res.Outcome = events.OutcomePlanned
			r.record(j, res, time.Since(c.start))
		case !r.reserveUpgrade():
			hold(c, ReasonRunLimit, fmt.Sprintf("MAX_UPGRADES_PER_RUN is %d", r.cfg.MaxUpgradesPerRun))
		default:
			out = append(out, c)
		}
	}
	return out
}

// execute makes the call for an admitted candidate: it claims the gateway in
// the ledger, checks the kill switch once more, calls, and records what the
// call did.
func (r *run) execute(ctx context.Context, j job, c *candidate) events.Result {
	res := c.res
	if on, err := r.kill.check(ctx); on {
		r.upgrades.Add(-1)
		if err != nil {
			res.Error = err.Error()
			return deferred(res, ReasonLedgerDown)
		}
		res.Error = "the kill switch is on"
		return deferred(res, ReasonKillSwitch)
	}
	// Claim before the call: no other run or worker calls for this gateway
	// while the claim lives, and a crash leaves a trace the next run settles.
	var claim Record
	if r.ledger != nil {
		var err error
		if claim, err = r.claim(ctx, j, c.g, c.vt, c.rec, c.dev, c.target.Code); err != nil {
			r.upgrades.Add(-1)
			return r.ledgerFailure(res, err)
		}
	}
	requestID, err := r.api.update(ctx, func(ctx context.Context) (string, error) {
		return r.sag.Update(ctx, c.g, c.serial, c.vt, c.target.Code)
	})
	if err == nil {
		res.Outcome, res.RequestID = events.OutcomeRequested, requestID
	} else {
		res = r.updateFailure(ctx, c.g, c.dev, c.vt, c.target.Code, res, err)
	}
	if res.Outcome != events.OutcomeRequested {
		r.upgrades.Add(-1)
	}
	if r.ledger != nil {
		r.settle(ctx, j, claim, res)
	}
	return res
}

// reviewTouched reviews the rollouts whose upgrades this run verified or
// found unverified, so their breakers and waves move without waiting for
// the next sweep.
func (r *run) reviewTouched(ctx context.Context, j job) {
	if r.ledger == nil {
		return
	}
	r.mu.Lock()
	var keys []rolloutKey
	for k := range r.touched {
		keys = append(keys, k)
	}
	r.touched = nil
	r.mu.Unlock()
	slices.SortFunc(keys, func(a, b rolloutKey) int { return strings.Compare(a.id(), b.id()) })
	r.rollouts.reviewAll(ctx, j, keys)
}

// devices returns the devices to consider and which one carries traffic. A
// single-device gateway's firmware version is in the list already; DPI
// versions and HA pairs need the gateway's attributes, which also give a
// fresher status: a gateway that went offline since the listing is skipped.
func (r *run) devices(ctx context.Context, g Gateway, vt events.VersionType) (devs []Device, master, skip string, err error) {
	if vt == events.VersionDevice && !g.HA() {
		return []Device{{SerialNumber: g.SerialNumbers[0], Software: g.SoftwareVersion}}, "", "", nil
	}
	d, err := read(ctx, r.api, func(ctx context.Context) (Detail, error) { return r.sag.Devices(ctx, g) })
	if err != nil {
		return nil, "", "", err
	}
	live := g
	live.Status = d.Status
	if reason := ineligible(live, r.now()); reason != "" {
		return nil, "", reason, nil
	}
	if len(d.Devices) == 0 {
		return nil, "", ReasonNoDevice, nil
	}
	return d.Devices, d.MasterSN, "", nil
}

// updateFailure turns a failed update call into an outcome. When the call may
// have reached the service, the device is read again: an upgrade that started
// is reported as requested, and no second update call is ever made.
func (r *run) updateFailure(ctx context.Context, g Gateway, dev Device, vt events.VersionType, target string, res events.Result, err error) events.Result {
	applyError(&res, err)
	var ae *APIError
	errors.As(err, &ae)
	code := ""
	if ae != nil {
		code = ae.Code
	}
	switch {
	case errors.Is(err, errDeadline):
		return deferred(res, ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, ReasonThrottled)
	case code == "SmartAccessGatewayNotOnline":
		return skipped(res, ReasonOffline)
	case classify(err) == laterRun:
		return deferred(res, ReasonTryLater)
	case code == "VersionTooOld":
		return skipped(res, ReasonUpToDate)
	case code == "SmartAccessGatewayNotActivated":
		return skipped(res, ReasonNotActivated)
	case code == "SmartAccessGatewayInArrears":
		return skipped(res, ReasonExpired)
	case code == "NotBoundCCN":
		return skipped(res, ReasonNotBoundCCN)
	case classify(err) == transient:
		d, rerr := read(ctx, r.api, func(ctx context.Context) (Detail, error) { return r.sag.Devices(ctx, g) })
		if rerr == nil && upgradeStarted(d, dev.SerialNumber, vt, target) {
			res.Outcome, res.Reason = events.OutcomeRequested, ReasonConfirmed
			return res
		}
		res.Outcome, res.Reason = events.OutcomeFailed, ReasonUnconfirmed
		return res
	}
	res.Outcome, res.Reason = events.OutcomeFailed, ReasonAPIError
	return res
}

// upgradeStarted reports whether a gateway read after an ambiguous update
// shows that upgrade under way or done: the device runs the target, or a
// firmware upgrade has taken the gateway offline.
func upgradeStarted(d Detail, serial string, vt events.VersionType, target string) bool {
	for _, dev := range d.Devices {
		if dev.SerialNumber == serial && compareVersions(dev.Version(vt), target) >= 0 {
			return true
		}
	}
	return vt == events.VersionDevice && strings.EqualFold(d.Status, "offline")
}

func (r *run) reserveUpgrade() bool {
	if r.upgrades.Add(1) > int64(r.cfg.MaxUpgradesPerRun) {
		r.upgrades.Add(-1)
		return false
	}
	return true
}

// upgradeTime is how long an upgrade keeps a device busy: firmware reboots
// the box; a DPI signature update does not.
func (r *run) upgradeTime(vt events.VersionType) time.Duration {
	if vt == events.VersionDpi {
		return 0
	}
	return r.cfg.UpgradeTime
}

// readFailure turns a failed read into an outcome.
func readFailure(res events.Result, err error) events.Result {
	applyError(&res, err)
	var ae *APIError
	errors.As(err, &ae)
	switch {
	case errors.Is(err, errDeadline):
		return deferred(res, ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, ReasonThrottled)
	case ae != nil && ae.Code == "SmartAccessGatewayNotOnline":
		return skipped(res, ReasonOffline)
	case classify(err) == laterRun:
		return deferred(res, ReasonTryLater)
	}
	res.Outcome, res.Reason = events.OutcomeFailed, ReasonAPIError
	return res
}

func applyError(res *events.Result, err error) {
	if errors.Is(err, errDeadline) {
		return
	}
	res.Error = err.Error()
	var ae *APIError
	if errors.As(err, &ae) {
		res.ErrorCode = ae.Code
		if res.ErrorCode == "" && ae.NoAnswer {
			res.ErrorCode = "NoAnswer"
		}
	}
}

func skipped(res events.Result, reason string) events.Result {
	res.Outcome, res.Reason = events.OutcomeSkipped, reason
	return res
}

func deferred(res events.Result, reason string) events.Result {
	res.Outcome, res.Reason = events.OutcomeDeferred, reason
	return res
}

// lowest returns the oldest version among the devices.
func lowest(devices []Device, vt events.VersionType) string {
	v := ""
	for _, d := range devices {
		if v == "" || compareVersions(d.Version(vt), v) < 0 {
			v = d.Version(vt)
		}
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
