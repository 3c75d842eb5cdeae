package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Temporary is implemented by publisher errors that deserve a retry.
type Temporary interface{ Temporary() bool }

// outbox publishes a run's events while the run goes on, and never holds the
// run back: add only queues. Once the topic fails (downAfter failed attempts
// in a row, whatever the events), the outbox stops trying
// for the rest of the run and keeps every event not yet published in the
// ledger, for a later sweep to publish with the same id; without a ledger an
// event it cannot publish is written whole into a log line. finish waits
// until every event is published or kept, then sends run.completed last, so
// its counts say what became of all the others.
type outbox struct {
	pub    Publisher
	ledger Ledger  // nil: no ledger to keep events in
	lcall  *caller // ledger calls
	source string
	log    zerolog.Logger
	// Publishing stops at publishCtx's deadline, keeping at keepCtx's.
	publishCtx    context.Context
	cancelPublish context.CancelFunc
	keepCtx       context.Context
	cancelKeep    context.CancelFunc

	mu       sync.Mutex
	wake     *sync.Cond
	queue    []outgoing
	closed   bool  // finish began: no more events but run.completed
	down     error // why the topic is taken as down for the rest of the run
	failures int   // failed attempts in a row, across workers
	keep     []events.CloudEvent
	keeping  bool     // the keeper is writing
	final    bool     // nothing more will be handed to the keeper
	drained  []string // keys of kept events this run published
	lease    *drainLease
	busy     int // events the workers have in hand
	// The drain of the events earlier runs kept starts with this run's
	// first successful publish (the topic is back), on its own goroutine.
	drainPlan *drainPlan
	draining  sync.WaitGroup
	closing   bool // finish began: no drain starts any more
	health    *TopicHealth
	stats     events.Publishing
	workers   sync.WaitGroup
	keeper    sync.WaitGroup
}

// outgoing is an event to publish; key is set for an event an earlier run
// kept, which stays kept until it is published. A barrier (an earlier run's
// run.completed) goes out only once every event queued before it is out.
type outgoing struct {
	ev      events.CloudEvent
	key     string
	barrier bool
}

const (
	publishWorkers = 4
	// downAfter failed attempts in a row take the topic as down.
	downAfter = 8
	// drainMax is the most kept events one run publishes.
	drainMax = 10000
)

// TopicHealth remembers, for the runs one instance serves, when the outcome
// topic last failed: a run that starts soon after takes one failed attempt,
// not downAfter, as the sign that it is still down (a circuit breaker's
// half-open state), so each of a night's batches does not pay again to learn
// what the last one learnt.
type TopicHealth struct {
	mu     sync.Mutex
	downAt time.Time
}

// remember is how long a failed topic stays suspect.
const remember = time.Minute

func (h *TopicHealth) suspect() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.downAt.IsZero() && time.Since(h.downAt) < remember
}

func (h *TopicHealth) set(down bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if down {
		h.downAt = time.Now()
	} else {
		h.downAt = time.Time{}
	}
}

// newOutbox starts the publishing workers. Publishes are attempted until
// publishBy, and events kept until keepBy.
func newOutbox(ctx context.Context, pub Publisher, ledger Ledger, lcall *caller, source string, log zerolog.Logger, publishBy, keepBy time.Time, health *TopicHealth) *outbox {
	o := &outbox{pub: pub, ledger: ledger, lcall: lcall, source: source, log: log, health: health}
	base := context.WithoutCancel(ctx)
	o.publishCtx, o.cancelPublish = context.WithDeadline(base, publishBy)
	o.keepCtx, o.cancelKeep = context.WithDeadline(base, keepBy)
	o.wake = sync.NewCond(&o.mu)
	if pub == nil {
		return o
	}
	for range publishWorkers {
		o.workers.Add(1)
		go o.work()
	}
	o.keeper.Add(1)
	go o.keepLoop()
	return o
}

// add queues an event. Without a publisher (no OUTCOME_TOPIC) it does
// nothing: the run's first log line says events are off.
func (o *outbox) add(ev events.CloudEvent) {
	if o.pub == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		// A late event (a bug) must not be lost: keep it as if the topic
		// were down.
		o.keep = append(o.keep, ev)
	} else {
		o.queue = append(o.queue, outgoing{ev: ev})
	}
	o.wake.Broadcast()
}

// work publishes queued events until the outbox is finished and empty. A
// panic in a publisher loses no event: the one in hand is kept, and the
// worker goes on.
func (o *outbox) work() {
	defer o.workers.Done()
	for {
		item, ok := o.next()
		if !ok {
			return
		}
		o.safely(item, func() { o.send(item) })
		o.mu.Lock()
		o.busy--
		o.wake.Broadcast()
		o.mu.Unlock()
	}
}

// safely runs f for an item, keeping the item when f panics.
func (o *outbox) safely(item outgoing, f func()) {
	defer func() {
		if p := recover(); p != nil {
			o.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("eventId", item.ev.ID).
				Msg("publishing aborted by a panic; the event is kept")
			o.giveUp(item, fmt.Errorf("internal error: %v", p))
		}
	}()
	f()
}

