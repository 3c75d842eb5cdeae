package handler

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// stream is a full sweep's listing on its way to becoming a planner.
type stream struct {
	r   *run
	j   job
	all []string // the job's regions, those outside their window too

	mu   sync.Mutex
	cond *sync.Cond // signalled when a batch is ready or a region's listing ends
	// Until it fans out: the gateways listed, and how many of those
	// answered are eligible, by region.
	fanning  bool
	kept     map[string][]Gateway
	eligible map[string]int
	// Once it does, by region: the gateways of the batch being filled, the
	// batches ready to send in order, whether the listing ended and
	// whether it failed.
	pending map[string][]Gateway
	ready   map[string][]batch
	cut     map[string]int // batches cut, by region
	ended   map[string]bool
	failed  map[string]bool
	listErr error // the most severe listing failure
	// What the planner keeps of the fleet: its versions, each model's
	// gateways (by region, so a failed region's can be dropped), how
	// many it listed and ruled out, the batches it cut and their gateways.
	versions          fleetCounts
	sizes             map[string]modelSizes
	listedN, skippedN int
	fan               events.Fanout
	broken            bool          // the sender panicked: what it leaves fails
	sent              chan struct{} // closed when the sender is done
	// While the listing goes on the planner sweeps a batch itself whenever
	// it has none (keep, taken by work): with one instance, nothing else
	// would read versions until the planner ends.
	keep chan batch
	own  sync.WaitGroup
	// ahead: the gateways of the first batch read early, before the run
	// knows whether it fans out (it sweeps them, or keeps their batch).
	ahead []Gateway
}

// page takes a page of a region's gateways, in page order.
func (s *stream) page(ctx context.Context, region string, gws []Gateway) {
	var ruledOut []Gateway
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		s.skip(ruledOut)
	}()
	s.readAhead(ctx, region, gws)
	if !s.fanning {
		s.kept[region] = append(s.kept[region], gws...)
		return
	}
	ruledOut = s.plan(region, gws)
}

// answered counts the eligible gateways of a page as soon as it is
// answered, and makes the run a planner once more than FanoutThreshold
// are: a page throttled early in a listing and retried holds back the
// pages after it, and counted as handed over, the decision with them (one
// instance, 2,000 gateways: the planner's first update came 311-570 ms
// into the night; counted as answered, its first batch not listed again,
// 219-280 ms, README). A gateway a fleet that changes pages twice counts
// twice.
func (s *stream) answered(ctx context.Context, region string, gws []Gateway) {
	var ruledOut []Gateway
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		s.skip(ruledOut)
	}()
	if s.fanning {
		return
	}
	for _, g := range gws {
		if ineligible(g, s.r.now()) == "" {
			s.eligible[region]++
		}
	}
	total := 0
	for _, n := range s.eligible {
		total += n
	}
	if total > s.r.cfg.FanoutThreshold {
		ruledOut = s.becomePlanner(ctx)
	}
}

// becomePlanner makes the run a planner: what was kept goes the way of
// every page from here on. It returns the gateways kept that the listing
// rules out. s.mu is held.
func (s *stream) becomePlanner(ctx context.Context) (ruledOut []Gateway) {
	s.fanning = true
	s.sent = make(chan struct{})
	if s.keeps() {
		s.keep = make(chan batch)
		s.own.Add(1)
		go s.work(ctx)
	}
	go s.send(ctx)
	for _, rg := range s.j.regions {
		ruledOut = append(ruledOut, s.plan(rg, s.kept[rg])...)
		if s.ended[rg] {
			s.flushLast(rg)
		}
	}
	s.kept, s.eligible = nil, nil
	return ruledOut
}

// readAhead takes the gateways of a page to read early: those of the batch
// the planner would keep first (the first region's first eligible
// gateways, in page order: the run may fan out before they are listed),
// which a run that does not fan out sweeps too. With the first of them it
// starts their reader. s.mu is held.
func (s *stream) readAhead(ctx context.Context, region string, gws []Gateway) {
	if region != s.j.regions[0] || !s.keeps() || s.r.cfg.MaxUpgradesPerRun < s.r.cfg.BatchSize ||
		len(s.ahead) >= s.r.cfg.BatchSize {
		return
	}
	now := s.r.now()
	first := len(s.ahead) == 0
	for _, g := range gws {
		if len(s.ahead) < s.r.cfg.BatchSize && ineligible(g, now) == "" {
			s.ahead = append(s.ahead, g)
		}
	}
	if first && len(s.ahead) > 0 {
		s.r.reads.prefetch.Add(1)
		go s.readAheadOf(ctx, region)
	}
	s.cond.Broadcast()
}

