package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fanOut lists the regions of a full sweep that may fan out, every region
// at once, page by page. While at most FanoutThreshold of the gateways
// listed are eligible by the listing alone it keeps them, and when the
// listing ends so it returns them, sorted as list does (fanned false): the
// run handles them itself. Once more are eligible, the run becomes a
// planner: it reports the gateways the listing rules out, sets each
// rollout's population, and sends the rest to the work queue in batches
// (one region a batch, the regions taking turns) for workers to sweep, the
// first batches while the listing goes on; meanwhile it sweeps a batch
// itself whenever it has none. It then keeps counts (versions, models by
// region) and the ids of each region's batch being filled, not the listed
// fleet, and reads no ledger record of what it sends: the workers read
// their batches'. A region whose listing fails is reported as list does;
// the batches of its gateways listed before stand.
func (r *run) fanOut(ctx context.Context, j job, all []string) (fleet []Gateway, listErr error, fanned bool) {
	s := &stream{r: r, j: j, all: all, kept: map[string][]Gateway{}, eligible: map[string]int{},
		pending: map[string][]Gateway{}, ready: map[string][]batch{}, cut: map[string]int{}, ended: map[string]bool{}, failed: map[string]bool{},
		versions: fleetCounts{}, sizes: map[string]modelSizes{}}
	s.cond = sync.NewCond(&s.mu)
	var g errgroup.Group
	for _, region := range j.regions {
		g.Go(func() error {
			listed := 0
			lerr := r.listRegionSafely(ctx, region, nil, func(gws []Gateway) {
				listed += len(gws)
				s.page(ctx, region, gws)
			}, func(gws []Gateway) { s.answered(ctx, region, gws) })
			if lerr != nil {
				r.report(j, listFailure(upgrade.Result{RegionID: region}, lerr), 0)
			} else {
				r.log.Debug().Str("regionId", region).Int("gateways", listed).Msg("listed region")
			}
			s.end(region, lerr)
			return nil
		})
	}
	_ = g.Wait()
	if !s.fanning {
		for _, region := range j.regions {
			fleet = append(fleet, s.kept[region]...)
		}
		sortFleet(fleet)
		r.listed(j, fleet)
		return fleet, s.listErr, false
	}
	<-s.sent
	s.own.Wait()
	s.finish(ctx)
	return nil, s.listErr, true
}

// batch is one message for the work queue, and whether it was sent.
type batch struct {
	req events.Request
	err error
}

// batches cuts gateways into sweep requests of BatchSize, one region each,
// carrying the job's request. The regions take turns (round-robin over each
// region's batches, each in the order given): workers take batches in about
// this order, so a canary or a wave spreads across regions instead of the
// first region's gateways taking all of it.
func (r *run) batches(j job, gws []Gateway) []batch {
	var perRegion [][]batch
	for _, region := range j.regions {
		var ids []string
		for _, g := range gws {
			if g.Region == region {
				ids = append(ids, g.ID)
			}
		}
		var bs []batch
		for chunk := range slices.Chunk(ids, r.cfg.BatchSize) {
			bs = append(bs, batch{req: events.Request{
				Kind: upgrade.KindSweep, Regions: []string{region}, GatewayIDs: chunk, VersionTypes: j.types,
				TargetVersion: j.target, DryRun: j.dryRun, Force: j.force,
				CorrelationID: j.info.CorrelationID, ParentRunID: j.info.RunID, BatchID: newBatchID(),
			}})
		}
		perRegion = append(perRegion, bs)
	}
	var out []batch
	for i := 0; ; i++ {
		n := len(out)
		for _, bs := range perRegion {
			if i < len(bs) {
				out = append(out, bs[i])
			}
		}
		if len(out) == n {
			return out
		}
	}
}

// send puts batches on the work queue, 16 a call, and records which failed.
// A forced batch goes only once its record is in the ledger.
func (r *run) send(ctx context.Context, batches []batch) []batch {
	r.registerForced(ctx, batches)
	var ready []*batch
	for i := range batches {
		if batches[i].err == nil {
			ready = append(ready, &batches[i])
		}
	}
	for group := range slices.Chunk(ready, 16) {
		msgs := make([]QueueMessage, len(group))
		for i, b := range group {
			body, _ := json.Marshal(b.req)
			msgs[i] = QueueMessage{Body: string(body)}
		}
		_, err := retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.work.Send(ctx, msgs) })
		for _, b := range group {
			b.err = err
		}
	}
	return batches
}

// canHandOver reports whether the job's work may go to the work queue: there
// is one, and a forced job's batches can be recorded in the ledger, which is
// what lets the worker that takes them keep their force.
func (r *run) canHandOver(j job) bool {
	return r.work != nil && (!j.force || r.ledger != nil) && j.kind != upgrade.KindPlan
}

func newBatchID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// handOver sends the gateways a run has no time left for to the work queue
// as a continuation, and reports whether it did; if not, the run goes on and
// its deadline defers them.
func (r *run) handOver(ctx context.Context, j job, rest []Gateway) bool {
	if !r.canHandOver(j) || len(rest) == 0 {
		return false
	}
	batches := r.send(ctx, r.batches(j, rest))
	for _, b := range batches {
		if b.err != nil {
			// Some batches may have gone: their gateways are handled by
			// the continuation, and a second look at them by this run
			// finds their claims. Simpler and safe: let this run defer
			// the rest, and the continuation sort out the overlap.
			r.log.Warn().Err(b.err).Int("gateways", len(rest)).Msg("continuation not sent; the deadline defers the rest")
			return false
		}
	}
	r.mu.Lock()
	if r.continuation == nil {
		r.continuation = &events.Continuation{Enqueued: true}
	}
	r.continuation.Remaining += len(rest)
	r.mu.Unlock()
	r.log.Info().Int("gateways", len(rest)).Int("batches", len(batches)).Msg("continued: the rest is on the work queue")
	return true
}
