package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fanOut makes a full sweep of a large fleet a planner: it reports the
// gateways the listing alone rules out, sets each rollout's population, and
// sends the rest to the work queue in batches (in spread order, one region a
// batch, the regions taking turns) for workers to sweep. It reports whether
// it did.
func (r *run) fanOut(ctx context.Context, j job, fleet []Gateway, full bool) bool {
	if !full || !r.canHandOver(j) || j.kind != upgrade.KindSweep && j.kind != "" {
		return false
	}
	var eligible []Gateway
	type ruling struct {
		g      Gateway
		reason string
	}
	var ruledOut []ruling // by the listing alone, in fleet order
	for _, g := range fleet {
		if reason := ineligible(g, r.now()); reason != "" {
			ruledOut = append(ruledOut, ruling{g, reason})
		} else {
			eligible = append(eligible, g)
		}
	}
	if len(eligible) <= r.cfg.FanoutThreshold {
		return false
	}
	for _, o := range ruledOut {
		r.reportAll(j, []Gateway{o.g}, upgrade.OutcomeSkipped, o.reason, "")
	}
	skippedN := len(ruledOut) * len(j.types)
	if r.ledger != nil && !j.dryRun {
		r.rollouts.planPopulations(ctx, j, r.countBelow(j))
	}
	batches := r.batches(j, eligible)
	fan := &events.Fanout{Batches: len(batches)}
	for _, b := range r.send(ctx, batches) {
		fan.Gateways += len(b.req.GatewayIDs)
		if b.err == nil {
			continue
		}
		fan.Failed += len(b.req.GatewayIDs)
		for _, id := range b.req.GatewayIDs {
			for _, vt := range j.types {
				r.report(j, upgrade.Result{SmartAGID: id, RegionID: b.req.Regions[0], VersionType: vt,
					Outcome: upgrade.OutcomeDeferred, Reason: upgrade.ReasonQueueDown, Error: b.err.Error()}, 0)
			}
		}
	}
	r.fanout = fan
	r.log.Info().Int("gateways", fan.Gateways).Int("batches", fan.Batches).Int("failed", fan.Failed).
		Int("batchSize", r.cfg.BatchSize).Msg("fanned out")
	r.out.add(events.PlannedEvent(r.out.source, j.info, *fan, len(fleet), skippedN, r.now()))
	return true
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
