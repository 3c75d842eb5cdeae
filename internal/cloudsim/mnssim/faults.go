package mnssim

import (
	"net/http"
	"slices"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/chaos"
)

// FaultKind is a way a request can fail on purpose.
type FaultKind int

// Fault kinds. All but FaultDropAfterCommit fail before the operation runs,
// so a failed send stores nothing.
const (
	// FaultQpsLimitExceeded answers 400 QpsLimitExceeded (status per the
	// older MNS error table; ERR_MNS_QPS_LIMIT_EXCEEDED in the SDK).
	FaultQpsLimitExceeded FaultKind = iota + 1
	// FaultTooManyRequests answers 429 TooManyRequests, MNS's newer
	// flow-limiting answer (ERR_MNS_UNKNOWN_CODE in the SDK).
	FaultTooManyRequests
	// FaultInternalError answers 500 InternalError.
	FaultInternalError
	// FaultBadGateway answers 502 with an HTML page, as a load balancer
	// does (ERR_UNMARSHAL_ERROR_RESPONSE_FAILED in the SDK).
	FaultBadGateway
	// FaultDrop closes the connection without an answer. The SDK's fasthttp
	// (v1.56 on) resends only idempotent requests (GET, PUT, …) then, up to
	// 5 attempts in all; a POST such as SendMessage or PublishMessage fails
	// at once with ERR_SEND_REQUEST_FAILED ("the server closed connection
	// before returning the first response byte").
	FaultDrop
	// FaultCutResponse sends the first bytes of a status line and closes
	// the connection. fasthttp resends GET and PUT but not POST or DELETE:
	// one such fault on a send surfaces as ERR_SEND_REQUEST_FAILED.
	FaultCutResponse
	// FaultDropAfterCommit runs the operation (a send is stored) and then
	// closes the connection without an answer: the ambiguous failure behind
	// duplicate messages. fasthttp does not resend the POST (see FaultDrop),
	// so the caller sees a failed send of a message that was stored; a
	// caller that sends it again stores it twice.
	FaultDropAfterCommit
)

func (k FaultKind) String() string {
	switch k {
	case FaultQpsLimitExceeded:
		return "QpsLimitExceeded"
	case FaultTooManyRequests:
		return "TooManyRequests"
	case FaultInternalError:
		return "InternalError"
	case FaultBadGateway:
		return "BadGateway"
	case FaultDrop:
		return "Drop"
	case FaultCutResponse:
		return "CutResponse"
	case FaultDropAfterCommit:
		return "DropAfterCommit"
	}
	return "NoFault"
}

// apiError is the MNS error a kind answers with, for the kinds that answer.
func (k FaultKind) apiError() *apiError {
	switch k {
	case FaultQpsLimitExceeded:
		return &apiError{http.StatusBadRequest, "QpsLimitExceeded", "The QPS of the request exceeds the limit."}
	case FaultTooManyRequests:
		return &apiError{http.StatusTooManyRequests, "TooManyRequests", "The request is denied by cluster flow limiter for too many requests."}
	}
	return &apiError{http.StatusInternalServerError, "InternalError", "Interal error."}
}

// Faults fail a share of requests at random, reproducibly: whether the n-th
// request of an operation fails, and how, depends only on Seed, the
// operation and n.
type Faults struct {
	Seed  int64
	Rate  float64     // share of requests that fail, 0..1
	Kinds []FaultKind // picked from at random; empty means every kind that fails before running
	Ops   []string    // operations affected (names as in Calls); empty means all
}

// scriptedFault fails the next n requests of an operation.
type scriptedFault struct {
	op   string // "" matches every operation
	n    int
	kind FaultKind
}

type faultState struct {
	random   Faults
	counters map[string]uint64 // requests per operation since SetFaults
	scripted []scriptedFault
}

func (f *faultState) set(faults Faults) {
	f.random = faults
	f.counters = map[string]uint64{}
}

// SetFaults replaces the random faults and restarts their sequence.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.set(f)
}

// FailNext makes the next n requests of op (a name as in Calls; "" for any
// operation) fail with kind. Scripted faults come before random ones and
// are used up in the order they were added.
func (s *Server) FailNext(op string, n int, kind FaultKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.scripted = append(s.faults.scripted, scriptedFault{op: op, n: n, kind: kind})
}

var failBeforeRunning = []FaultKind{FaultQpsLimitExceeded, FaultTooManyRequests, FaultInternalError,
	FaultBadGateway, FaultDrop, FaultCutResponse}

// pickFault decides whether this request of op fails, and how; 0 means not.
func (s *Server) pickFault(op string) FaultKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	for i := range f.scripted {
		if sf := &f.scripted[i]; sf.n > 0 && (sf.op == "" || sf.op == op) {
			sf.n--
			kind := sf.kind
			if sf.n == 0 {
				f.scripted = slices.Delete(f.scripted, i, i+1)
			}
			return kind
		}
	}

	r := f.random
	if r.Rate <= 0 || (len(r.Ops) > 0 && !slices.Contains(r.Ops, op)) {
		return 0
	}
	f.counters[op]++
	fails, x := chaos.Roll(uint64(r.Seed), r.Rate, op, "", int(f.counters[op]))
	if !fails {
		return 0
	}
	kinds := r.Kinds
	if len(kinds) == 0 {
		kinds = failBeforeRunning
	}
	return kinds[x%uint64(len(kinds))]
}
