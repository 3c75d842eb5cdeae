package cloudsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

// DefaultAttempts is how often a Trigger delivers one message before it gives
// it up: the first delivery and s.yaml's MaximumRetryAttempts 3.
const DefaultAttempts = 4

// triggerPoll is how often Run looks at the queue while invocations run and a
// runtime is free: messages sent by a running invocation (the planner's
// batches, continuations) start soon after they arrive, as with EventBridge.
const triggerPoll = 5 * time.Millisecond

// Trigger emulates the function's EventBridge trigger on the work queue
// (s.yaml): it takes the queue's messages one at a time (CountBasedWindow 1)
// and hands each, as the CloudEvents payload the trigger sends, to one of
// Runtimes. Each runtime runs one invocation at a time, all of them in
// parallel, like that many FC instances.
//
// A message whose invocation fails (an error, a timeout, a crash) is
// delivered again, the same event with the same request id and the retry
// count counting up (s.yaml invokes asynchronously, so these are FC's
// asynchronous retries as much as EventBridge's), no sooner than RetryDelay
// later, up to Attempts deliveries; then it is given up (a dead letter).
//
// The simulated clock only moves when told to, and verify requests are
// delayed by simulated minutes. Run moves it: when no invocation runs and the
// queue holds only delayed messages, it sets the clock to the next one due at
// or before Until and goes on. Later ones stay on the queue. A zero Until
// never moves the clock, so a throughput benchmark measures the night's
// sweep and leaves its verify requests queued (TriggerStats.Left).
type Trigger struct {
	Cloud    *Cloud
	Queue    string // default WorkQueue
	Runtimes []*fcsim.Runtime

	Attempts   int           // deliveries of one message at most; default DefaultAttempts
	RetryDelay time.Duration // real time between a failed delivery and the next
	Until      time.Time     // simulated time up to which delayed messages are delivered

	// Kickoff, when set, is invoked first on Runtimes[0], as the timer
	// trigger would start a night; Run waits for it like for the queue's
	// work. It is not retried.
	Kickoff []byte
	// OnDispatch, when set, is called as every invocation starts (Result
	// and Finished unset), and OnDelivery after it ends; both from Run's
	// goroutine.
	OnDispatch func(Delivery)
	OnDelivery func(Delivery)
}

// Delivery is one invocation made by a Trigger.
type Delivery struct {
	Runtime   int    // index into Trigger.Runtimes
	Kickoff   bool   // the Kickoff invocation, not a queue message
	MessageID string // the MNS message id
	Body      string // the message body, base64 decoded when it was
	Payload   []byte // what the function was handed
	Attempt   int    // 1 for the first delivery
	Started   time.Time
	Finished  time.Time
	Result    fcsim.Result
	Err       error // the emulator's own error (fcsim), not the function's
}

// Failed reports whether the delivery calls for another.
func (d Delivery) Failed() bool { return d.Err != nil || d.Result.Failed }

// TriggerStats sums up a Run.
type TriggerStats struct {
	Messages     int // taken off the queue
	Invocations  int // every delivery, redeliveries and the Kickoff included
	Redeliveries int
	Failures     int        // invocations that failed (errors, timeouts, crashes)
	Crashes      int        // of those, processes that died
	DeadLetters  []Delivery // the last delivery of each message given up
	ClockMoves   int        // times Run moved the simulated clock
	Left         int        // messages left on the queue, due after Until
}

// pending is a message waiting for a (re)delivery.
type pending struct {
	id, body  string
	payload   []byte
	requestID string
	attempt   int
	notBefore time.Time
}