// readAheadOf reads the versions of the gateways read ahead, one after the
// other at the lane's pace, in the order the planner's own sweep will plan
// them: the spread of those known so far. The batch is whole a page or two
// into the listing, long before its reads are done, so its first chunk is
// read first and called while the rest is read (in listing order, the
// first chunk waited for most of the batch's reads).
func (s *stream) readAheadOf(ctx context.Context, region string) {
	defer s.r.reads.prefetch.Done()
	defer func() { _ = recover() }() // a read not made early is made by the plan
	read := map[string]bool{}
	for {
		g, ok := s.nextAhead(region, read)
		if !ok {
			return
		}
		read[g.ID] = true
		if !s.r.reads.earlyAll(ctx, region, g.ID, s.j.types, nil) {
			return
		}
	}
}

// nextAhead waits for the next gateway to read ahead, the first of their
// spread not read yet; none once every one is read and no more will come
// (the batch is whole, or the region is listed).
func (s *stream) nextAhead(region string, read map[string]bool) (Gateway, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for _, g := range spreadGateways(s.ahead) {
			if !read[g.ID] {
				return g, true
			}
		}
		if len(s.ahead) >= s.r.cfg.BatchSize || s.ended[region] {
			return Gateway{}, false
		}
		s.cond.Wait()
	}
}

// plan counts gateways of a region and queues the eligible ones' ids,
// cutting a batch whenever BatchSize are queued; it returns those the
// listing rules out. s.mu is held.
func (s *stream) plan(region string, gws []Gateway) (ruledOut []Gateway) {
	if s.sizes[region] == nil {
		s.sizes[region] = modelSizes{}
	}
	for _, g := range gws {
		s.versions.addListed(g)
		s.sizes[region].add(g, 1)
		if ineligible(g, s.r.now()) != "" {
			ruledOut = append(ruledOut, g)
			continue
		}
		s.pending[region] = append(s.pending[region], g)
		if len(s.pending[region]) >= s.r.cfg.BatchSize {
			s.flush(region)
		}
	}
	s.listedN += len(gws)
	s.skippedN += len(ruledOut) * len(s.j.types)
	s.r.handedOver(len(gws))
	return ruledOut
}

// skip reports the gateways the listing rules out.
func (s *stream) skip(gws []Gateway) {
	now := s.r.now()
	for _, g := range gws {
		s.r.reportAll(s.j, []Gateway{g}, upgrade.OutcomeSkipped, ineligible(g, now), "")
	}
}

// flush cuts a region's queued gateways into a batch ready to send, their
// ids in the order its sweep will plan them (their spread): the reads it
// makes while it lists them again, in the request's order, are then those
// of its first chunk. s.mu is held.
func (s *stream) flush(region string) {
	gws := s.pending[region]
	if len(gws) == 0 {
		return
	}
	s.pending[region] = nil
	ids := make([]string, 0, len(gws))
	for _, g := range spreadGateways(gws) {
		ids = append(ids, g.ID)
	}
	j := s.j
	s.ready[region] = append(s.ready[region], batch{req: events.Request{
		Kind: upgrade.KindSweep, Regions: []string{region}, GatewayIDs: ids, VersionTypes: j.types,
		TargetVersion: j.target, DryRun: j.dryRun, Force: j.force,
		CorrelationID: j.info.CorrelationID, ParentRunID: j.info.RunID, BatchID: newBatchID(),
	}})
	s.fan.Batches++
	s.fan.Gateways += len(ids)
	s.cut[region]++
	s.cond.Broadcast()
}

// The night's last batches go in halves: the night ends when the slowest
// of the instances sharing the limit ends its last batch, at its share of
// the limit (eight instances: about 13 version reads a second, 4 s for a
// batch of 50). Each region's last batches (tailBatches over every region)
// are held back while it is listed and cut in two at its end; at most one
// in splitOneIn of its batches, since one instance, whose batches run one
// after another, loses a few slots of its pace at each batch's edge.
const (
	tailBatches = 8
	splitOneIn  = 20
)

// held is how many of a region's ready batches wait for its listing to end.
// s.mu is held.
func (s *stream) held(region string) int {
	if s.ended[region] {
		return 0
	}
	return s.tailPerRegion()
}

// tailPerRegion is each region's share of the night's tailBatches.
func (s *stream) tailPerRegion() int {
	return (tailBatches + len(s.j.regions) - 1) / len(s.j.regions)
}

// flushLast cuts a region's last batch once its listing ended, and its
// last batches in two. s.mu is held.
func (s *stream) flushLast(region string) {
	s.flush(region)
	s.splitTail(region)
}

