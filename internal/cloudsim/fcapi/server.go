package fcapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

// APIVersion is FC 3.0's OpenAPI version, the first segment of every path.
const APIVersion = "2023-03-30"

// Latest is the qualifier of an invocation that names none.
const Latest = "LATEST"

// ErrorTypeUnhandled is X-Fc-Error-Type for every error of a go1 function:
// FC documents HandledInvocationError only for Node.js callbacks. The
// function's own error type is the errorType field of the body.
const ErrorTypeUnhandled = "UnhandledInvocationError"

// Response and request headers.
const (
	hRequestID      = "X-Fc-Request-Id"
	hErrorType      = "X-Fc-Error-Type"
	hLogResult      = "X-Fc-Log-Result"
	hCodeChecksum   = "X-Fc-Code-Checksum"
	hInvocationType = "x-fc-invocation-type"
	hLogType        = "x-fc-log-type"
	hAsyncTaskID    = "x-fc-async-task-id"
)

const (
	// logResultBytes is how much of an invocation's log Tail returns ("the
	// last 4 KB of logs"), before base64.
	logResultBytes = 4 << 10
	// maxSyncPayload and maxAsyncPayload are FC's request body limits.
	// unverified: FC 2.0's documented 32 MB and 128 KB; FC 3.0's are taken
	// to be the same.
	maxSyncPayload  = 32 << 20
	maxAsyncPayload = 128 << 10
)

// Target runs a registered function. *fcsim.Runtime is one: the real
// function binary under the FC runtime API emulator. Invoke reports function
// failures in the Result; its error is for failures to run it at all.
type Target interface {
	Invoke(ctx context.Context, payload []byte, opts fcsim.InvokeOptions) (fcsim.Result, error)
}

// AsyncTarget is a Target with FC's async queue (retries, destinations), as
// *fcsim.Runtime has. An Async invocation of a plain Target runs Invoke once
// in the background.
type AsyncTarget interface {
	Target
	InvokeAsync(payload []byte, opts fcsim.InvokeOptions) string
}

// Function is one invocable (function name, qualifier) pair.
type Function struct {
	Name string
	// Qualifier is what callers name to reach Target: "" or "LATEST", a
	// version id ("3") or an alias ("prod").
	Qualifier string
	// VersionID is the version the qualifier resolves to, handed to the
	// function as x-fc-version-id (fccontext's Service.VersionId); "" sends
	// none, as for LATEST.
	VersionID string
	// CodeChecksum is X-Fc-Code-Checksum, the CRC-64 of the code package
	// (see CodeChecksum); "" leaves the header out.
	CodeChecksum string
	Target       Target
}

// Options configure a Server. Only Keyring is required.
type Options struct {
	// Keyring holds the credentials the server accepts (the cloud's).
	Keyring *auth.Keyring
	// AccountID owns the registered functions. When set, only credentials of
	// that account may invoke them (there are no cross-account grants here),
	// and a Host that names an account must name it. Empty: the caller's
	// account, whichever it is, owns them.
	AccountID string
	// Region is the region served. When set, a Host that names a region
	// must name it. Empty: any.
	Region string
	// Wall is the clock x-acs-date and the nonce window are judged by. The
	// SDK signs with the machine's time, so this is never a simulated clock.
	// Default time.Now.
	Wall func() time.Time
}

// Call is the record of one request, whatever its outcome.
type Call struct {
	RequestID      string
	Function       string // from the path; "" when the path is not InvokeFunction's
	Qualifier      string // as resolved: LATEST when the request named none
	InvocationType string // Sync or Async
	LogType        string // None or Tail
	AsyncTaskID    string
	AccessKeyID    string // the authenticated caller's; "" when authentication failed
	AccountID      string // the authenticated caller's account
	Status         int    // HTTP status answered
	Code           string // the API error code; "" on 2xx
	ErrorType      string // X-Fc-Error-Type; "" unless the function failed
}

// Server emulates FC 3.0's InvokeFunction. It is an http.Handler and safe for
// concurrent use.
type Server struct {
	account string
	region  string
	wall    func() time.Time
	auth    verifier

	mu    sync.Mutex
	funcs map[string]map[string]Function // name → qualifier → function
	calls []Call

	async sync.WaitGroup // background Invokes of plain Targets
}

// New returns a Server with no functions. It panics if o.Keyring is nil: a
// programming error, not something a request can cause.
func New(o Options) *Server {
	if o.Keyring == nil {
		panic("fcapi: Options.Keyring is required")
	}
	if o.Wall == nil {
		o.Wall = time.Now
	}
	return &Server{
		account: o.AccountID,
		region:  o.Region,
		wall:    o.Wall,
		auth:    verifier{keys: o.Keyring, wall: o.Wall},
		funcs:   map[string]map[string]Function{},
	}
}

