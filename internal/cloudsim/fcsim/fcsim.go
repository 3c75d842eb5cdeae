// Package fcsim emulates the Function Compute 3.0 runtime API (version
// 2020-11-11) that github.com/aliyun/fc-runtime-go-sdk speaks, so the compiled
// go1 function runs end to end on loopback: the real binary, started as FC
// would start it, long-polls GET …/invocation/next and posts its answers to
// …/{id}/response or …/{id}/error.
//
// A Runtime plays one FC function with one instance at a time, started lazily
// by the first invocation (a measurable cold start). On top of the runtime API
// it offers what FC's InvokeFunction does: synchronous invocations with a
// deadline the platform enforces (the SDK never stops a handler), crash
// detection, asynchronous invocations with retries and a destination hook, and
// per-request log slices cut at the SDK's "FC Invoke Start/End" markers.
//
// Each instance gets its own listener (FC_RUNTIME_API differs per instance, as
// on FC where the runtime API is local to the instance), so a dead process's
// stale connections can never take an invocation meant for its successor.
//
// Use:
//
//	rt, err := fcsim.Start(fcsim.Config{Binary: bin, Timeout: 2 * time.Second,
//		Credentials: func() auth.Credential { return keys.IssueSTS(account, time.Hour) }})
//	defer rt.Close()
//	res, err := rt.Invoke(ctx, []byte(`{}`), fcsim.InvokeOptions{})
//
// Not emulated: lifecycle hooks (initializer, preStop: x-fc-function-type),
// tracing headers, FC's payload size limits and its backoff between async
// retries.
package fcsim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// TimeoutGrace is how long past an invocation's deadline the emulator still
// waits for its answer before it kills the process and reports a timeout. The
// SDK cancels the handler's context exactly at the deadline; the grace lets a
// handler that honours it post the resulting error, even on a loaded machine.
const TimeoutGrace = 500 * time.Millisecond

// logWait bounds the wait for a request's "FC Invoke End" line after its result
// arrived. The SDK prints the marker before it posts, so the line is already in
// the pipe; the wait only covers reading it.
const logWait = time.Second

// maxRedispatch bounds how often an invocation that never reached a process
// (its instance died between polls) is handed to a fresh instance.
const maxRedispatch = 3

// Messages FC gives for failures that have no SDK error payload.
const (
	msgCrashed = "Process exited unexpectedly before completing request"
	msgTimeout = "Function time out after %d seconds"
)

// ErrClosed is returned by Invoke after Close.
var ErrClosed = errors.New("fcsim: runtime closed")

// Config describes the function and its instance.
type Config struct {
	Binary string   // compiled function (runtime go1: the executable named by Handler)
	Dir    string   // working directory (FC's code root); default: the binary's directory
	Env    []string // the function's environment variables, "NAME=value"

	FunctionName string        // default: the binary's file name
	Handler      string        // default: the binary's file name
	Region       string        // default "cn-hangzhou"
	AccountID    string        // sent as is (empty unless set)
	MemoryMB     int           // default 512 (fc3's default)
	Timeout      time.Duration // function timeout; default 3 s (fc3's default)

	// Credentials is called once per invocation for the x-fc-access-key-*
	// headers, and once per instance start for the ALIBABA_CLOUD_* variables,
	// as FC hands out the role's STS credentials. Nil: no credentials.
	Credentials func() auth.Credential

	// Stdout and Stderr receive the process's output as it is read (nil:
	// discarded). Writes to both are serialised, so one writer may serve both.
	Stdout, Stderr io.Writer

	// MaxAsyncRetryAttempts is how often a failed asynchronous invocation is
	// retried: 0 means FC's default 3, a negative value means never.
	MaxAsyncRetryAttempts int
	// OnAsyncResult receives the final outcome of each asynchronous
	// invocation, like FC's onSuccess/onFailure destinations. It is called
	// from the emulator's async goroutine; it must not call Close.
	OnAsyncResult func(AsyncRecord)
}

// InvokeOptions are the per-call settings of Invoke and InvokeAsync.
type InvokeOptions struct {
	RequestID  string        // letters, digits, '-' and '_'; default: a fresh UUID-shaped id
	Timeout    time.Duration // overrides Config.Timeout for this call
	RetryCount int           // x-fc-retry-count (InvokeAsync adds its own retries to it)
	// Qualifier is x-fc-qualifier, the version or alias the caller named
	// (fccontext's Service.Qualifier); default "LATEST".
	Qualifier string
	// VersionID is x-fc-version-id, the version the qualifier resolved to
	// (Service.VersionId); empty: not sent.
	VersionID string
}

