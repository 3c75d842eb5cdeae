package handler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
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
	results  []upgrade.Result
	counts   upgrade.Counts
	scanned  map[string]bool
	upgrades atomic.Int64
	verifies map[verifyKey]*verifyBatch
	rollouts *rollouts
	kill     *killSwitch

	fanout       *events.Fanout                 // set when the run was a planner
	continuation *events.Continuation           // set when it handed work over
	taken        map[string]upgrade.VersionType // gateways this run calls for (or plans to), and for which type
	controls     []upgrade.Control              // what control requests changed
	controlErrs  []string                       // control requests that could not be carried out
	control      bool                           // the invocation reached the control endpoint
	aborted      []string                       // requests a panic ended

	// What each job must give an outcome (its listed or named gateways,
	// each version type) and what it has: a request a panic ends fails the
	// difference, so no gateway is left without one.
	jobs []*jobOutcomes

	catalogMu sync.Mutex
	catalogs  map[string][]Release // Versions answers of this run, by gateway and version type
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

// jobOutcomes are the gateways a job must settle, and those it has.
type jobOutcomes struct {
	due  map[string]Gateway // by id: listed, or named by the request
	done map[string]bool    // id/versionType
	// Its results, and those that say a service it needs could not be
	// reached (infrastructureFailure).
	results, unreachable int
}

func (r *run) jobFor(req events.Request, id int) job {
	r.mu.Lock()
	r.jobs = append(r.jobs, &jobOutcomes{due: map[string]Gateway{}, done: map[string]bool{}})
	r.mu.Unlock()
	j := job{id: id, kind: req.Kind, info: r.info, regions: req.Regions, gatewayIDs: req.GatewayIDs, types: req.VersionTypes,
		target: req.TargetVersion, dryRun: r.cfg.DryRun || req.DryRun, force: req.Force, retryFailedOnly: req.RetryFailedOnly}
	j.info.CorrelationID = req.CorrelationID
	if len(j.regions) == 0 {
		j.regions = r.cfg.Regions
	}
	if len(j.types) == 0 {
		j.types = r.cfg.VersionTypes
	}
	for _, gw := range j.gatewayIDs {
		r.jobs[id].due[gw] = Gateway{ID: gw}
	}
	return j
}

// settled reports whether a job gave a gateway and version type an outcome.
func (r *run) settled(j job, id string, vt upgrade.VersionType) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return j.id >= 0 && j.id < len(r.jobs) && r.jobs[j.id].done[id+"/"+string(vt)]
}

// expect notes gateways a job listed: each must end with an outcome.
func (r *run) expect(j job, gws []Gateway) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range gws {
		r.jobs[j.id].due[g.ID] = g
	}
}

