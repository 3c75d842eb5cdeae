package handler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Temporary is implemented by publisher errors that deserve a retry.
type Temporary interface{ Temporary() bool }

// outbox publishes a run's outcome events while the run goes on, so they are
// all out before the invocation returns (FC may freeze the instance right
// after the response). A failed publish is retried, then logged and counted
// in the report; it never stops the run.
type outbox struct {
	pub    Publisher
	source string
	log    zerolog.Logger
	ctx    context.Context
	queue  chan events.CloudEvent
	wg     sync.WaitGroup

	mu     sync.Mutex
	stats  events.Publishing
	closed bool
}

const publishWorkers = 4

// newOutbox starts the publishing workers. ctx bounds every publish: its
// deadline is the last moment an event may still go out.
func newOutbox(ctx context.Context, pub Publisher, source string, log zerolog.Logger) *outbox {
	o := &outbox{pub: pub, source: source, log: log, ctx: ctx, queue: make(chan events.CloudEvent, 1024)}
	if pub == nil {
		return o
	}
	for range publishWorkers {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			for ev := range o.queue {
				o.publish(ev)
			}
		}()
	}
	return o
}

// add queues an event. Without a publisher (no OUTCOME_TOPIC) it does nothing:
// the start line of the run says events are off.
func (o *outbox) add(ev events.CloudEvent) {
	if o.pub == nil {
		return
	}
	o.queue <- ev
}

func (o *outbox) publish(ev events.CloudEvent) {
	b := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 2 * time.Second}
	_, err := backoff.Retry(o.ctx, func() (struct{}, error) {
		err := o.pub.Publish(o.ctx, ev)
		var t Temporary
		if err != nil && !(errors.As(err, &t) && t.Temporary()) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(0))

	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.stats.Published++
		return
	}
	o.stats.Failed++
	msg := fmt.Sprintf("%s %s: %v", ev.Type, ev.ID, err)
	if len(o.stats.Errors) < 20 {
		o.stats.Errors = append(o.stats.Errors, msg)
	}
	o.log.Error().Str("eventId", ev.ID).Str("eventType", ev.Type).Str("subject", ev.Subject).Err(err).Msg("outcome event not published")
}

// close waits until every queued event is published or has failed, and
// returns the tally.
func (o *outbox) close() events.Publishing {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.queue)
	}
	o.mu.Unlock()
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}
