package sagsim

import (
	"net/http"
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/chaos"
)

// FaultKind is a failure the emulator can inject into a call.
type FaultKind string

// The kinds of fault.
const (
	InternalError      FaultKind = "InternalError"      // 500 with a JSON InternalError body; the call has no effect
	ServiceUnavailable FaultKind = "ServiceUnavailable" // 503 with a JSON ServiceUnavailable body; no effect
	BadGateway         FaultKind = "BadGateway"         // 502 with an HTML body, as a load balancer answers; no effect
	Drop               FaultKind = "Drop"               // the connection is closed without an answer, before the call runs
	LostReply          FaultKind = "LostReply"          // the call runs, then the connection is closed without an answer
	Slow               FaultKind = "Slow"               // the answer comes after Faults.SlowDelay, otherwise normal
)

// Faults says which calls fail, and how.
//
// Whether a call fails is decided from a hash of (Seed, Action, SmartAGId,
// the call's number among the calls with that Action and SmartAGId), so the
// same seed fails the same calls whatever the goroutines' interleaving.
type Faults struct {
	Seed uint64
	// Rate is the share of calls that fail, from 0 (none) to 1 (all).
	Rate float64
	// Kinds are drawn from evenly; default InternalError and ServiceUnavailable.
	// A kind not listed above is logged but has no effect.
	Kinds []FaultKind
	// Actions limits the faults to these actions; default every action.
	Actions []string
	// SlowDelay is how long a Slow answer waits; default 2 s.
	SlowDelay time.Duration
}

var defaultKinds = []FaultKind{InternalError, ServiceUnavailable}

// pick returns the fault for the n-th call (from 1) of action on id, or "".
func (f Faults) pick(action, id string, n int) FaultKind {
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		return ""
	}
	fails, x := chaos.Roll(f.Seed, f.Rate, action, id, n)
	if !fails {
		return ""
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = defaultKinds
	}
	return kinds[x%uint64(len(kinds))]
}

func (f Faults) slowDelay() time.Duration {
	if f.SlowDelay > 0 {
		return f.SlowDelay
	}
	return 2 * time.Second
}

var faultErrors = map[FaultKind]*apiError{
	InternalError:      {http.StatusInternalServerError, "InternalError", "The request processing has failed due to some unknown error, exception or failure."},
	ServiceUnavailable: {http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."},
}