// failUnfinished fails every gateway and version type of a job that has no
// outcome yet: a panic ended the job.
func (r *run) failUnfinished(j job, cause string) {
	r.mu.Lock()
	var left []Gateway
	if j.id >= 0 && j.id < len(r.jobs) {
		for _, g := range r.jobs[j.id].due {
			for _, vt := range j.types {
				if !r.jobs[j.id].done[g.ID+"/"+string(vt)] {
					left = append(left, g)
					break
				}
			}
		}
	}
	r.mu.Unlock()
	slices.SortFunc(left, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	r.recordAll(j, left, upgrade.OutcomeFailed, upgrade.ReasonInternal, cause)
}

// record adds a result to the report, logs the decision and queues its event.
func (r *run) record(j job, res upgrade.Result, took time.Duration) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.counts.Add(res.Outcome)
	if j.id >= 0 && j.id < len(r.jobs) {
		jo := r.jobs[j.id]
		if res.SmartAGID != "" {
			jo.done[res.SmartAGID+"/"+string(res.VersionType)] = true
		}
		jo.results++
		if infrastructureFailure(res) {
			jo.unreachable++
		}
	}
	r.mu.Unlock()

	ev := r.log.Info()
	if res.Outcome == upgrade.OutcomeFailed || res.Outcome == upgrade.OutcomeRejected {
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
	vt     upgrade.VersionType
	rec    *Record // nil without a ledger record
	dev    Device  // the device to upgrade (HA pairs: one a run)
	target Release
	serial string // SerialNumber for the call ("" for a single device)
	res    upgrade.Result
	start  time.Time
	// fresh: the gateway has not started this rollout yet (a retry to the
	// same version, or an HA pair's second device, has).
	fresh bool
	// viaRollout: its rollout let it in; claimed: its claim was written.
	viaRollout, claimed bool
	// accepted holds the RequestId once the service accepted the call.
	accepted atomic.Pointer[string]
	// other is the gateway's record of the other version type, when it has
	// one: while that upgrade is in flight, this one waits.
	other *Record
}

func (c *candidate) key() rolloutKey { return rolloutKey{c.vt, c.g.Model, c.target.Code} }

// sweep lists the job's regions and handles every gateway and version type
// in three steps: plan each one (settling what earlier runs started), gate
// the candidates together (kill switch, maintenance window, rollout waves
// and breaker, run limit), then make the calls.
func (r *run) sweep(ctx context.Context, j job) {
	if j.retryFailedOnly && !r.retryFailedOnly(ctx, &j) {
		return
	}
	fleet, listErr := r.list(ctx, j)
	// Both version types, whatever the request's: one in flight holds the
	// other back.
	records, err := r.records(ctx, fleet, []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi})
	if err != nil {
		// Without the ledger's view no claim can be trusted: call nothing.
		r.log.Error().Err(err).Msg("ledger unreadable: every gateway deferred")
		r.recordAll(j, fleet, upgrade.OutcomeDeferred, upgrade.ReasonLedgerDown, err.Error())
		return
	}

	full := len(j.gatewayIDs) == 0 && !j.retryFailedOnly
	if full && r.ledger != nil && !j.dryRun {
		r.rollouts.recount(ctx, j)
	}
	if r.fanOut(ctx, j, fleet, full) {
		return
	}
	if !r.handleChunks(ctx, j, fleet, records) {
		full = false
	}
	if full && !j.dryRun {
		r.rollouts.countPopulation(ctx, j)
	}
	r.rollouts.reviewAll(ctx, j)

	r.unlisted(j, fleet, listErr, upgrade.OutcomeSkipped)
}

// unlisted gives each gateway the request named that no listed region has
// an outcome, so none vanishes: notFound when every region was listed, else
// the outcome of the listing that failed (its gateway may be there).
func (r *run) unlisted(j job, fleet []Gateway, listErr error, notFound upgrade.Outcome) {
	listed := make(map[string]bool, len(fleet))
	for _, g := range fleet {
		listed[g.ID] = true
	}
	for _, id := range j.gatewayIDs {
		if listed[id] {
			continue
		}
		for _, vt := range j.types {
			res := upgrade.Result{SmartAGID: id, VersionType: vt, Outcome: notFound, Reason: upgrade.ReasonNotFound,
				Error: "not found in regions " + strings.Join(j.regions, ", ")}
			if listErr != nil {
				res = listFailure(upgrade.Result{SmartAGID: id, VersionType: vt}, listErr)
				res.Error = "its region could not be listed: " + res.Error
			}
			r.record(j, res, 0)
		}
	}
}

// listFailure is the outcome of a listing that failed: deferred when the
// run's time ran out or the API kept throttling (a later run lists again),
// failed otherwise.
func listFailure(res upgrade.Result, err error) upgrade.Result {
	applyError(&res, err)
	switch {
	case errors.Is(err, errDeadline):
		res.Error = err.Error()
		return deferred(res, upgrade.ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, upgrade.ReasonThrottled)
	case errors.Is(err, errInternal):
		res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonInternal
		return res
	}
	res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonListFailed
	return res
}

// severity orders listing failures: one region's lasting failure outweighs
// another's throttling, which outweighs a deadline.
func severity(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errDeadline):
		return 1
	case classify(err) == throttled:
		return 2
	}
	return 3
}