var (
	// aliasName is an alias name as FC accepts it (letters, digits, '_' and
	// '-', not starting with a digit or '-'). unverified: FC 2.0's rule.
	aliasName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$`)
	// asyncTaskID is the rule the FC docs give for an async task id.
	asyncTaskID = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$`)
	// fcHost is a public or internal FC 3.0 endpoint:
	// <account-id>.<region-id>[-internal].fc.aliyuncs.com[:port].
	fcHost = regexp.MustCompile(`^([0-9]+)\.([a-z0-9-]+?)(-internal)?\.fc\.aliyuncs\.com(:[0-9]+)?$`)
)

func isVersionID(q string) bool {
	if q == "" || len(q) > 20 {
		return false
	}
	for _, c := range q {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validQualifier(q string) bool { return q == Latest || isVersionID(q) || aliasName.MatchString(q) }

// Register makes f invocable, replacing any function registered under the
// same name and qualifier.
func (s *Server) Register(f Function) error {
	if f.Name == "" {
		return errors.New("fcapi: Register: empty function name")
	}
	if f.Target == nil {
		return fmt.Errorf("fcapi: Register %s: nil Target", f.Name)
	}
	if f.Qualifier == "" {
		f.Qualifier = Latest
	}
	if !validQualifier(f.Qualifier) {
		return fmt.Errorf("fcapi: Register %s: invalid qualifier %q", f.Name, f.Qualifier)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.funcs[f.Name] == nil {
		s.funcs[f.Name] = map[string]Function{}
	}
	s.funcs[f.Name][f.Qualifier] = f
	return nil
}

// lookup finds the function a request names. A function exists when any of
// its qualifiers is registered; an unregistered LATEST of an existing
// function is an emulator set-up gap, answered like an unknown function.
func (s *Server) lookup(name, qualifier string) (Function, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.funcs[name]
	if len(qs) == 0 {
		return Function{}, functionNotFound(name)
	}
	f, ok := qs[qualifier]
	switch {
	case ok:
		return f, nil
	case qualifier == Latest:
		return Function{}, functionNotFound(name)
	}
	return Function{}, qualifierNotFound(name, qualifier)
}

// Calls returns every request served so far, in the order they finished.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

// Wait waits for the background invocations of plain Targets (an
// AsyncTarget's queue is its own: see fcsim.Runtime.WaitAsync).
func (s *Server) Wait() { s.async.Wait() }

// ServeHTTP answers POST /2023-03-30/functions/{functionName}/invocations.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{RequestID: newRequestID(s.wall())}
	if e := s.serve(w, r, &call); e != nil {
		writeError(w, call.RequestID, e)
		call.Status, call.Code = e.status, e.code
	}
	s.record(call)
}

// serve runs the checks in order (path, body size, signature and
// credential, account, headers, function) and the invocation. It answers
// success itself and returns an error for ServeHTTP to answer. unverified:
// the service's order of checks, which decides the answer to a request with
// several faults.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, call *Call) *apiError {
	name, ok := functionName(r)
	if !ok {
		return pathNotSupported(r.Method, r.URL.EscapedPath())
	}
	call.Function = name

	body, err := io.ReadAll(io.LimitReader(r.Body, maxSyncPayload+1))
	if err != nil {
		return invalidArgument("reading the request body: %v", err)
	}
	if len(body) > maxSyncPayload {
		return entityTooLarge(maxSyncPayload)
	}

	cred, e := s.auth.verify(r, body)
	if e != nil {
		return e
	}
	call.AccessKeyID, call.AccountID = cred.AccessKeyID, cred.AccountID
	if e := s.authorize(r.Host, cred, name); e != nil {
		return e
	}

	invocationType := r.Header.Get(hInvocationType)
	switch invocationType {
	case "":
		invocationType = "Sync"
	case "Sync", "Async":
	default:
		return invalidArgument("invalid %s %q: Sync or Async", hInvocationType, invocationType)
	}
	call.InvocationType = invocationType
	logType := r.Header.Get(hLogType)
	switch logType {
	case "":
		logType = "None"
	case "None", "Tail":
	default:
		return invalidArgument("invalid %s %q: None or Tail", hLogType, logType)
	}
	call.LogType = logType
	if id := r.Header.Get(hAsyncTaskID); id != "" {
		if !asyncTaskID.MatchString(id) {
			return invalidArgument("invalid %s %q", hAsyncTaskID, id)
		}
		call.AsyncTaskID = id
	}
	qualifier := r.URL.Query().Get("qualifier")
	if qualifier == "" {
		qualifier = Latest
	}
	if !validQualifier(qualifier) {
		return invalidArgument("invalid qualifier %q", qualifier) // unverified
	}
	call.Qualifier = qualifier
	fn, e := s.lookup(name, qualifier)
	if e != nil {
		return e
	}

	opts := fcsim.InvokeOptions{RequestID: call.RequestID, Qualifier: qualifier, VersionID: fn.VersionID}
	h := w.Header()
	h.Set(hRequestID, call.RequestID)
	if fn.CodeChecksum != "" {
		h.Set(hCodeChecksum, fn.CodeChecksum)
	}

	if invocationType == "Async" {
		if len(body) > maxAsyncPayload {
			return entityTooLarge(maxAsyncPayload)
		}
		s.enqueue(fn.Target, body, opts)
		// Async success is 202 with no body (and so no log).
		w.WriteHeader(http.StatusAccepted)
		call.Status = http.StatusAccepted
		return nil
	}

	// FC goes on running a function whose caller hung up; the target's own
	// timeout ends it.
	res, err := fn.Target.Invoke(context.WithoutCancel(r.Context()), body, opts)
	if err != nil {
		h.Del(hCodeChecksum)
		return internalError(err)
	}
	if logType == "Tail" {
		h.Set(hLogResult, logResult(res.Log))
	}
	if res.Failed {
		// A function error is a 200 with X-Fc-Error-Type and the runtime's
		// error JSON as the body (reference §1.3). unverified: the status of
		// a timeout or crash, taken to be the same.
		h.Set(hErrorType, ErrorTypeUnhandled)
		call.ErrorType = ErrorTypeUnhandled
	}
	// unverified: the Content-Type FC gives a function's response.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Body)
	call.Status = http.StatusOK
	return nil
}

// functionName parses the InvokeFunction path; the name is percent-decoded.
func functionName(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+APIVersion+"/functions/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// authorize checks the caller's account against the functions' owner and
// the account and region the Host names, when it names them: the SDK calls
// <account-id>.<region>.fc.aliyuncs.com, a local endpoint is an address.
// unverified: the codes (an account that does not own the function would
// need a cross-account grant, hence AccessDenied; another region has other
// functions, hence FunctionNotFound).
func (s *Server) authorize(host string, cred auth.Credential, function string) *apiError {
	owner := s.account
	if owner == "" {
		owner = cred.AccountID
	}
	if cred.AccountID != owner {
		return accessDenied("the caller (account %s) is not authorized to perform 'fc:InvokeFunction' on functions of account %s", cred.AccountID, owner)
	}
	m := fcHost.FindStringSubmatch(strings.ToLower(host))
	if m == nil {
		return nil
	}
	if m[1] != owner {
		return accessDenied("the caller (account %s) is not authorized to perform 'fc:InvokeFunction' on functions of account %s", cred.AccountID, m[1])
	}
	if s.region != "" && m[2] != s.region {
		return functionNotFound(function)
	}
	return nil
}

// enqueue starts an Async invocation.
func (s *Server) enqueue(t Target, payload []byte, opts fcsim.InvokeOptions) {
	if at, ok := t.(AsyncTarget); ok {
		at.InvokeAsync(payload, opts)
		return
	}
	s.async.Add(1)
	go func() {
		defer s.async.Done()
		_, _ = t.Invoke(context.Background(), payload, opts)
	}()
}

// logResult is X-Fc-Log-Result: the last 4 KB of the invocation's log,
// base64. unverified: reference §5 does not know that the header is base64;
// FC 2.0's SDKs decode it as such.
func logResult(log string) string {
	b := []byte(log)
	if len(b) > logResultBytes {
		b = b[len(b)-logResultBytes:]
	}
	return base64.StdEncoding.EncodeToString(b)
}

// CodeChecksum is X-Fc-Code-Checksum of a code package: its CRC-64/ECMA
// (OSS's, as in FC's example "5697641582914695457"), in decimal.
func CodeChecksum(r io.Reader) (string, error) {
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return strconv.FormatUint(h.Sum64(), 10), nil
}

// newRequestID has the shape of FC 3.0's request ids, as in the documented
// error body "1-64e70cf1-5cbef92ea8fc8c42899cf5d1": 1, the time in hex
// seconds, 24 random hex digits. fcsim accepts it as a request id.
func newRequestID(now time.Time) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails on Linux
	return fmt.Sprintf("1-%08x-%s", now.Unix(), hex.EncodeToString(b))
}

// Listener is a Server answering on a TCP address.
type Listener struct {
	// Endpoint is host:port, what openapiutil.Config.Endpoint takes (no
	// scheme; set Config.Protocol to "http").
	Endpoint string
	// URL is http:// + Endpoint.
	URL string

	srv *http.Server
}

// Listen serves s on addr ("": 127.0.0.1 on any free port) until Close.
func (s *Server) Listen(addr string) (*Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fcapi: %w", err)
	}
	l := &Listener{
		Endpoint: ln.Addr().String(),
		URL:      "http://" + ln.Addr().String(),
		srv:      &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second},
	}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

// Close stops listening and ends open connections; functions go on running.
func (l *Listener) Close() error { return l.srv.Close() }
