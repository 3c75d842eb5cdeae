// Package otssim emulates Alibaba Cloud Tablestore (OTS), the wide-column
// tables of one instance, closely enough that the official
// aliyun-tablestore-go-sdk v1.7.17, pointed at it over HTTP, cannot tell it
// from the service for the calls it serves: the signed protobuf protocol,
// PlainBuffer rows with their CRC-8 checksums, the table calls (CreateTable,
// DescribeTable, ListTable, DeleteTable) and the row calls (PutRow, GetRow,
// UpdateRow, DeleteRow, GetRange, BatchGetRow, BatchWriteRow) with row
// existence expectations, column conditions, filters, versions and the
// documented limits, answered with the service's error codes.
//
// A Server is an http.Handler:
//
//	sim := otssim.New(otssim.Options{Keyring: keys, Instance: "ledger"})
//	srv := httptest.NewServer(sim)
//	client := tablestore.NewClientWithConfig(srv.URL, "ledger", id, secret, token, cfg)
//
// Each call is handled in this order: protocol and credential checks,
// decoding, injected faults, per-action QPS limit, latency, then the action,
// atomically under one lock.
//
// # What is kept
//
// Each attribute column keeps its newest versions, up to the table's
// max_versions, with their timestamps in milliseconds (the Clock's time when
// the write gives none). PutRow replaces the whole row; UpdateRow changes
// the columns it names. A row exists from the write that creates it until
// DeleteRow, even with no attribute column left; an UpdateRow that only
// deletes columns of a missing row creates nothing. TTL is described but
// never expires data. Streams, secondary indexes, transactions, atomic
// batches, row tokens and value transfer rules are not emulated: requests
// that ask for them are refused with OTSParameterInvalid "otssim does not
// emulate …". Other actions (UpdateTable, search, SQL, time series, …) are
// answered as unknown: 400 OTSParameterInvalid "Unsupported operation".
//
// # The SDK's own retries (v1.7.17)
//
// The client retries by itself: up to TableStoreConfig.RetryTimes retries
// (default 10, so 11 attempts), none once MaxRetryTime (default 5 s) has
// passed since the call began, sleeping last*2 + rand[1, DefaultRetryInterval)
// ms before each (DefaultRetryInterval 10 ms), capped at MaxRetryInterval
// (320 ms). It retries:
//   - for every action: OTSRowOperationConflict, OTSNotEnoughCapacityUnit,
//     OTSTableNotReady, OTSPartitionUnavailable, OTSServerBusy,
//     OTSStorageServerBusy, and OTSQuotaExhausted with the message
//     "Too frequent table operations.";
//   - for idempotent actions only (GetRow, GetRange, BatchGetRow,
//     DescribeTable, ListTable and other reads): OTSTimeout,
//     OTSInternalServerError, OTSServerUnavailable, which is also what it
//     calls any non-protobuf 5xx answer;
//   - network errors, for every action including writes: an EOF or a reset
//     connection after 1 ms, a refused connection or a temporary net.Error
//     (a client timeout) with backoff;
//   - BatchGetRow and BatchWriteRow whose failed rows all have codes it
//     would retry: it resends those rows only and merges the results; when
//     it gives up, the call returns the partial failure without an error.
//
// So a write whose reply was lost is sent again: an EXPECT_NOT_EXIST
// PutRow then comes back OTSConditionCheckFail although it succeeded. Set
// RetryTimes to 0 to see every error (start from
// tablestore.NewDefaultTableStoreConfig(): a zero HTTPTimeout means none).
// A client.CustomizedRetryFunc only adds to the default policy unless
// client.KeepDefaultRetryStrategyWhileUsingCustomizedRetryFunc is set to
// false, and it never sees network errors.
package otssim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/protobuf/proto"
	"golang.org/x/time/rate"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/chaos"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
)

// Options configure a Server. Only Keyring is required.
type Options struct {
	// Keyring holds the credentials the server accepts.
	Keyring *auth.Keyring
	// Instance is the instance name requests must carry; default "otssim".
	Instance string
	// Clock gives cell timestamps and auto-increment values. Default clock.Real{}.
	Clock clock.Clock
	// Wall is the time x-ots-date is checked against (±15 min). The SDK
	// signs with the machine's time, so this is never a simulated clock.
	// Default time.Now.
	Wall func() time.Time
	// Latency is slept in real time by every call that reaches its action.
	Latency time.Duration
	// QPS limits each action to so many calls a second (real time), by
	// action name; DefaultQPS applies to the others. 0 = unlimited. Over the
	// limit, row calls answer 503 OTSServerBusy and table calls 403
	// OTSQuotaExhausted "Too frequent table operations.".
	QPS        map[string]float64
	DefaultQPS float64
	// Faults are injected failures; see SetFaults and FailNext.
	Faults Faults
}

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	keys     *auth.Keyring
	instance string
	clock    clock.Clock
	wall     func() time.Time
	latency  time.Duration
	limiters map[string]*rate.Limiter // read-only after New
	idPrefix string
	seq      atomic.Uint64

	mu        sync.Mutex // guards everything below
	tables    map[string]*table
	calls     map[string]int
	failures  map[string]int
	throttled int
	faults    Faults
	faultSeq  map[[2]string]int
	scripted  []scriptedFault
}

