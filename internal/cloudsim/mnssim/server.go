// Package mnssim emulates Alibaba Cloud MNS (Simple Message Queue) over HTTP,
// faithfully enough for the real aliyun-mns-go-sdk v1.0.11 to talk to it:
// queues with delays, visibility timeouts, receipt handles and long polling,
// topics that fan out to queues and to Go callbacks shaped like FC MNS topic
// triggers, request signing and STS tokens, and seeded fault injection.
//
// Point the SDK at an httptest server running a Server with the endpoint
// srv.URL + "/." (the SDK insists on five dot-separated pieces).
//
// Message times (enqueue, delay, visibility, retention) follow Options.Clock,
// so tests advance a clock.Sim instead of sleeping. The Date header check
// follows Options.Wall, because the SDK signs with the machine's time.
package mnssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
)

// apiVersion is the only x-mns-version the service speaks.
const apiVersion = "2015-06-06"

// maxRequestBody bounds what the emulator reads: a full 16-message batch of
// 64 KB bodies, XML-escaped, stays far below it.
const maxRequestBody = 4 << 20

// Options configure a Server.
type Options struct {
	// Keyring holds the access keys and STS credentials that may call. Required.
	Keyring *auth.Keyring
	// Clock drives enqueue times, delays, visibility and retention. Default clock.Real{}.
	Clock clock.Clock
	// Wall is the machine time the Date header is checked against (±15 min).
	// Default time.Now. Never a simulated clock: the SDK signs with real time.
	Wall func() time.Time
	// AccountID and Region appear in HostId, ARNs and topic notifications.
	// Defaults "1234567890123456" and "cn-shanghai".
	AccountID string
	Region    string
	// MaxPollWait caps the real time a long poll waits, so tests stay fast
	// even when the client asks for 30 s. Default 30 s.
	MaxPollWait time.Duration
	// Faults are injected from the start; see SetFaults and FailNext.
	Faults Faults
}

// Server is the emulator. It is an http.Handler and safe for concurrent use.
type Server struct {
	keyring     *auth.Keyring
	clock       clock.Clock
	wall        func() time.Time
	accountID   string
	region      string
	maxPollWait time.Duration
	idPrefix    string // makes message ids of different servers differ

	requestSeq atomic.Uint64

	mu       sync.Mutex
	queues   map[string]*queue
	topics   map[string]*topic
	seq      uint64 // last message sequence number, shared by all queues
	calls    map[string]int
	failures map[string]int
	faults   faultState

	inflight int        // callback deliveries running
	idle     *sync.Cond // signalled when inflight drops to zero
}