// list returns the gateways of the job's regions. A region that cannot be
// listed is reported as a result of its own; err is the most severe of
// those failures, nil when every region was listed.
func (r *run) list(ctx context.Context, j job) (fleet []Gateway, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, region := range j.regions {
		g.Go(func() error {
			gws, lerr := r.listRegionSafely(gctx, region, j.gatewayIDs)
			mu.Lock()
			defer mu.Unlock()
			if lerr != nil {
				if severity(lerr) > severity(err) {
					err = lerr
				}
				r.record(j, listFailure(upgrade.Result{RegionID: region}, lerr), 0)
				return nil
			}
			fleet = append(fleet, gws...)
			r.expect(j, gws)
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
	return fleet, err
}

// errInternal is a bug met on the way: its stack is in the log.
var errInternal = errors.New("internal error")

// listRegionSafely lists a region on a goroutine of its own: a panic there
// is an error of that region's listing, not the end of the process.
func (r *run) listRegionSafely(ctx context.Context, region string, ids []string) (gws []Gateway, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("regionId", region).Msg("listing aborted by a panic")
			gws, err = nil, fmt.Errorf("%w: %v", errInternal, p)
		}
	}()
	return r.listRegion(ctx, region, ids)
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
			p, err := readSAG(ctx, r.api, listGateways, func(ctx context.Context) (page, error) {
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

// planAhead is how many chunks may be planned before their calls start.
const planAhead = 2

// handleChunks handles the fleet in chunks, in spread order: plan a chunk
// (version lists, device reads), gate it and call it. A wave's first
// gateways are spread over regions and CCNs, and a deadline cuts the
// planning of one chunk, not the calls of a whole night. Planning runs up to planAhead chunks
// ahead of the calls, its workers moving on to the next chunk while one
// call of this chunk is slow, so reads and updates, limited each on its
// own, do not take turns; each chunk is still gated in order, after the
// previous one's calls are settled. When the next chunk would not fit
// before the run must stop, the rest goes to the work queue as a
// continuation. It reports whether every chunk was looked at here.
func (r *run) handleChunks(ctx context.Context, j job, fleet []Gateway, records map[upgrade.VersionType]map[string]Record) (complete bool) {
	complete = true
	chunks := slices.Collect(slices.Chunk(spreadGateways(fleet), max(8, r.cfg.MaxConcurrency)))
	// Chunks planned or being called, at most planAhead+1; a slot is taken
	// before a chunk is planned and given back once its calls are settled.
	inFlight := make(chan struct{}, planAhead+1)
	pending := make(chan chan []*candidate, planAhead+1) // in chunk order
	workers := make(chan struct{}, r.cfg.MaxConcurrency)
	// How long the last chunk took to plan, and to gate, call and settle:
	// a chunk planned now ends after its planning and the calls of every
	// chunk in flight, its own included.
	var planTook, callsTook atomic.Int64
	// stop ends the planning when the calls end early (a panic on their
	// side): no goroutine of the run outlives it.
	stop := make(chan struct{})
	var planning sync.WaitGroup
	defer planning.Wait()
	defer close(stop)
	planning.Add(1)
	go func() {
		defer planning.Done()
		defer close(pending)
		next := 0 // the first chunk not handed to the calls
		defer func() {
			// As survive does for one gateway: the chunks not planned yet
			// fail, each gateway with a result.
			if p := recover(); p != nil {
				r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("planning aborted by a panic")
				r.recordAll(j, slices.Concat(chunks[next:]...), upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p))
			}
		}()
		for i, chunk := range chunks {
			next = i
			select {
			case inFlight <- struct{}{}:
			case <-stop:
				return
			}
			ends := time.Now().Add(time.Duration(planTook.Load() + int64(len(inFlight))*callsTook.Load()))
			if i > 0 && ends.After(r.api.stopAt) && r.handOver(ctx, j, slices.Concat(chunks[i:]...)) {
				complete = false // written before pending is closed, read after
				return
			}
			if r.stopped(ctx, j, chunk) {
				<-inFlight
				complete = false // the rest was not looked at
				continue
			}
			out := make(chan []*candidate, 1)
			select {
			case pending <- out:
			case <-stop:
				return
			}
			planning.Add(1)
			go func() {
				defer planning.Done()
				var cands []*candidate
				defer func() { out <- cands }() // even after a panic: the calls wait for it
				defer func() {
					if p := recover(); p != nil {
						r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("planning aborted by a panic")
						r.recordAll(j, chunk, upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p))
					}
				}()
				began := time.Now()
				cands = r.plan(ctx, j, chunk, records, workers)
				planTook.Store(int64(time.Since(began)))
			}()
		}
	}()
	for out := range pending {
		cands := <-out
		began := time.Now()
		calls, admitted := r.gate(ctx, j, cands)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.cfg.MaxConcurrency)
		for _, c := range calls {
			g.Go(func() error {
				defer r.surviveCall(j, c)
				r.record(j, r.execute(gctx, j, c), time.Since(c.start))
				return nil
			})
		}
		_ = g.Wait()
		r.settleRollouts(ctx, j, admitted)
		callsTook.Store(int64(time.Since(began)))
		<-inFlight
	}
	return complete
}

// infrastructureFailure reports whether a result says a service the run
// needs could not be reached: the ledger, the work queue, a region's
// listing, or SAG itself (no answer, a server error that outlasted the
// retries).
func infrastructureFailure(res upgrade.Result) bool {
	switch res.Reason {
	case upgrade.ReasonLedgerDown, upgrade.ReasonListFailed, upgrade.ReasonQueueDown:
		return true
	case upgrade.ReasonAPIError: // a read; an update that may have acted is unconfirmed, and a retry of the invocation must not call again
		return res.Outcome == upgrade.OutcomeFailed &&
			(res.ErrorCode == "" || res.ErrorCode == "NoAnswer" || slices.Contains(transientCodes, res.ErrorCode))
	}
	return false
}

// unreachable lists the jobs whose every result is an infrastructure
// failure: the invocation fails, so FC's retries and its onFailure
// destination see it. A job with nothing to do, or with some gateways
// settled, is not one.
func (r *run) unreachable() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i, jo := range r.jobs {
		if jo.results > 0 && jo.unreachable == jo.results {
			out = append(out, fmt.Sprintf("request %d: every one of its %d results says a service could not be reached", i+1, jo.results))
		}
	}
	return out
}

