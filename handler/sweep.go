package handler

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// sweep handles every gateway of a job's scope and version type: list the
// fleet and read its ledger records, then, chunk by chunk, settle what
// earlier runs started, plan, gate, execute and report. A full sweep of a
// large fleet fans out to the work queue instead, while it lists (fanOut);
// one that runs out of time hands the rest over.
func (r *run) sweep(ctx context.Context, j job) {
	if j.retryFailedOnly && !r.retryFailedOnly(ctx, &j) {
		return
	}
	all := j.regions
	if j.regions = r.openRegions(j); len(j.regions) == 0 {
		return
	}
	full := len(j.gatewayIDs) == 0 && !j.retryFailedOnly
	defer r.reads.wait() // the reads started early, by the listing
	var fleet []Gateway
	var listErr error
	if full && r.canHandOver(j) && (j.kind == upgrade.KindSweep || j.kind == "") {
		var fanned bool
		if fleet, listErr, fanned = r.fanOut(ctx, j, all); fanned {
			return
		}
	} else if j.listed != nil {
		fleet = j.listed
		r.listed(j, fleet)
	} else {
		listed := make(chan struct{})
		if len(j.gatewayIDs) > 0 && len(j.regions) == 1 {
			// A batch: its version reads need no listing, only its turn.
			r.reads.readEarly(ctx, j.regions[0], j.gatewayIDs, j.types, listed)
		}
		fleet, listErr = r.list(ctx, j)
		close(listed)
	}
	r.measureRegions(ctx, j, all, sizesOfFleet(fleet))
	// Both version types, whatever the request's: one in flight holds the
	// other back.
	records, err := r.book.read(ctx, fleet, []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi})
	if err != nil {
		// Without the ledger's view no claim can be trusted: call nothing.
		r.log.Error().Err(err).Msg("ledger unreadable: every gateway deferred")
		r.reportAll(j, fleet, upgrade.OutcomeDeferred, upgrade.ReasonLedgerDown, err.Error())
		return
	}

	if full && !j.dryRun {
		regions := listedRegions(j, fleet, listErr)
		defer func() { r.noteFleet(ctx, r.fleetVersions(fleet), regions) }()
	}
	if full && r.ledger != nil && !j.dryRun {
		r.rollouts.recount(ctx, j)
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

// planAhead is how many chunks may be planned before their calls start.
const planAhead = 2

// handleChunks handles the fleet in chunks, in spread order: settle and plan
// a chunk (version lists, device reads), gate it and call it. A wave's first
// gateways are spread over regions and CCNs, and a deadline cuts the
// planning of one chunk, not the calls of a whole night. Planning runs up to
// planAhead chunks ahead of the calls, its workers moving on to the next
// chunk while one call of this chunk is slow, so reads and updates, limited
// each on its own, do not take turns; chunks are gated in order, each once
// the one before it is gated, and call while it is answered (a cap's edge
// waits for those answers). When the next chunk would not
// fit before the run must stop, the rest goes to the work queue as a
// continuation. It reports whether every chunk was looked at here.
func (r *run) handleChunks(ctx context.Context, j job, fleet []Gateway, records map[upgrade.VersionType]map[string]Record) (complete bool) {
	complete = true
	chunks := slices.Collect(slices.Chunk(spreadGateways(fleet), max(8, r.cfg.MaxConcurrency)))
	// Chunks planned or being called, at most planAhead+2; a slot is taken
	// before a chunk is planned and given back once its calls are recorded.
	inFlight := make(chan struct{}, planAhead+2)
	pending := make(chan chan []*candidate, planAhead+2) // in chunk order
	workers := make(chan struct{}, r.cfg.MaxConcurrency)
	// How long the last chunk took to plan, and to gate, call and record:
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
				r.reportAll(j, slices.Concat(chunks[next:]...), upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p))
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
			if r.gate.stopped(ctx, j, chunk) {
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
						r.reportAll(j, chunk, upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p))
					}
				}()
				began := time.Now()
				cands = r.planChunk(ctx, j, chunk, records, workers)
				planTook.Store(int64(time.Since(began)))
			}()
		}
	}()
	// The calls of a chunk start once the chunk before it is gated, not
	// once its calls are answered: an update call's answer and the records
	// after it would otherwise leave both lanes idle between chunks. Two
	// chunks call at once at most, and each gives back (run limit, night,
	// rollouts) after the one before it. At a cap's edge the gate waits
	// for the calls in flight (drain), so what they leave unused is not
	// refused to the next chunk.
	var calling sync.WaitGroup
	defer calling.Wait()
	earlier := make(chan struct{}) // closed once every earlier chunk gave back
	close(earlier)
	for out := range pending {
		cands := <-out
		began := time.Now()
		before := earlier
		calls, admitted := r.gate.pass(ctx, j, cands, func() bool { return waitFor(before) })
		done := make(chan struct{})
		calling.Add(1)
		go func() {
			defer calling.Done()
			defer func() {
				<-before // in chunk order, even after a panic
				close(done)
			}()
			defer func() { <-inFlight }() // the planning waits for this slot
			defer func() {
				if p := recover(); p != nil {
					r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("a chunk's give-back aborted by a panic")
				}
			}()
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(r.cfg.MaxConcurrency)
			for _, c := range calls {
				g.Go(func() error {
					defer r.surviveCall(j, c)
					r.report(j, r.exec.execute(gctx, j, c), time.Since(c.start))
					return nil
				})
			}
			_ = g.Wait()
			<-before
			r.gate.giveBack(ctx, j, admitted, calls)
			callsTook.Store(int64(time.Since(began)))
		}()
		<-before // at most two chunks calling
		earlier = done
	}
	return complete
}