// New returns an emulator with no queues or topics.
func New(opts Options) *Server {
	if opts.Keyring == nil {
		panic("mnssim: Options.Keyring is required")
	}
	s := &Server{
		keyring:     opts.Keyring,
		clock:       opts.Clock,
		wall:        opts.Wall,
		accountID:   opts.AccountID,
		region:      opts.Region,
		maxPollWait: opts.MaxPollWait,
		idPrefix:    strings.ToUpper(randomHex(8)),
		queues:      map[string]*queue{},
		topics:      map[string]*topic{},
		calls:       map[string]int{},
		failures:    map[string]int{},
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.wall == nil {
		s.wall = time.Now
	}
	if s.accountID == "" {
		s.accountID = "1234567890123456"
	}
	if s.region == "" {
		s.region = "cn-shanghai"
	}
	if s.maxPollWait <= 0 {
		s.maxPollWait = 30 * time.Second
	}
	s.idle = sync.NewCond(&s.mu)
	s.faults.set(opts.Faults)
	return s
}

// QueueARN is the resource name of a queue, as EventBridge and topic
// subscriptions name it: acs:mns:<region>:<account>:queues/<name>.
func (s *Server) QueueARN(name string) string {
	return fmt.Sprintf("acs:mns:%s:%s:queues/%s", s.region, s.accountID, name)
}

// hostID is what MNS puts in the HostId of error bodies: the endpoint.
func (s *Server) hostID() string {
	return fmt.Sprintf("http://%s.mns.%s.aliyuncs.com", s.accountID, s.region)
}

// request is one parsed call.
type request struct {
	http  *http.Request
	op    string // operation name, as counted in Calls
	name  string // queue or topic name
	body  []byte
	query map[string]string // query parameters, keys lower-cased
}

// param returns a query parameter by its case-insensitive name.
func (r *request) param(name string) (string, bool) {
	v, ok := r.query[strings.ToLower(name)]
	return v, ok
}

// reply is what an operation answers: an XML body with a status, or an error.
type reply struct {
	status int
	body   any // marshalled as XML; nil means no body
	err    *apiError
	// failedEntries lists the error codes of a partially failed batch.
	failedEntries []string
}

func ok(status int, body any) reply { return reply{status: status, body: body} }
func fail(err *apiError) reply      { return reply{err: err} }

// ServeHTTP runs the request pipeline: parse, count, authenticate, inject
// faults, execute, answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	requestID := s.newRequestID()
	w.Header().Set("x-mns-request-id", requestID)
	w.Header().Set("x-mns-version", apiVersion)

	body, err := io.ReadAll(io.LimitReader(hr.Body, maxRequestBody+1))
	if err != nil {
		return // the client went away mid-body; nobody is listening
	}
	req, routeErr := route(hr, body)
	s.countCall(req.op)

	rep := reply{err: routeErr}
	if len(body) > maxRequestBody {
		rep.err = errInvalidArgument("The request body is too large.")
	}
	if rep.err == nil {
		rep.err = s.authenticate(hr, body)
	}
	if rep.err != nil {
		s.writeReply(w, requestID, rep)
		return
	}

	fault := s.pickFault(req.op)
	switch fault {
	case 0, FaultDropAfterCommit:
	case FaultBadGateway:
		s.countFailure(fault.String())
		writeBadGateway(w)
		return
	case FaultDrop:
		s.countFailure(fault.String())
		dropConnection(w, "")
		return
	case FaultCutResponse:
		s.countFailure(fault.String())
		dropConnection(w, "HTTP/1.1 50")
		return
	default:
		s.writeReply(w, requestID, fail(fault.apiError()))
		return
	}

	rep = s.execute(req)
	if fault == FaultDropAfterCommit {
		s.countFailure(fault.String())
		dropConnection(w, "")
		return
	}
	s.writeReply(w, requestID, rep)
}

// execute runs the operation the request names.
func (s *Server) execute(r *request) reply {
	switch r.op {
	case opSendMessage:
		return s.sendMessage(r)
	case opBatchSendMessage:
		return s.batchSendMessage(r)
	case opReceiveMessage, opBatchReceiveMessage, opPeekMessage, opBatchPeekMessage:
		return s.receiveMessages(r)
	case opDeleteMessage:
		return s.deleteMessage(r)
	case opBatchDeleteMessage:
		return s.batchDeleteMessage(r)
	case opChangeMessageVisibility:
		return s.changeVisibility(r)
	case opCreateQueue:
		return s.createQueueHTTP(r)
	case opPublishMessage:
		return s.publishMessage(r)
	}
	return fail(errInvalidRequestURL(r.http))
}

// Operation names, as counted by Calls and matched by Faults.Ops.
const (
	opSendMessage             = "SendMessage"
	opBatchSendMessage        = "BatchSendMessage"
	opReceiveMessage          = "ReceiveMessage"
	opBatchReceiveMessage     = "BatchReceiveMessage"
	opPeekMessage             = "PeekMessage"
	opBatchPeekMessage        = "BatchPeekMessage"
	opDeleteMessage           = "DeleteMessage"
	opBatchDeleteMessage      = "BatchDeleteMessage"
	opChangeMessageVisibility = "ChangeMessageVisibility"
	opCreateQueue             = "CreateQueue"
	opPublishMessage          = "PublishMessage"
	opUnknown                 = "Unknown"
)