// New returns an emulator with no tables. It panics if opts.Keyring is nil:
// a programming error, not something a request can cause.
func New(opts Options) *Server {
	if opts.Keyring == nil {
		panic("otssim: Options.Keyring is required")
	}
	s := &Server{
		keys:     opts.Keyring,
		instance: opts.Instance,
		clock:    opts.Clock,
		wall:     opts.Wall,
		latency:  opts.Latency,
		limiters: map[string]*rate.Limiter{},
		idPrefix: randomHex(10),
		tables:   map[string]*table{},
		calls:    map[string]int{},
		failures: map[string]int{},
		faults:   opts.Faults.clone(),
		faultSeq: map[[2]string]int{},
	}
	if s.instance == "" {
		s.instance = "otssim"
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.wall == nil {
		s.wall = time.Now
	}
	for name := range actions {
		q, ok := opts.QPS[name]
		if !ok {
			q = opts.DefaultQPS
		}
		if q > 0 {
			s.limiters[name] = rate.NewLimiter(rate.Limit(q), max(1, int(q)))
		}
	}
	return s
}

// operation is a decoded call, ready to run.
type operation struct {
	// key names what the call touches (table and primary key) for the
	// fault decision.
	key string
	// run executes the call under s.mu at the Clock's now.
	run func(s *Server, now time.Time) (proto.Message, *otsError)
}

// actionSpec is one emulated action.
type actionSpec struct {
	table  bool // a table (DDL) operation, throttled with OTSQuotaExhausted
	decode func(body []byte) (*operation, *otsError)
}

// actions are the emulated actions by name, as in the request path.
var actions = map[string]actionSpec{
	"CreateTable":   {table: true, decode: decodeCreateTable},
	"DescribeTable": {table: true, decode: decodeDescribeTable},
	"ListTable":     {table: true, decode: decodeListTable},
	"DeleteTable":   {table: true, decode: decodeDeleteTable},
	"PutRow":        {decode: decodePutRow},
	"GetRow":        {decode: decodeGetRow},
	"UpdateRow":     {decode: decodeUpdateRow},
	"DeleteRow":     {decode: decodeDeleteRow},
	"GetRange":      {decode: decodeGetRange},
	"BatchGetRow":   {decode: decodeBatchGetRow},
	"BatchWriteRow": {decode: decodeBatchWriteRow},
}

// ServeHTTP answers one call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := s.newRequestID()
	name := strings.TrimPrefix(r.URL.Path, "/")
	spec, known := actions[name]
	if known {
		s.count(s.calls, name)
	} else {
		s.count(s.calls, "Unknown")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return // the client went away mid-body; nobody is listening
	}
	fail := func(cred *auth.Credential, e *otsError) {
		s.count(s.failures, e.code)
		out, _ := proto.Marshal(errorBody(e))
		s.answer(w, r, requestID, cred, e.status, out)
	}

	switch {
	case r.Method != http.MethodPost:
		fail(nil, errMethod)
		return
	case len(body) > maxRequestBody:
		fail(nil, errBodyTooLarge)
		return
	case !known:
		fail(nil, invalidParam("Unsupported operation: '%s'.", name))
		return
	}
	cred, e := s.authenticate(r, body)
	if e != nil {
		fail(nil, e)
		return
	}
	op, e := spec.decode(body)
	if e != nil {
		fail(&cred, e)
		return
	}

	fault, slowDelay := s.pickFault(name, op.key)
	switch fault {
	case ServerBusy, InternalServerError, Timeout:
		fail(&cred, faultErrors[fault])
		return
	case BadGateway:
		s.count(s.failures, string(fault))
		chaos.WriteBadGateway(w)
		return
	case Drop:
		if conn := chaos.Hijack(w); conn != nil {
			s.count(s.failures, string(fault))
			_ = conn.Close()
			return
		}
		fail(&cred, errServerBusy)
		return
	}

	// A throttled call is refused before it runs, so it never has an effect.
	if l := s.limiters[name]; l != nil && !l.Allow() {
		s.mu.Lock()
		s.throttled++
		s.mu.Unlock()
		if spec.table {
			fail(&cred, errTooFrequentDDL)
		} else {
			fail(&cred, errServerBusy)
		}
		return
	}
	// Like a real server, a client that gives up during the latency does
	// not cancel the call: it still runs, unseen.
	if s.latency > 0 {
		time.Sleep(s.latency)
	}

	s.mu.Lock()
	msg, e := op.run(s, s.clock.Now())
	s.mu.Unlock()

	switch fault {
	case LostReply:
		if conn := chaos.Hijack(w); conn != nil {
			s.count(s.failures, string(fault))
			_ = conn.Close()
			return
		}
	case SlowReply:
		s.count(s.failures, string(fault))
		time.Sleep(slowDelay)
	}
	if e != nil {
		fail(&cred, e)
		return
	}
	out, err := proto.Marshal(msg)
	if err != nil {
		// Only the emulator's own answers reach here; they always marshal.
		fail(&cred, &otsError{http.StatusInternalServerError, codeInternalServerError, "otssim: " + err.Error()})
		return
	}
	s.answer(w, r, requestID, &cred, http.StatusOK, out)
}

func (s *Server) count(m map[string]int, key string) {
	s.mu.Lock()
	m[key]++
	s.mu.Unlock()
}

// newRequestID looks like the service's, 8-4-4-4-12 hex digits: a random
// prefix per server and a sequence number.
func (s *Server) newRequestID() string {
	p := s.idPrefix
	return fmt.Sprintf("%s-%s-%s-%s-%012x", p[:8], p[8:12], p[12:16], p[16:20], s.seq.Add(1))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