// Result is the outcome of one invocation, as FC's InvokeFunction reports it.
//
// Failed is FC's "X-Fc-Error-Type: UnhandledInvocationError": the function
// returned an error, panicked, timed out or its process died. That header
// value never varies, so ErrorType carries the errorType field of the SDK's
// error payload instead ("errorString", "string" for panic("…"), or a
// messages.InvokeResponse_Error's own Type); it is empty for timeouts and
// crashes, whose FC payloads have no errorType either.
type Result struct {
	RequestID    string
	Body         []byte // the posted response, or the error JSON
	Failed       bool
	ErrorType    string
	ErrorMessage string
	TimedOut     bool // killed at the deadline (+ TimeoutGrace)
	Crashed      bool // the process exited while the invocation was in flight
	Log          string
	Duration     time.Duration // handed to the process → answer (or kill, or exit)
	ColdStart    bool          // this invocation started the process
	InitDuration time.Duration // process start → its first GET /next, on a cold start
}

// AsyncRecord is the destination message of one asynchronous invocation.
type AsyncRecord struct {
	RequestID string
	Payload   []byte
	Success   bool     // onSuccess; otherwise onFailure
	Attempts  []Result // every try in order; try i carries retry count base+i
	Result    Result   // the last try
	Err       error    // an emulator failure (such as ErrClosed) that ended the tries
}

// Stats counts what happened so far.
type Stats struct {
	ProcessStarts int
	Invocations   int // tries, async retries included
	Failures      int // tries that ended Failed (timeouts and crashes included)
	Timeouts      int
	Crashes       int
}

// Runtime is the emulated function. Its methods are safe for concurrent use.
type Runtime struct {
	cfg    Config
	ctx    context.Context // cancelled by Close; the context of async invocations
	cancel context.CancelFunc

	mu       sync.Mutex
	cur      *instance              // the instance new invocations go to
	live     map[*instance]struct{} // every process not yet reaped
	inflight map[string]*invocation // by request id
	stats    Stats
	seq      int
	closed   bool

	out output

	async asyncQueue
}