// splitTail cuts a region's last batches in two. Each half takes every
// other gateway of the batch, in its order: as spread as the batch was.
// s.mu is held.
func (s *stream) splitTail(region string) {
	rd := s.ready[region]
	k := min(s.tailPerRegion(), len(rd), s.cut[region]/splitOneIn)
	if k == 0 {
		return
	}
	var halves []batch
	for _, b := range rd[len(rd)-k:] {
		ids := b.req.GatewayIDs
		if len(ids) < 2 {
			halves = append(halves, b)
			continue
		}
		first, second := b, b
		first.req.GatewayIDs, second.req.GatewayIDs = nil, nil
		for i, id := range ids {
			if i%2 == 0 {
				first.req.GatewayIDs = append(first.req.GatewayIDs, id)
			} else {
				second.req.GatewayIDs = append(second.req.GatewayIDs, id)
			}
		}
		second.req.BatchID = newBatchID()
		halves = append(halves, first, second)
		s.fan.Batches++
	}
	s.ready[region] = append(rd[:len(rd)-k:len(rd)-k], halves...)
}

// end notes that a region's listing ended, with err when it failed.
func (s *stream) end(region string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended[region] = true
	s.cond.Broadcast() // the sender, and the reader of the first batch
	if err != nil {
		s.failed[region] = true
		if severity(err) > severity(s.listErr) {
			s.listErr = err
		}
	}
	if !s.fanning {
		if err != nil {
			// As list does: a region that failed lists nothing.
			s.kept[region], s.eligible[region] = nil, 0
		}
		return
	}
	// Its gateways listed before a failure were planned: they go too.
	s.flushLast(region)
	if err != nil {
		delete(s.versions, region)
		delete(s.sizes, region)
	}
}

// send is the planner's sender: it does what must precede any batch, then
// sends the batches in the regions' turns (the region order of the job, a
// batch each in turn), up to 16 a call of those ready, and reports those
// that could not go. Its panic fails the gateways it had not sent.
func (s *stream) send(ctx context.Context) {
	r, j := s.r, s.j
	var taken []batch
	defer close(s.sent)
	defer func() {
		if s.keep != nil {
			close(s.keep) // the batch being swept ends; no other starts
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("fan-out aborted by a panic")
			s.mu.Lock()
			s.broken = true
			s.mu.Unlock()
			s.fail(taken, upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p))
		}
	}()
	if len(r.cfg.Windows) > 0 {
		// The rollouts share their waves by region, by the counts of the
		// whole listing.
		s.mu.Lock()
		for !s.allEnded() {
			s.cond.Wait()
		}
		sizes := modelSizes{}
		for _, bySize := range s.sizes {
			for model, byRegion := range bySize {
				for region, n := range byRegion {
					sizes.add(Gateway{Model: model, Region: region}, n)
				}
			}
		}
		s.mu.Unlock()
		r.measureRegions(ctx, j, s.all, sizes)
	}
	if r.ledger != nil && !j.dryRun {
		r.rollouts.recount(ctx, j)
		r.rollouts.planPopulations(ctx, j, r.countBelow(j))
	}
	turn := 0 // the region whose batch goes next
	for {
		s.mu.Lock()
		for {
			taken, turn = s.take(turn, 16)
			if len(taken) > 0 || s.allEnded() && s.readyN() == 0 {
				break
			}
			s.cond.Wait()
		}
		// Its first batch, read ahead, it keeps even once the listing
		// ended.
		keep := !s.allEnded() || len(s.ahead) > 0 && s.fan.Kept == 0
		s.mu.Unlock()
		if len(taken) == 0 {
			return
		}
		if keep {
			taken = s.keepOne(taken)
		}
		if len(taken) == 0 {
			continue
		}
		r.send(ctx, taken)
		for _, b := range taken {
			if b.err != nil {
				s.fail([]batch{b}, upgrade.OutcomeDeferred, upgrade.ReasonQueueDown, b.err.Error())
			}
		}
		taken = nil
	}
}

// keeps reports whether the planner may sweep batches itself: not a forced
// job (its batches are bound in the ledger as they are sent), nor one that
// sends after the listing (MAINTENANCE_WINDOWS).
func (s *stream) keeps() bool {
	return !s.j.force && len(s.r.cfg.Windows) == 0
}

// keepBatches is how many batches the planner sweeps itself at most: their
// results stay in its report, and its process is to hold counts, not the
// fleet. While a 100,000-gateway fleet is listed (2,000 pages, 20 s at 100
// a second) one instance reads versions only for the batches it keeps: 40
// fill that time.
const keepBatches = 40