// waitFor waits until ch is closed, and reports whether it had to.
func waitFor(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		<-ch
		return true
	}
}

// planChunk settles and plans every gateway and version type of a chunk,
// concurrently on the workers the chunks being planned share: it reports
// the final results, and returns the candidates in the chunk's order (the
// spread order the rollout admits them in).
func (r *run) planChunk(ctx context.Context, j job, chunk []Gateway, records map[upgrade.VersionType]map[string]Record, workers chan struct{}) []*candidate {
	slots := make([]*candidate, len(chunk)*len(j.types))
	g, gctx := errgroup.WithContext(ctx)
	for i, gw := range chunk {
		for t, vt := range j.types {
			g.Go(func() error {
				// One of the workers every chunk being planned shares.
				workers <- struct{}{}
				defer func() { <-workers }()
				start := time.Now()
				defer r.survive(j, upgrade.Result{SmartAGID: gw.ID, RegionID: gw.Region, VersionType: vt}, start)
				var rec *Record
				if got, ok := records[vt][gw.ID]; ok {
					rec = &got
				}
				rec, res, done := r.settler.settle(gctx, j, gw, vt, rec)
				if done {
					r.report(j, res, time.Since(start))
					return nil
				}
				c, res := r.planner.plan(gctx, j, gw, vt, rec)
				if c == nil {
					r.report(j, res, time.Since(start))
					return nil
				}
				c.start = start
				if got, ok := records[otherType(vt)][gw.ID]; ok {
					c.other = &got
				}
				slots[i*len(j.types)+t] = c
				return nil
			})
		}
	}
	_ = g.Wait()
	return slices.DeleteFunc(slots, func(c *candidate) bool { return c == nil })
}

// survive, deferred by a goroutine that handles one gateway, turns a panic
// into a failed result for it (the log has the stack): a bug met by one
// gateway must not take the process, and the run's report, with it.
func (r *run) survive(j job, res upgrade.Result, start time.Time) {
	p := recover()
	if p == nil {
		return
	}
	r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("smartAgId", res.SmartAGID).
		Str("versionType", string(res.VersionType)).Msg("gateway aborted by a panic")
	res.Outcome, res.Reason, res.Error = upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p)
	r.report(j, res, time.Since(start))
}

// surviveCall, deferred by the goroutine that makes a candidate's call, turns
// a panic into its result: requested when the service had accepted the call
// (an upgrade is under way whatever went wrong after), failed otherwise.
func (r *run) surviveCall(j job, c *candidate) {
	p := recover()
	if p == nil {
		return
	}
	r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("smartAgId", c.g.ID).
		Str("versionType", string(c.vt)).Msg("gateway aborted by a panic")
	res := c.res
	if id := c.accepted.Load(); id != nil {
		res.Outcome, res.Reason, res.RequestID = upgrade.OutcomeRequested, "", *id
		res.Error = fmt.Sprintf("accepted; then an internal error: %v", p)
	} else {
		res.Outcome, res.Reason, res.Error = upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p)
	}
	r.report(j, res, time.Since(c.start))
}

// listedRegions are the regions a sweep listed whole: all of them, or after
// a failed listing those it found gateways in.
func listedRegions(j job, fleet []Gateway, listErr error) []string {
	if listErr == nil {
		return j.regions
	}
	var regions []string
	for _, g := range fleet {
		if !slices.Contains(regions, g.Region) {
			regions = append(regions, g.Region)
		}
	}
	return regions
}