// Start validates cfg and returns a Runtime. The function's process is
// started by the first invocation.
func Start(cfg Config) (*Runtime, error) {
	if cfg.Binary == "" {
		return nil, errors.New("fcsim: Config.Binary is empty")
	}
	bin, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("fcsim: %w", err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		return nil, fmt.Errorf("fcsim: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("fcsim: %s is not an executable file", bin)
	}
	cfg.Binary = bin
	if cfg.Dir == "" {
		cfg.Dir = filepath.Dir(bin)
	}
	if cfg.FunctionName == "" {
		cfg.FunctionName = filepath.Base(bin)
	}
	if cfg.Handler == "" {
		cfg.Handler = filepath.Base(bin)
	}
	if cfg.Region == "" {
		cfg.Region = "cn-hangzhou"
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 512
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	switch {
	case cfg.MaxAsyncRetryAttempts == 0:
		cfg.MaxAsyncRetryAttempts = 3
	case cfg.MaxAsyncRetryAttempts < 0:
		cfg.MaxAsyncRetryAttempts = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		live:     map[*instance]struct{}{},
		inflight: map[string]*invocation{},
	}, nil
}

// invocation is one try of one request, from Invoke to its result.
type invocation struct {
	id        string
	payload   []byte
	timeout   time.Duration
	header    http.Header   // all /next headers but the deadline, set on delivery
	delivered chan struct{} // closed when a process took it
	done      chan outcome  // the first posted result (buffered)

	// Set on delivery: inst under Runtime.mu, the rest before delivered closes.
	inst     *instance
	answered bool // under Runtime.mu
	start    time.Time
	deadline time.Time
	log      *logSlice
}

type outcome struct {
	ok   bool
	body []byte
	at   time.Time
}

// Invoke runs one synchronous invocation and waits for its result. Function
// failures are reported in the Result; the error is only for the emulator's
// own (bad options, the binary cannot be started, ctx done, Close).
func (r *Runtime) Invoke(ctx context.Context, payload []byte, opts InvokeOptions) (Result, error) {
	id := opts.RequestID
	if id == "" {
		id = newRequestID()
	}
	if !validRequestID(id) {
		return Result{RequestID: id}, fmt.Errorf("fcsim: request id %q: use 1-128 letters, digits, '-' or '_'", id)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = r.cfg.Timeout
	}
	iv := &invocation{
		id:        id,
		payload:   payload,
		timeout:   timeout,
		header:    r.header(id, timeout, opts),
		delivered: make(chan struct{}),
		done:      make(chan outcome, 1),
	}
	if err := r.register(iv); err != nil {
		return Result{RequestID: id}, err
	}
	res, err := r.run(ctx, iv)
	r.unregister(iv, res, err)
	return res, err
}

func (r *Runtime) register(iv *invocation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.inflight[iv.id] != nil {
		return fmt.Errorf("fcsim: request id %q is already in flight", iv.id)
	}
	r.inflight[iv.id] = iv
	r.stats.Invocations++
	return nil
}

func (r *Runtime) unregister(iv *invocation, res Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, iv.id)
	if err != nil {
		return
	}
	if res.Failed {
		r.stats.Failures++
	}
	if res.TimedOut {
		r.stats.Timeouts++
	}
	if res.Crashed {
		r.stats.Crashes++
	}
}

// run hands iv to an instance and waits for its fate.
func (r *Runtime) run(ctx context.Context, iv *invocation) (Result, error) {
	res := Result{RequestID: iv.id}
	var in *instance
dispatch:
	for tries := 0; ; tries++ {
		var err error
		in, res.ColdStart, err = r.instance()
		if err != nil {
			return res, err
		}
		// Bounds the wait for a process that never asks for work (hung at start).
		unserved := time.NewTimer(iv.timeout + TimeoutGrace)
		select {
		case in.queue <- iv:
			unserved.Stop()
			<-iv.delivered
			break dispatch
		case <-in.dead:
			unserved.Stop()
			// An instance that had polled before died between polls, so iv never
			// reached it: give it to a fresh instance. One that died before its
			// first poll is a function that cannot start.
			if in.hasPolled() && tries < maxRedispatch {
				continue
			}
			return failure(res, crashedBody(), false, true), nil
		case <-unserved.C:
			if !in.hasPolled() {
				r.retire(in)
			}
			return failure(res, timeoutBody(iv.timeout), true, false), nil
		case <-ctx.Done():
			unserved.Stop()
			return res, ctx.Err()
		}
	}
	defer in.logs.drop(iv.id)
	if res.ColdStart {
		res.InitDuration = in.firstPoll.Sub(in.started)
	}

	deadline := time.NewTimer(time.Until(iv.deadline) + TimeoutGrace)
	defer deadline.Stop()
	var o outcome
	var answered bool
	select {
	case o = <-iv.done:
		answered = true
	case <-in.dead:
		o, answered = poll(iv.done) // an answer may have raced the exit
	case <-deadline.C:
		if o, answered = poll(iv.done); !answered {
			r.retire(in)
			res.Duration = time.Since(iv.start)
			res.Log = in.logs.text(iv.log)
			return failure(res, timeoutBody(iv.timeout), true, false), nil
		}
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if !answered {
		res.Duration = time.Since(iv.start)
		res.Log = in.logs.text(iv.log) // dead: the output is fully read
		return failure(res, crashedBody(), false, true), nil
	}

	res.Duration = o.at.Sub(iv.start)
	wait := time.NewTimer(logWait)
	select {
	case <-iv.log.ended:
	case <-in.dead:
	case <-wait.C:
	}
	wait.Stop()
	res.Log = in.logs.text(iv.log)
	res.Body = o.body
	if !o.ok {
		var e struct {
			Message string `json:"errorMessage"`
			Type    string `json:"errorType"`
		}
		_ = json.Unmarshal(o.body, &e) // a malformed body still fails, with empty fields
		res.Failed, res.ErrorMessage, res.ErrorType = true, e.Message, e.Type
	}
	return res, nil
}

func poll(c chan outcome) (outcome, bool) {
	select {
	case o := <-c:
		return o, true
	default:
		return outcome{}, false
	}
}

func failure(res Result, body []byte, timedOut, crashed bool) Result {
	var e struct {
		Message string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &e)
	res.Body, res.Failed, res.ErrorMessage = body, true, e.Message
	res.TimedOut, res.Crashed = timedOut, crashed
	return res
}

func timeoutBody(timeout time.Duration) []byte {
	b, _ := json.Marshal(map[string]string{"errorMessage": fmt.Sprintf(msgTimeout, ceilSeconds(timeout))})
	return b
}

func crashedBody() []byte {
	b, _ := json.Marshal(map[string]string{"errorMessage": msgCrashed})
	return b
}

// header builds the /next headers of one invocation, the deadline aside.
func (r *Runtime) header(id string, timeout time.Duration, opts InvokeOptions) http.Header {
	c := r.cfg
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("x-fc-request-id", id)
	h.Set("x-fc-function-timeout", strconv.Itoa(ceilSeconds(timeout)))
	h.Set("x-fc-function-name", c.FunctionName)
	h.Set("x-fc-function-handler", c.Handler)
	h.Set("x-fc-function-memory", strconv.Itoa(c.MemoryMB))
	h.Set("x-fc-region", c.Region)
	h.Set("x-fc-account-id", c.AccountID)
	h.Set("x-fc-qualifier", cmp.Or(opts.Qualifier, "LATEST"))
	if opts.VersionID != "" {
		h.Set("x-fc-version-id", opts.VersionID)
	}
	h.Set("x-fc-retry-count", strconv.Itoa(opts.RetryCount))
	if c.Credentials != nil {
		cred := c.Credentials()
		h.Set("x-fc-access-key-id", cred.AccessKeyID)
		h.Set("x-fc-access-key-secret", cred.AccessKeySecret)
		h.Set("x-fc-security-token", cred.SecurityToken)
	}
	return h
}

// deliver is called by the /next handler that took iv: the deadline starts
// now, and the log slice must exist before the process can print its marker.
func (r *Runtime) deliver(in *instance, iv *invocation) http.Header {
	now := time.Now()
	iv.start, iv.deadline = now, now.Add(iv.timeout)
	iv.log = in.logs.expect(iv.id)
	r.mu.Lock()
	iv.inst = in
	r.mu.Unlock()
	close(iv.delivered)
	h := iv.header.Clone()
	h.Set("x-fc-function-deadline", strconv.FormatInt(iv.deadline.UnixMilli(), 10))
	return h
}

// claim records a posted result; the first per request id wins. It returns
// the HTTP status for the poster.
func (r *Runtime) claim(in *instance, id string, o outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	iv := r.inflight[id]
	switch {
	case iv == nil || iv.inst != in: // unknown, not yet delivered, or another process's
		return http.StatusNotFound
	case iv.answered:
		return http.StatusConflict
	}
	iv.answered = true
	iv.done <- o
	return http.StatusOK
}

// instance returns the instance for the next invocation, starting one when
// there is none alive; started reports a cold start.
func (r *Runtime) instance() (in *instance, started bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, ErrClosed
	}
	if r.cur != nil && !r.cur.exited() {
		return r.cur, false, nil
	}
	r.seq++
	in, err = r.startInstance(r.seq)
	if err != nil {
		return nil, false, err
	}
	r.cur = in
	r.live[in] = struct{}{}
	r.stats.ProcessStarts++
	return in, true, nil
}

// retire takes in out of service and kills it (a timeout, a hung start).
func (r *Runtime) retire(in *instance) {
	r.mu.Lock()
	if r.cur == in {
		r.cur = nil
	}
	r.mu.Unlock()
	in.stop()
}

// Kill SIGKILLs the current process (and its process group) and returns once
// it is gone, like an instance dying under FC. In-flight invocations report
// Crashed; the next invocation starts a fresh process.
func (r *Runtime) Kill() {
	r.mu.Lock()
	in := r.cur
	r.mu.Unlock()
	if in != nil {
		in.kill()
		<-in.dead
	}
}

// PID is the current process's id, or 0 when none is running.
func (r *Runtime) PID() int {
	r.mu.Lock()
	in := r.cur
	r.mu.Unlock()
	if in == nil || in.exited() {
		return 0
	}
	return in.pid
}

// Addr is the current instance's FC_RUNTIME_API (host:port), or "" when none
// is running.
func (r *Runtime) Addr() string {
	r.mu.Lock()
	in := r.cur
	r.mu.Unlock()
	if in == nil || in.exited() {
		return ""
	}
	return in.addr
}

// Stats returns the counters so far.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Output returns the tail (the last 64 KiB) of the processes' stdout and
// stderr, interleaved as read; for diagnostics.
func (r *Runtime) Output() string { return r.out.tail() }

// Close kills every process, and only then closes its listener (the SDK
// retries a refused /next in a tight loop), then waits for the async queue to
// drain: queued invocations end with ErrClosed. Close is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cur = nil
	live := make([]*instance, 0, len(r.live))
	for in := range r.live {
		live = append(live, in)
	}
	r.mu.Unlock()
	r.cancel()
	for _, in := range live {
		in.stop()
	}
	return r.WaitAsync(context.Background())
}

// ceilSeconds is x-fc-function-timeout: whole seconds, at least 1. The exact
// deadline travels in x-fc-function-deadline (ms).
func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// newRequestID returns a UUID-shaped id; the SDK pastes it into URL paths
// unescaped, so it must be path-safe.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails on Linux
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		ok := c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}