// readFailure turns a failed read into an outcome.
func readFailure(res upgrade.Result, err error) upgrade.Result {
	applyError(&res, err)
	var ae *APIError
	errors.As(err, &ae)
	switch {
	case errors.Is(err, errDeadline):
		return deferred(res, upgrade.ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, upgrade.ReasonThrottled)
	case ae != nil && ae.Code == "SmartAccessGatewayNotOnline":
		return skipped(res, upgrade.ReasonOffline)
	case classify(err) == laterRun:
		return deferred(res, upgrade.ReasonTryLater)
	}
	res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonAPIError
	return res
}

func applyError(res *upgrade.Result, err error) {
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

// recordAll gives every version type of these gateways one outcome, where
// the run settles them together without looking at each; those that have
// one already keep it.
func (r *run) recordAll(j job, gws []Gateway, outcome upgrade.Outcome, reason, detail string) {
	for _, g := range gws {
		for _, vt := range j.types {
			if r.settled(j, g.ID, vt) {
				continue
			}
			res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Outcome: outcome, Reason: reason, Error: detail}
			if vt == upgrade.VersionDevice {
				res.FromVersion = g.SoftwareVersion
			}
			r.record(j, res, 0)
		}
	}
}

func skipped(res upgrade.Result, reason string) upgrade.Result {
	res.Outcome, res.Reason = upgrade.OutcomeSkipped, reason
	return res
}

func deferred(res upgrade.Result, reason string) upgrade.Result {
	res.Outcome, res.Reason = upgrade.OutcomeDeferred, reason
	return res
}

// lowest returns the oldest version among the devices.
func lowest(devices []Device, vt upgrade.VersionType) string {
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