// route names the operation from the method, path, query and, for a send,
// the root element of the body (one path serves single and batch sends).
func route(hr *http.Request, body []byte) (*request, *apiError) {
	req := &request{http: hr, op: opUnknown, body: body, query: map[string]string{}}
	for k, v := range hr.URL.Query() {
		req.query[strings.ToLower(k)] = v[0]
	}
	parts := strings.Split(strings.Trim(hr.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "queues" && hr.Method == http.MethodPut:
		req.op = opCreateQueue
	case len(parts) == 3 && parts[0] == "queues" && parts[2] == "messages":
		switch hr.Method {
		case http.MethodPost:
			req.op = opSendMessage
			if rootElement(body) == "Messages" {
				req.op = opBatchSendMessage
			}
		case http.MethodGet:
			_, batch := req.param("numOfMessages")
			peek, _ := req.param("peekonly")
			switch isPeek := strings.EqualFold(peek, "true"); {
			case batch && isPeek:
				req.op = opBatchPeekMessage
			case isPeek:
				req.op = opPeekMessage
			case batch:
				req.op = opBatchReceiveMessage
			default:
				req.op = opReceiveMessage
			}
		case http.MethodDelete:
			req.op = opBatchDeleteMessage
			if _, single := req.param("ReceiptHandle"); single {
				req.op = opDeleteMessage
			}
		case http.MethodPut:
			req.op = opChangeMessageVisibility
		}
	case len(parts) == 3 && parts[0] == "topics" && parts[2] == "messages" && hr.Method == http.MethodPost:
		req.op = opPublishMessage
	}
	if req.op == opUnknown {
		return req, errInvalidRequestURL(hr)
	}
	req.name = parts[1]
	return req, nil
}

// rootElement returns the local name of the first element of an XML body.
func rootElement(body []byte) string {
	d := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start.Name.Local
		}
	}
}

// writeReply answers in MNS's XML and updates the failure counters.
func (s *Server) writeReply(w http.ResponseWriter, requestID string, rep reply) {
	w.Header().Set("Content-Type", "text/xml;charset=utf-8")
	if rep.err != nil {
		s.countFailure(rep.err.code)
		w.WriteHeader(rep.err.status)
		writeXML(w, errorXML{Code: rep.err.code, Message: rep.err.message,
			RequestID: requestID, HostID: s.hostID()})
		return
	}
	for _, code := range rep.failedEntries {
		s.countFailure(code)
	}
	w.WriteHeader(rep.status)
	if rep.body != nil {
		writeXML(w, rep.body)
	}
}

func writeXML(w io.Writer, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		// Only our own response types reach here; they always marshal.
		out = []byte("<Error><Code>InternalError</Code></Error>")
	}
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(out)
}

// writeBadGateway imitates a load balancer in front of MNS failing: an HTML
// page the SDK cannot decode (ERR_UNMARSHAL_ERROR_RESPONSE_FAILED).
func writeBadGateway(w http.ResponseWriter) {
	w.Header().Del("x-mns-request-id")
	w.Header().Del("x-mns-version")
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"+
		"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")
}

// dropConnection writes partial (possibly nothing) and closes the
// connection without a complete answer.
func dropConnection(w http.ResponseWriter, partial string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot be hijacked; this is net/http's way to abort instead.
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = buf.WriteString(partial)
	_ = buf.Flush()
	_ = conn.Close()
}

func (s *Server) countCall(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *Server) countFailure(code string) {
	s.mu.Lock()
	s.failures[code]++
	s.mu.Unlock()
}

// newRequestID looks like MNS's: 24 upper-case hex digits, unique per server.
func (s *Server) newRequestID() string {
	return fmt.Sprintf("%s%08X", s.idPrefix, s.requestSeq.Add(1))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
