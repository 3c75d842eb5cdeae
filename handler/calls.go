package handler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// errorClass says what to do about a failed API call.
type errorClass int

const (
	permanent errorClass = iota // the answer will not change: do not retry
	transient                   // a passing failure: retry with backoff
	throttled                   // flow control refused the call: retry with backoff
	laterRun                    // the device cannot take it now; a later run will try again
)

// Codes of DESIGN.md's retry table.
var (
	transientCodes = []string{"ServiceUnavailable", "InternalError", "InternalServerError", "UnknownError", "SignatureNonceUsed"}
	laterRunCodes  = []string{"SmartAccessGatewayNotOnline", "GetSmartAccessGatewayVersionError", "GetSmartAccessGatewayStateError"}
)

func classify(err error) errorClass {
	var ae *APIError
	if !errors.As(err, &ae) {
		return permanent
	}
	switch {
	case strings.HasPrefix(ae.Code, "Throttling"):
		return throttled
	case slices.Contains(transientCodes, ae.Code), ae.NoAnswer, ae.Code == "" && ae.Status >= 500:
		return transient
	case slices.Contains(laterRunCodes, ae.Code):
		return laterRun
	}
	return permanent
}

// errDeadline means the run's time to start calls is over.
var errDeadline = errors.New("no time left before the invocation's deadline")

// action is a SAG API action. The service's flow control counts each
// action's calls on its own, so the function paces each on its own too.
type action int

const (
	listGateways   action = iota // DescribeSmartAccessGateways
	readVersions                 // DescribeSmartAccessGatewayVersions
	readDevices                  // DescribeSmartAccessGatewayAttribute
	requestUpgrade               // UpdateSmartAccessGatewayVersion
	actions
)

// caller makes the calls of a run to one service: the instance's rate limit
// (SAG only), retries with exponential backoff and jitter, no call started
// after stopAt, and none still running at endAt (the SDKs take no context, so
// adapters turn the context's deadline into the request timeout).
type caller struct {
	pace     *pace // nil: no rate limit
	leads    bool  // the run starts the night: its new lanes start at the ceiling
	stopAt   time.Time
	endAt    time.Time
	maxTries uint
	initial  time.Duration
	maxWait  time.Duration

	calls, retries, throttles atomic.Int64
	// What throttles did to the pacing: rates cut, and bursts trimmed.
	cuts, trims atomic.Int64
}

func newCaller(p *pace, stopAt, endAt time.Time) *caller {
	return &caller{
		pace:     p,
		stopAt:   stopAt,
		endAt:    endAt,
		maxTries: 6,
		initial:  200 * time.Millisecond,
		maxWait:  5 * time.Second,
	}
}

// retrying runs a call to the ledger or the work queue: no rate limit (they
// are not the bottleneck), retries for errors that say they are temporary.
func retrying[T any](ctx context.Context, c *caller, op func(context.Context) (T, error)) (T, error) {
	return retry(ctx, c, nil, op, func(err error) bool {
		var t Temporary
		return errors.As(err, &t) && t.Temporary()
	})
}

func (c *caller) backoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     c.initial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         c.maxWait,
	}
}

// readSAG runs an idempotent SAG call of action a to a region's endpoint,
// retrying transient and throttled failures.
func readSAG[T any](ctx context.Context, c *caller, region string, a action, op func(context.Context) (T, error)) (T, error) {
	return retry(ctx, c, c.lane(region, a), op, func(err error) bool {
		k := classify(err)
		return k == transient || k == throttled
	})
}

// updateSAG runs UpdateSmartAccessGatewayVersion, which is not idempotent: it is
// retried only when the service certainly did not act on the call (flow
// control refused it, or it was never sent). Any other failure may hide an
// upgrade that started, so the caller re-reads the device instead.
func (c *caller) updateSAG(ctx context.Context, region string, op func(context.Context) (string, error)) (string, error) {
	return retry(ctx, c, c.lane(region, requestUpgrade), op, func(err error) bool {
		var ae *APIError
		return classify(err) == throttled || errors.As(err, &ae) && ae.NotSent
	})
}

// paceRetry is a throttle retried at the lane's next slot: backoff.Retry
// sees a RetryAfterError of no time, errors.As the throttle itself.
type paceRetry struct{ err error }

func (p paceRetry) Error() string { return p.err.Error() }
func (p paceRetry) Unwrap() error { return p.err }
func (p paceRetry) As(target any) bool {
	if ra, ok := target.(**backoff.RetryAfterError); ok {
		*ra = &backoff.RetryAfterError{}
		return true
	}
	return false
}

// lane is the pacing of action a toward a region's endpoint, or nil.
func (c *caller) lane(region string, a action) *lane {
	if c.pace == nil {
		return nil
	}
	return c.pace.laneFor(region, a, c.leads)
}

func retry[T any](ctx context.Context, c *caller, pacing *lane, op func(context.Context) (T, error), retryable func(error) bool) (T, error) {
	waitCtx, cancelWait := context.WithDeadline(ctx, c.stopAt)
	defer cancelWait()
	callCtx, cancelCall := context.WithDeadline(ctx, c.endAt)
	defer cancelCall()
	tries := 0
	res, err := backoff.Retry(waitCtx, func() (T, error) {
		var zero T
		var caughtUp bool
		if pacing != nil {
			var err error
			if caughtUp, err = pacing.wait(waitCtx); err != nil {
				return zero, backoff.Permanent(errDeadline)
			}
		}
		if tries++; tries > 1 {
			c.retries.Add(1)
		}
		c.calls.Add(1)
		res, err := op(callCtx)
		isThrottle := err != nil && classify(err) == throttled
		if pacing != nil {
			switch pacing.answeredCall(isThrottle, caughtUp) {
			case cutDown:
				c.cuts.Add(1)
			case trimmed:
				c.trims.Add(1)
			}
		}
		if err == nil {
			return res, nil
		}
		if isThrottle {
			c.throttles.Add(1)
		}
		if !retryable(err) {
			return zero, backoff.Permanent(err)
		}
		if isThrottle && tries == 1 {
			// The lane has just slowed (a cut, or a smaller catch-up):
			// the first retry waits for its next slot, not a backoff on
			// top of it, which would hold the whole chunk back.
			return zero, paceRetry{err}
		}
		return zero, err
	}, backoff.WithBackOff(c.backoff()), backoff.WithMaxTries(c.maxTries), backoff.WithMaxElapsedTime(0))
	if err != nil && waitCtx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return res, errDeadline
	}
	return res, err
}
