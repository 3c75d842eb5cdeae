package otssim

import (
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/chaos"
)

// FaultKind is a failure the emulator can inject into a call.
//
// What the v1.7.17 SDK does with each, with its default retry policy (see
// the package documentation): ServerBusy is retried for every action;
// InternalServerError, Timeout and BadGateway only for the idempotent reads
// (GetRow, GetRange, BatchGetRow, DescribeTable, ListTable); Drop and
// LostReply surface as an EOF, which it retries after 1 ms for every
// action, writes included. A kind not listed here has no effect.
type FaultKind string

// The kinds of fault.
const (
	ServerBusy          FaultKind = "ServerBusy"          // 503 OTSServerBusy; the call has no effect
	InternalServerError FaultKind = "InternalServerError" // 500 OTSInternalServerError; no effect
	// Timeout answers 503 OTSTimeout without running the call. (On the real
	// service a write that timed out may or may not have been applied: use
	// LostReply for that.)
	Timeout    FaultKind = "Timeout"
	BadGateway FaultKind = "BadGateway" // 502 with an HTML body, as a load balancer answers; no effect
	Drop       FaultKind = "Drop"       // the connection closes without an answer before the call runs
	LostReply  FaultKind = "LostReply"  // the call runs, then the connection closes without an answer
	SlowReply  FaultKind = "SlowReply"  // the call runs; the answer comes Faults.SlowDelay later
)

// Faults says which calls fail, and how.
//
// Whether a call fails is decided from a hash of (Seed, action, the table
// and primary key it names, the call's number among the calls of that
// action on that key), so the same seed fails the same calls whatever the
// goroutines' interleaving, as long as each key is used by one goroutine.
type Faults struct {
	Seed uint64
	// Rate is the share of calls that fail, from 0 (none) to 1 (all).
	Rate float64
	// Kinds are drawn from evenly; default ServerBusy, InternalServerError
	// and Timeout.
	Kinds []FaultKind
	// Actions limits the faults to these actions ("PutRow", …); default all.
	Actions []string
	// SlowDelay is how long a SlowReply waits; default 2 s.
	SlowDelay time.Duration
}

var defaultKinds = []FaultKind{ServerBusy, InternalServerError, Timeout}

func (f Faults) clone() Faults {
	f.Kinds = slices.Clone(f.Kinds)
	f.Actions = slices.Clone(f.Actions)
	return f
}

// pick returns the fault for the n-th call (from 1) of action on key, or "".
func (f Faults) pick(action, key string, n int) FaultKind {
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		return ""
	}
	fails, x := chaos.Roll(f.Seed, f.Rate, action, key, n)
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

// scriptedFault fails the next n calls of an action.
type scriptedFault struct {
	action string // "" matches every action
	n      int
	kind   FaultKind
}

// FailNext makes the next n calls of action ("" for any) fail with kind,
// before any random fault. Scripted faults are used up in the order they
// were added. Calls refused earlier (authentication, malformed requests) do
// not use them up.
func (s *Server) FailNext(action string, n int, kind FaultKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 {
		s.scripted = append(s.scripted, scriptedFault{action: action, n: n, kind: kind})
	}
}

// SetFaults replaces the random faults from the next call on. The call
// numbers that faults are decided from keep counting.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f.clone()
}

// pickFault decides the fault of one call; "" means none.
func (s *Server) pickFault(action, key string) (FaultKind, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.scripted {
		if sf := &s.scripted[i]; sf.action == "" || sf.action == action {
			sf.n--
			kind := sf.kind
			if sf.n == 0 {
				s.scripted = slices.Delete(s.scripted, i, i+1)
			}
			return kind, s.faults.slowDelay()
		}
	}
	k := [2]string{action, key}
	s.faultSeq[k]++
	return s.faults.pick(action, key, s.faultSeq[k]), s.faults.slowDelay()
}

var faultErrors = map[FaultKind]*otsError{
	ServerBusy:          errServerBusy,
	InternalServerError: errInternal,
	Timeout:             errTimeout,
}
