package handler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"
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

// pace is an instance's SAG rate limit: qps calls a second of each action,
// shared by every run the process serves, so back-to-back invocations on a
// warm instance keep to the rate as one run does.
type pace struct {
	qps    float64
	limits [actions]*rate.Limiter
}

func newPace(qps float64) *pace {
	p := &pace{qps: qps}
	for a := range p.limits {
		p.limits[a] = rate.NewLimiter(rate.Limit(qps), burst(qps))
	}
	return p
}

// caller makes the calls of a run to one service: the instance's rate limit
// (SAG only), retries with exponential backoff and jitter, no call started
// after stopAt, and none still running at endAt (the SDKs take no context, so
// adapters turn the context's deadline into the request timeout).
type caller struct {
	pace     *pace // nil: no rate limit
	stopAt   time.Time
	endAt    time.Time
	maxTries uint
	initial  time.Duration
	maxWait  time.Duration

	calls, retries, throttles atomic.Int64
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

// burst is how many calls may start at once: a tenth of a second's worth,
// so a small run (a verify request, an operator's invoke) does not wait out
// the spacing between its first few calls, while no second sees more than
// 110% of the rate. The service's flow control counts calls a second.
func burst(qps float64) int {
	return max(1, int(qps/10))
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

// readSAG runs an idempotent SAG call of action a, retrying transient and
// throttled failures.
func readSAG[T any](ctx context.Context, c *caller, a action, op func(context.Context) (T, error)) (T, error) {
	return retry(ctx, c, c.limit(a), op, func(err error) bool {
		k := classify(err)
		return k == transient || k == throttled
	})
}

// updateSAG runs UpdateSmartAccessGatewayVersion, which is not idempotent: it is
// retried only when the service certainly did not act on the call (flow
// control refused it, or it was never sent). Any other failure may hide an
// upgrade that started, so the caller re-reads the device instead.
func (c *caller) updateSAG(ctx context.Context, op func(context.Context) (string, error)) (string, error) {
	return retry(ctx, c, c.limit(requestUpgrade), op, func(err error) bool {
		var ae *APIError
		return classify(err) == throttled || errors.As(err, &ae) && ae.NotSent
	})
}

// limit is action a's rate limit, or nil.
func (c *caller) limit(a action) *rate.Limiter {
	if c.pace == nil {
		return nil
	}
	return c.pace.limits[a]
}

func retry[T any](ctx context.Context, c *caller, limit *rate.Limiter, op func(context.Context) (T, error), retryable func(error) bool) (T, error) {
	waitCtx, cancelWait := context.WithDeadline(ctx, c.stopAt)
	defer cancelWait()
	callCtx, cancelCall := context.WithDeadline(ctx, c.endAt)
	defer cancelCall()
	tries := 0
	res, err := backoff.Retry(waitCtx, func() (T, error) {
		var zero T
		if limit != nil {
			if err := limit.Wait(waitCtx); err != nil {
				return zero, backoff.Permanent(errDeadline)
			}
		}
		if tries++; tries > 1 {
			c.retries.Add(1)
		}
		c.calls.Add(1)
		res, err := op(callCtx)
		if err == nil {
			return res, nil
		}
		if classify(err) == throttled {
			c.throttles.Add(1)
		}
		if !retryable(err) {
			return zero, backoff.Permanent(err)
		}
		return zero, err
	}, backoff.WithBackOff(c.backoff()), backoff.WithMaxTries(c.maxTries), backoff.WithMaxElapsedTime(0))
	if err != nil && waitCtx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return res, errDeadline
	}
	return res, err
}