func (o *outbox) next() (outgoing, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.queue) == 0 && !o.closed || len(o.queue) > 0 && o.queue[0].barrier && o.busy > 0 {
		o.wake.Wait()
	}
	if len(o.queue) == 0 {
		return outgoing{}, false
	}
	item := o.queue[0]
	o.queue = o.queue[1:]
	o.busy++
	return item, true
}

func (o *outbox) isDown() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

// send publishes one event, retrying temporary failures while the topic is
// not known to be down.
func (o *outbox) send(item outgoing) {
	if err := o.isDown(); err != nil {
		o.giveUp(item, err)
		return
	}
	b := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 2 * time.Second}
	_, err := backoff.Retry(o.publishCtx, func() (struct{}, error) {
		if err := o.isDown(); err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		err := o.pub.Publish(o.publishCtx, item.ev)
		o.attempted(err)
		var t Temporary
		if err != nil && !(errors.As(err, &t) && t.Temporary()) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(0))
	if err == nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		if item.key != "" {
			o.stats.Republished++
			o.drained = append(o.drained, item.key)
		} else {
			o.stats.Published++
		}
		if !o.closing {
			o.startDrain()
		}
		return
	}
	o.giveUp(item, err)
}

// attempted counts failed attempts in a row: many of them, whatever the
// events, mean the topic is down; one, when it failed for a run of this
// instance a moment ago.
func (o *outbox) attempted(err error) {
	suspect := err != nil && o.health.suspect()
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.failures = 0
		o.health.set(false)
		return
	}
	o.failures++
	if (o.failures >= downAfter || suspect) && o.down == nil {
		o.down = fmt.Errorf("%d publish attempts in a row failed, the last: %w", o.failures, err)
		o.health.set(true)
		o.wake.Broadcast()
		o.log.Error().Err(o.down).Msg("outcome topic failing: the run's remaining events are kept for a later run")
	}
}

// giveUp hands an event that was not published to the keeper. An event an
// earlier run kept is still kept: nothing to do.
func (o *outbox) giveUp(item outgoing, cause error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.stats.Errors) < 20 {
		o.stats.Errors = append(o.stats.Errors, fmt.Sprintf("%s %s: %v", item.ev.Type, item.ev.ID, cause))
	}
	if item.key != "" {
		return
	}
	o.keep = append(o.keep, item.ev)
	o.wake.Broadcast()
}

// keepLoop writes the events handed to it into the ledger, as many at once
// as have gathered, until the outbox is finished.
func (o *outbox) keepLoop() {
	defer o.keeper.Done()
	for {
		o.mu.Lock()
		for len(o.keep) == 0 && !o.final {
			o.wake.Wait()
		}
		if len(o.keep) == 0 {
			o.mu.Unlock()
			return
		}
		batch := o.keep
		o.keep = nil
		o.keeping = true
		o.mu.Unlock()

		kept := o.keepAll(batch)

		o.mu.Lock()
		o.keeping = false
		if kept {
			o.stats.Kept += len(batch)
		} else {
			o.stats.Failed += len(batch)
		}
		o.wake.Broadcast()
		o.mu.Unlock()
	}
}

// keepAll keeps events in the ledger, or, without one or when it fails, writes
// each whole into a log line, so nothing is lost in silence.
func (o *outbox) keepAll(evs []events.CloudEvent) (kept bool) {
	var err error
	if o.ledger != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("internal error: %v", p)
				}
			}()
			_, err = retrying(o.keepCtx, o.lcall, func(ctx context.Context) (struct{}, error) {
				return struct{}{}, o.ledger.KeepEvents(ctx, evs)
			})
		}()
		if err == nil {
			o.log.Warn().Int("events", len(evs)).Msg("events kept in the ledger; a later sweep publishes them")
			return true
		}
	} else {
		err = errors.New("no ledger to keep it in")
	}
	for _, ev := range evs {
		body, _ := json.Marshal(ev)
		o.log.Error().RawJSON("event", body).Str("eventId", ev.ID).AnErr("cause", err).
			Msg("outcome event not published nor kept: the event is whole in this line")
	}
	return false
}

// finish waits until every queued event is published or kept, then sends
// run.completed, built by completed from what became of the others, and
// returns the tally of all of them.
func (o *outbox) finish(completed func(events.Publishing) events.CloudEvent) events.Publishing {
	if o.pub == nil {
		return events.Publishing{}
	}
	// Every event so far attempted: then it is known whether the topic is
	// up, and a drain not started yet by a success may start now.
	o.mu.Lock()
	for len(o.queue) > 0 || o.busy > 0 {
		if o.down != nil {
			// Nothing more goes out: end the attempts still waiting on a
			// topic that does not answer, and keep their events now.
			o.cancelPublish()
		}
		o.wake.Wait()
	}
	o.closing = true
	if o.down == nil && o.stats.Published > 0 {
		o.startDrain()
	}
	o.mu.Unlock()
	o.draining.Wait() // a drain under way has queued what it read

	o.mu.Lock()
	o.closed = true
	if o.down != nil {
		o.cancelPublish()
	}
	o.wake.Broadcast()
	o.mu.Unlock()
	o.workers.Wait()

	// Once the others are kept, so that run.completed is kept after them.
	o.mu.Lock()
	for len(o.keep) > 0 || o.keeping {
		o.wake.Wait()
	}
	last := outgoing{ev: completed(o.tally())}
	o.mu.Unlock()
	o.safely(last, func() { o.send(last) })

	o.mu.Lock()
	o.final = true
	o.wake.Broadcast()
	o.mu.Unlock()
	o.keeper.Wait()
	o.cancelPublish()
	o.release()
	o.cancelKeep()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tally()
}