// keepOne gives the first of the batches taken to the planner's own sweep
// when it has none and the run's limit leaves room for it; it returns the
// batches left to send.
func (s *stream) keepOne(taken []batch) []batch {
	if s.keep == nil {
		return taken
	}
	b := taken[0]
	n := len(b.req.GatewayIDs)
	s.mu.Lock()
	room := s.fan.Kept+n <= min(s.r.cfg.MaxUpgradesPerRun, keepBatches*s.r.cfg.BatchSize)
	first := len(s.ahead) > 0 && s.fan.Kept == 0 // the batch read ahead
	s.mu.Unlock()
	if !room {
		return taken
	}
	if first {
		// Its versions are read already: sent, it would be read again.
		// The planner's sweep has none yet, so it takes it at once.
		s.keep <- b
	} else {
		select {
		case s.keep <- b:
		default:
			return taken // busy with one
		}
	}
	s.mu.Lock()
	s.fan.Batches--
	s.fan.Gateways -= n
	s.fan.Kept += n
	s.mu.Unlock()
	s.r.handedOver(-n) // listed again by the sweep, and counted there
	return taken[1:]
}

// work is the planner's own sweep of the batches it keeps, one at a time,
// as a worker would sweep them (the gateways listed again, the records of
// each batch read).
func (s *stream) work(ctx context.Context) {
	defer s.own.Done()
	for b := range s.keep {
		func() {
			defer func() {
				// The run gives every gateway still due an outcome.
				if p := recover(); p != nil {
					s.r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("a kept batch aborted by a panic")
				}
			}()
			j := s.j
			j.regions, j.gatewayIDs = b.req.Regions, b.req.GatewayIDs
			j.listed = s.listedAhead(b.req.GatewayIDs)
			s.r.sweep(ctx, j)
		}()
	}
}

// listedAhead returns the gateways read ahead when ids are theirs: the
// first batch, which the planner listed moments ago. Listed again, it would
// wait for the listing's pages in the lane, and its updates with it.
func (s *stream) listedAhead(ids []string) []Gateway {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ids) != len(s.ahead) {
		return nil
	}
	for _, g := range s.ahead {
		if !slices.Contains(ids, g.ID) {
			return nil
		}
	}
	return slices.Clone(s.ahead)
}

// take takes up to n ready batches in the regions' turns from turn on,
// stopping at a region whose batch is not ready while its listing goes on;
// it returns them and whose turn is next. s.mu is held.
func (s *stream) take(turn, n int) ([]batch, int) {
	var out []batch
	regions := s.j.regions
	for passed := 0; len(out) < n && passed < len(regions); {
		region := regions[turn]
		switch {
		case len(s.ready[region]) > s.held(region):
			out = append(out, s.ready[region][0])
			s.ready[region][0] = batch{} // sent, its ids are not kept
			s.ready[region] = s.ready[region][1:]
			passed = 0
		case s.ended[region]:
			passed++ // no batch left: its turns pass
		default:
			return out, turn // wait for it
		}
		turn = (turn + 1) % len(regions)
	}
	return out, turn
}

func (s *stream) allEnded() bool {
	for _, region := range s.j.regions {
		if !s.ended[region] {
			return false
		}
	}
	return true
}

func (s *stream) readyN() int {
	n := 0
	for _, bs := range s.ready {
		n += len(bs)
	}
	return n
}

// fail gives every gateway of batches that were not sent an outcome.
func (s *stream) fail(bs []batch, outcome upgrade.Outcome, reason, detail string) {
	for _, b := range bs {
		s.mu.Lock()
		s.fan.Failed += len(b.req.GatewayIDs)
		s.mu.Unlock()
		for _, id := range b.req.GatewayIDs {
			for _, vt := range s.j.types {
				s.r.report(s.j, upgrade.Result{SmartAGID: id, RegionID: b.req.Regions[0], VersionType: vt,
					Outcome: outcome, Reason: reason, Error: detail}, 0)
			}
		}
	}
}

// finish, once the listing and the sender are done, fails what a panic of
// the sender left, and tells what the planner did: the report's fan-out,
// the log line, the planned event and the fleet's versions.
func (s *stream) finish(ctx context.Context) {
	r, j := s.r, s.j
	if s.broken {
		var left []batch
		for _, region := range j.regions {
			left = append(left, s.ready[region]...)
			s.ready[region] = nil
		}
		s.fail(left, upgrade.OutcomeFailed, upgrade.ReasonInternal, "internal error: the fan-out was aborted by a panic")
	}
	fan := s.fan
	r.fanout = &fan
	r.log.Info().Int("gateways", fan.Gateways).Int("batches", fan.Batches).Int("failed", fan.Failed).
		Int("batchSize", r.cfg.BatchSize).Msg("fanned out")
	r.out.add(events.PlannedEvent(r.out.source, j.info, fan, s.listedN, s.skippedN, r.now()))
	if !j.dryRun {
		var whole []string
		for _, region := range j.regions {
			if !s.failed[region] {
				whole = append(whole, region)
			}
		}
		r.noteFleet(ctx, s.versions, whole)
	}
}