// Run delivers the queue's messages until the queue is empty (but for
// messages due after Until), no redelivery is waiting and every invocation
// has answered. It returns early only when ctx ends.
func (t *Trigger) Run(ctx context.Context) (TriggerStats, error) {
	var st TriggerStats
	if len(t.Runtimes) == 0 {
		return st, errors.New("cloudsim: Trigger has no runtimes")
	}
	queue := t.Queue
	if queue == "" {
		queue = WorkQueue
	}
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}

	done := make(chan Delivery)
	busy := make([]bool, len(t.Runtimes))
	inflight := 0
	var retries []pending
	invoke := func(i int, p pending, kickoff bool) {
		busy[i] = true
		inflight++
		st.Invocations++
		if p.attempt > 1 {
			st.Redeliveries++
		}
		d := Delivery{Runtime: i, Kickoff: kickoff, MessageID: p.id, Body: p.body, Payload: p.payload, Attempt: p.attempt, Started: time.Now()}
		if t.OnDispatch != nil {
			t.OnDispatch(d)
		}
		go func() {
			d.Result, d.Err = t.Runtimes[i].Invoke(ctx, p.payload, fcsim.InvokeOptions{RequestID: p.requestID, RetryCount: p.attempt - 1})
			d.Finished = time.Now()
			done <- d
		}()
	}
	// next returns the message for a free runtime: a redelivery that is due,
	// else the queue's next visible message.
	next := func() (pending, bool) {
		now := time.Now()
		for k, p := range retries {
			if !now.Before(p.notBefore) {
				retries = append(retries[:k], retries[k+1:]...)
				return p, true
			}
		}
		payload := t.Cloud.QueueBatch(queue, 1)
		if payload == nil {
			return pending{}, false
		}
		var batch []struct {
			Data struct {
				MessageID   string `json:"messageId"`
				MessageBody string `json:"messageBody"`
			} `json:"data"`
		}
		if err := json.Unmarshal(payload, &batch); err != nil || len(batch) != 1 {
			panic(fmt.Sprintf("cloudsim: QueueBatch gave %s", payload)) // a bug of QueueBatch, not of the function
		}
		st.Messages++
		return pending{id: batch[0].Data.MessageID, body: batch[0].Data.MessageBody, payload: payload,
			requestID: "evb-" + batch[0].Data.MessageID, attempt: 1}, true
	}

	if t.Kickoff != nil {
		invoke(0, pending{payload: t.Kickoff, attempt: 1}, true)
	}
	tick := time.NewTicker(triggerPoll)
	defer tick.Stop()
	for {
		if ctx.Err() != nil {
			for ; inflight > 0; inflight-- {
				<-done
			}
			return st, ctx.Err()
		}
		for i := range t.Runtimes {
			if busy[i] {
				continue
			}
			p, ok := next()
			if !ok {
				break
			}
			invoke(i, p, false)
		}
		if inflight == 0 && len(retries) == 0 {
			if at, ok := t.nextDue(queue); ok {
				t.Cloud.Clock.Set(at)
				st.ClockMoves++
				continue
			}
			st.Left = len(t.Cloud.MNS.Messages(queue))
			return st, nil
		}
		var d Delivery
		select {
		case d = <-done:
		case <-tick.C:
			continue
		}
		busy[d.Runtime] = false
		inflight--
		if d.Failed() {
			st.Failures++
			if d.Result.Crashed {
				st.Crashes++
			}
		}
		if t.OnDelivery != nil {
			t.OnDelivery(d)
		}
		switch {
		case !d.Failed() || d.Kickoff:
		case d.Attempt < attempts:
			retries = append(retries, pending{id: d.MessageID, body: d.Body, payload: d.Payload,
				requestID: d.Result.RequestID, attempt: d.Attempt + 1, notBefore: d.Finished.Add(t.RetryDelay)})
		default:
			st.DeadLetters = append(st.DeadLetters, d)
		}
	}
}

// nextDue returns when the next delayed message of the queue shows, if that
// is at or before Until.
func (t *Trigger) nextDue(queue string) (time.Time, bool) {
	var at time.Time
	for _, m := range t.Cloud.MNS.Messages(queue) {
		if !m.Visible && (at.IsZero() || m.NextVisibleTime.Before(at)) {
			at = m.NextVisibleTime
		}
	}
	if at.IsZero() || at.After(t.Until) {
		return time.Time{}, false
	}
	return at, true
}