func (o *outbox) tally() events.Publishing {
	t := o.stats
	t.Errors = append([]string(nil), t.Errors...)
	return t
}

// The outbox's kept events are published by sweeps, one run at a time: the
// run that holds the drain lease (a ledger document) until its deadline.
const drainDoc = "lease#outbox"

type drainLease struct {
	RunID string    `json:"runId"`
	Until time.Time `json:"until"`
	rev   int64
}

// drainPlan is what a sweep's outbox needs to publish the events earlier
// runs kept: its run, and when its lease would end should it die with it.
type drainPlan struct {
	runID      string
	now, until time.Time
}

// drainOnceUp arranges for the events earlier runs kept to be published
// once this run has published one of its own: a run that finds the topic
// down reads none of them.
func (o *outbox) drainOnceUp(runID string, now, until time.Time) {
	if o.pub == nil || o.ledger == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainPlan = &drainPlan{runID: runID, now: now, until: until}
}

// startDrain starts the planned drain, once; o.mu is held.
func (o *outbox) startDrain() {
	p := o.drainPlan
	if p == nil {
		return
	}
	o.drainPlan = nil
	o.draining.Add(1)
	go func() {
		defer o.draining.Done()
		defer func() {
			if p := recover(); p != nil {
				o.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).
					Msg("publishing kept events aborted by a panic; they stay kept")
			}
		}()
		o.drain(p)
	}()
}

// drain queues the events earlier runs kept, oldest first, unless another
// run is publishing them.
func (o *outbox) drain(p *drainPlan) {
	ctx, runID, now, until := o.publishCtx, p.runID, p.now, p.until
	kept, err := retrying(ctx, o.lcall, func(ctx context.Context) ([]KeptEvent, error) { return o.ledger.KeptEvents(ctx, drainMax) })
	if err != nil {
		o.log.Warn().Err(err).Msg("kept events not read; a later sweep publishes them")
		return
	}
	if len(kept) == 0 {
		return
	}
	d, found, err := getDoc(ctx, o.ledger, o.lcall, drainDoc)
	if err != nil {
		o.log.Warn().Err(err).Msg("kept events not published: the drain lease cannot be read")
		return
	}
	var current drainLease
	if found {
		if current, err = decodeLease(d.Body); err != nil {
			o.log.Warn().Err(err).Msg("the drain lease is unreadable; taking it")
		}
	}
	if found && current.RunID != runID && now.Before(current.Until) {
		o.log.Info().Int("kept", len(kept)).Str("by", current.RunID).Msg("kept events are being published by another run")
		return
	}
	lease := drainLease{RunID: runID, Until: until, rev: d.Rev + 1}
	body, _ := json.Marshal(lease)
	if err := putDoc(ctx, o.ledger, o.lcall, Doc{ID: drainDoc, Rev: lease.rev, Body: body}); err != nil {
		o.log.Info().Err(err).Msg("kept events not published by this run: another took the drain lease")
		return
	}
	o.log.Info().Int("kept", len(kept)).Msg("publishing the events earlier runs kept")
	items := make([]outgoing, len(kept))
	for i, k := range kept {
		items[i] = outgoing{ev: k.Event, key: k.Key, barrier: k.Event.Type == events.RunCompletedType}
	}
	o.mu.Lock()
	o.lease = &lease
	o.queue = append(o.queue, items...)
	o.wake.Broadcast()
	o.mu.Unlock()
}

// release deletes the kept events this run published and gives the drain
// lease back.
func (o *outbox) release() {
	o.mu.Lock()
	lease, drained := o.lease, o.drained
	o.mu.Unlock()
	if lease == nil {
		return
	}
	if len(drained) > 0 {
		if _, err := retrying(o.keepCtx, o.lcall, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, o.ledger.DropEvents(ctx, drained)
		}); err != nil {
			// Published, still kept: the next drain publishes them once
			// more, with the same ids.
			o.log.Warn().Err(err).Int("events", len(drained)).Msg("published kept events not deleted; they will be published again")
		}
	}
	body, _ := json.Marshal(drainLease{RunID: lease.RunID})
	if err := putDoc(o.keepCtx, o.ledger, o.lcall, Doc{ID: drainDoc, Rev: lease.rev + 1, Body: body}); err != nil {
		o.log.Warn().Err(err).Msg("drain lease not released; it ends by itself")
	}
}

// decodeLease reads the drain lease.
func decodeLease(body []byte) (drainLease, error) {
	var l drainLease
	if err := json.Unmarshal(body, &l); err != nil {
		return drainLease{}, fmt.Errorf("drain lease: %w", err)
	}
	return l, nil
}
