package fcsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

// fnBinary is testdata/fn, built once with the real SDK.
var fnBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fcsim-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fnBinary = filepath.Join(dir, "fn")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", fnBinary, "./testdata/fn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/fn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func start(t *testing.T, cfg fcsim.Config) *fcsim.Runtime {
	t.Helper()
	if cfg.Binary == "" {
		cfg.Binary = fnBinary
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	r, err := fcsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// cmd is a payload for testdata/fn.
type cmd struct {
	Op     string   `json:"op"`
	Msg    string   `json:"msg,omitempty"`
	Ms     int      `json:"ms,omitempty"`
	Code   int      `json:"code,omitempty"`
	N      int      `json:"n,omitempty"`
	Lines  []string `json:"lines,omitempty"`
	Tagged bool     `json:"tagged,omitempty"`
}

func (c cmd) payload() []byte {
	b, _ := json.Marshal(c)
	return b
}

func invoke(t *testing.T, r *fcsim.Runtime, c cmd, opts fcsim.InvokeOptions) fcsim.Result {
	t.Helper()
	res, err := r.Invoke(context.Background(), c.payload(), opts)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", c.Op, err)
	}
	return res
}

// reply is what testdata/fn answers.
type reply struct {
	Op           string            `json:"op"`
	Msg          string            `json:"msg"`
	PID          int               `json:"pid"`
	RequestID    string            `json:"requestId"`
	RetryCount   int               `json:"retryCount"`
	Region       string            `json:"region"`
	AccountID    string            `json:"accountId"`
	FunctionName string            `json:"functionName"`
	Handler      string            `json:"handler"`
	Memory       string            `json:"memory"`
	Timeout      int               `json:"timeout"`
	Qualifier    string            `json:"qualifier"`
	AccessKeyID  string            `json:"accessKeyId"`
	HasSecret    bool              `json:"hasSecret"`
	HasToken     bool              `json:"hasToken"`
	DeadlineMs   int64             `json:"deadlineMs"`
	Env          map[string]string `json:"env"`
}

func answer(t *testing.T, res fcsim.Result) reply {
	t.Helper()
	if res.Failed {
		t.Fatalf("invocation %s failed: %s (log:\n%s)", res.RequestID, res.Body, res.Log)
	}
	var rep reply
	if err := json.Unmarshal(res.Body, &rep); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	return rep
}

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// watcher is a goroutine-safe writer that reports when a text has appeared.
type watcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan struct{}
}

func watch(want string) *watcher { return &watcher{want: want, found: make(chan struct{})} }

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		close(w.found)
		w.want = ""
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestInvokeAnswersWithHandlerJSON(t *testing.T) {
	r := start(t, fcsim.Config{})
	first := invoke(t, r, cmd{Op: "echo", Msg: "hello"}, fcsim.InvokeOptions{})
	rep := answer(t, first)
	if rep.Msg != "hello" || rep.RequestID != first.RequestID || first.RequestID == "" {
		t.Errorf("reply %+v for request %q", rep, first.RequestID)
	}
	if !first.ColdStart || first.InitDuration <= 0 {
		t.Errorf("first invocation: ColdStart=%v InitDuration=%v, want a cold start", first.ColdStart, first.InitDuration)
	}
	if rep.PID != r.PID() {
		t.Errorf("answered by pid %d, runtime reports %d", rep.PID, r.PID())
	}

	second := invoke(t, r, cmd{Op: "echo", Msg: "again"}, fcsim.InvokeOptions{})
	if rep2 := answer(t, second); rep2.PID != rep.PID || rep2.Msg != "again" {
		t.Errorf("second reply %+v, want msg again from pid %d", rep2, rep.PID)
	}
	if second.ColdStart || second.InitDuration != 0 || second.RequestID == first.RequestID {
		t.Errorf("second invocation: ColdStart=%v InitDuration=%v id=%q", second.ColdStart, second.InitDuration, second.RequestID)
	}
	if s := r.Stats(); s.ProcessStarts != 1 || s.Invocations != 2 || s.Failures != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestReturnedErrorFails(t *testing.T) {
	r := start(t, fcsim.Config{})
	res := invoke(t, r, cmd{Op: "error", Msg: "bad input"}, fcsim.InvokeOptions{})
	if !res.Failed || res.TimedOut || res.Crashed {
		t.Fatalf("Failed=%v TimedOut=%v Crashed=%v, want only Failed", res.Failed, res.TimedOut, res.Crashed)
	}
	if res.ErrorType != "errorString" { // fmt.Errorf without %w
		t.Errorf("ErrorType = %q, want the Go type name of the returned error", res.ErrorType)
	}
	if res.ErrorMessage != "bad input retry=0" {
		t.Errorf("ErrorMessage = %q", res.ErrorMessage)
	}
	var body map[string]any
	if err := json.Unmarshal(res.Body, &body); err != nil || body["errorMessage"] != res.ErrorMessage {
		t.Errorf("Body = %s, want the SDK's error JSON", res.Body)
	}
	if !strings.Contains(res.Log, "FC Invoke End RequestId: "+res.RequestID+", Error: Unhandled function error") {
		t.Errorf("Log lacks the failed End marker:\n%s", res.Log)
	}
}

func TestPanicFailsAndProcessServesOn(t *testing.T) {
	r := start(t, fcsim.Config{})
	before := answer(t, invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})).PID

	res := invoke(t, r, cmd{Op: "panic", Msg: "boom"}, fcsim.InvokeOptions{})
	if !res.Failed || res.Crashed || res.ErrorMessage != "boom" || res.ErrorType != "string" {
		t.Fatalf("panic: Failed=%v Crashed=%v type=%q message=%q", res.Failed, res.Crashed, res.ErrorType, res.ErrorMessage)
	}
	if !strings.Contains(string(res.Body), `"stackTrace"`) {
		t.Errorf("panic body has no stack trace: %s", res.Body)
	}

	next := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	if pid := answer(t, next).PID; pid != before || next.ColdStart {
		t.Errorf("after the panic: pid %d (was %d), ColdStart=%v; want the same process", pid, before, next.ColdStart)
	}
}

func TestTimeoutKillsProcessAndNextIsColdStart(t *testing.T) {
	r := start(t, fcsim.Config{Timeout: time.Second})
	invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	old := r.PID()

	res := invoke(t, r, cmd{Op: "sleep", Ms: 20000}, fcsim.InvokeOptions{})
	if !res.TimedOut || !res.Failed || res.Crashed {
		t.Fatalf("TimedOut=%v Failed=%v Crashed=%v body=%s", res.TimedOut, res.Failed, res.Crashed, res.Body)
	}
	if res.ErrorMessage != "Function time out after 1 seconds" || res.ErrorType != "" {
		t.Errorf("ErrorMessage=%q ErrorType=%q", res.ErrorMessage, res.ErrorType)
	}
	if res.Duration < time.Second {
		t.Errorf("killed after %v, before the 1 s deadline", res.Duration)
	}
	if !gone(old) {
		t.Errorf("process %d still exists after the timeout", old)
	}
	if !strings.HasPrefix(res.Log, "FC Invoke Start RequestId: "+res.RequestID) || strings.Contains(res.Log, "FC Invoke End") {
		t.Errorf("Log of the timed-out request:\n%s", res.Log)
	}

	next := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	if pid := answer(t, next).PID; pid == old || !next.ColdStart {
		t.Errorf("after the timeout: pid %d (old %d), ColdStart=%v; want a new process", pid, old, next.ColdStart)
	}
	if s := r.Stats(); s.ProcessStarts != 2 || s.Timeouts != 1 || s.Failures != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestHandlerHonouringDeadlineIsNotKilled(t *testing.T) {
	r := start(t, fcsim.Config{Timeout: time.Second})
	// The rendezvous never completes, so the handler returns ctx.Err() at the deadline.
	res := invoke(t, r, cmd{Op: "rendezvous", N: 2}, fcsim.InvokeOptions{})
	if !res.Failed || res.TimedOut || res.ErrorType != "deadlineExceededError" {
		t.Fatalf("Failed=%v TimedOut=%v type=%q body=%s", res.Failed, res.TimedOut, res.ErrorType, res.Body)
	}
	if next := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{}); next.ColdStart {
		t.Error("the process was replaced although the handler answered in time")
	}
}

func TestExitMidInvocationCrashes(t *testing.T) {
	r := start(t, fcsim.Config{})
	invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	old := r.PID()

	res := invoke(t, r, cmd{Op: "exit", Code: 3}, fcsim.InvokeOptions{})
	if !res.Crashed || !res.Failed || res.TimedOut {
		t.Fatalf("Crashed=%v Failed=%v TimedOut=%v body=%s", res.Crashed, res.Failed, res.TimedOut, res.Body)
	}
	if !strings.HasPrefix(res.ErrorMessage, "Process exited unexpectedly before completing request") || res.ErrorType != "" {
		t.Errorf("ErrorMessage=%q ErrorType=%q", res.ErrorMessage, res.ErrorType)
	}
	if !strings.HasPrefix(res.Log, "FC Invoke Start RequestId: "+res.RequestID) {
		t.Errorf("Log of the crashed request:\n%s", res.Log)
	}

	next := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	if pid := answer(t, next).PID; pid == old || !next.ColdStart {
		t.Errorf("after the crash: pid %d (old %d), ColdStart=%v", pid, old, next.ColdStart)
	}
	if s := r.Stats(); s.Crashes != 1 || s.ProcessStarts != 2 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestKillDuringInvocationCrashes(t *testing.T) {
	const id = "kill-me"
	out := watch("FC Invoke Start RequestId: " + id)
	r := start(t, fcsim.Config{Stdout: out})

	done := make(chan fcsim.Result, 1)
	go func() {
		res, err := r.Invoke(context.Background(), cmd{Op: "sleep", Ms: 20000}.payload(), fcsim.InvokeOptions{RequestID: id})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-out.found // the handler is running
	old := r.PID()
	r.Kill()
	res := <-done
	if !res.Crashed || res.TimedOut {
		t.Fatalf("Crashed=%v TimedOut=%v body=%s", res.Crashed, res.TimedOut, res.Body)
	}
	if !gone(old) {
		t.Errorf("process %d survived Kill", old)
	}
	next := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	if pid := answer(t, next).PID; pid == old || !next.ColdStart {
		t.Errorf("after Kill: pid %d (old %d), ColdStart=%v", pid, old, next.ColdStart)
	}
}

func TestFunctionThatCannotStart(t *testing.T) {
	t.Run("exits", func(t *testing.T) {
		r := start(t, fcsim.Config{Env: []string{"FN_EXIT_AT_START=1"}})
		res := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
		if !res.Crashed || !res.ColdStart {
			t.Errorf("Crashed=%v ColdStart=%v body=%s", res.Crashed, res.ColdStart, res.Body)
		}
	})
	t.Run("never polls", func(t *testing.T) {
		r := start(t, fcsim.Config{Env: []string{"FN_HANG_AT_START=1"}, Timeout: time.Second})
		res := invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
		if !res.TimedOut {
			t.Errorf("TimedOut=%v body=%s", res.TimedOut, res.Body)
		}
		if r.PID() != 0 {
			t.Errorf("the hung process %d is still the current one", r.PID())
		}
	})
}

func TestContextReachesFunction(t *testing.T) {
	const account = "1234567890123456"
	keys := auth.NewKeyring(nil)
	r := start(t, fcsim.Config{
		FunctionName: "sag-upgrade",
		Handler:      "main",
		Region:       "cn-shanghai",
		AccountID:    account,
		MemoryMB:     256,
		Env:          []string{"FN_USER_VAR=set"},
		Credentials:  func() auth.Credential { return keys.IssueSTS(account, time.Hour) },
	})
	timeout := 2 * time.Second
	before := time.Now()
	res := invoke(t, r, cmd{Op: "context"}, fcsim.InvokeOptions{RequestID: "ctx-test-1", Timeout: timeout, RetryCount: 2})
	after := time.Now()
	rep := answer(t, res)

	if res.RequestID != "ctx-test-1" || rep.RequestID != "ctx-test-1" || rep.RetryCount != 2 {
		t.Errorf("request id %q/%q, retry count %d", res.RequestID, rep.RequestID, rep.RetryCount)
	}
	if rep.Region != "cn-shanghai" || rep.AccountID != account || rep.FunctionName != "sag-upgrade" ||
		rep.Handler != "main" || rep.Memory != "256" || rep.Timeout != 2 || rep.Qualifier != "LATEST" {
		t.Errorf("fccontext saw %+v", rep)
	}
	cred, ok := keys.Lookup(rep.AccessKeyID)
	if !ok || !cred.IsSTS() || !rep.HasSecret || !rep.HasToken {
		t.Errorf("credentials: key %q known=%v, secret=%v token=%v", rep.AccessKeyID, ok, rep.HasSecret, rep.HasToken)
	}
	// The deadline is delivery time + timeout, in whole milliseconds.
	deadline := time.UnixMilli(rep.DeadlineMs)
	if lo, hi := before.Add(timeout).Add(-time.Millisecond), after.Add(timeout); deadline.Before(lo) || deadline.After(hi) {
		t.Errorf("deadline %v, want within [%v, %v]", deadline, lo, hi)
	}
	env := rep.Env
	if env["FC_FUNCTION_NAME"] != "sag-upgrade" || env["FC_REGION"] != "cn-shanghai" || env["FC_ACCOUNT_ID"] != account ||
		env["FC_FUNCTION_HANDLER"] != "main" || env["FC_FUNCTION_MEMORY_SIZE"] != "256" || env["FC_INSTANCE_ID"] == "" ||
		env["FN_USER_VAR"] != "set" || env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "" ||
		!strings.HasPrefix(env["FC_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("environment %v", env)
	}

	// Credentials are issued per invocation.
	again := answer(t, invoke(t, r, cmd{Op: "context"}, fcsim.InvokeOptions{}))
	if again.AccessKeyID == rep.AccessKeyID {
		t.Errorf("two invocations got the same access key %q", again.AccessKeyID)
	}
}

func TestConcurrentInvocations(t *testing.T) {
	r := start(t, fcsim.Config{})
	// Each handler waits for the other, so both succeed only if served together.
	results := make([]fcsim.Result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			res, err := r.Invoke(context.Background(), cmd{Op: "rendezvous", N: 2}.payload(), fcsim.InvokeOptions{})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	a, b := answer(t, results[0]), answer(t, results[1])
	if a.RequestID == b.RequestID || a.RequestID != results[0].RequestID || b.RequestID != results[1].RequestID {
		t.Errorf("answers %q and %q for requests %q and %q", a.RequestID, b.RequestID, results[0].RequestID, results[1].RequestID)
	}
	if a.PID != b.PID {
		t.Errorf("served by processes %d and %d, want one", a.PID, b.PID)
	}
}

func TestAsyncRetries(t *testing.T) {
	var mu sync.Mutex
	records := map[string]fcsim.AsyncRecord{}
	r := start(t, fcsim.Config{OnAsyncResult: func(rec fcsim.AsyncRecord) {
		mu.Lock()
		defer mu.Unlock()
		records[rec.RequestID] = rec
	}})

	failing := r.InvokeAsync(cmd{Op: "error", Msg: "always"}.payload(), fcsim.InvokeOptions{})
	healing := r.InvokeAsync(cmd{Op: "fail-until", N: 2}.payload(), fcsim.InvokeOptions{RequestID: "heals-on-2nd-retry"})
	if failing == "" || healing != "heals-on-2nd-retry" {
		t.Fatalf("InvokeAsync ids %q, %q", failing, healing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitAsync(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()

	rec, ok := records[failing]
	if !ok || rec.Success || rec.Err != nil || len(rec.Attempts) != 4 {
		t.Fatalf("always failing: %+v (found %v), want onFailure after 1+3 tries", rec, ok)
	}
	for i, a := range rec.Attempts {
		if a.RequestID != failing || !a.Failed || a.ErrorMessage != fmt.Sprintf("always retry=%d", i) {
			t.Errorf("try %d: id %q Failed=%v message %q", i, a.RequestID, a.Failed, a.ErrorMessage)
		}
	}
	if rec.Result.ErrorMessage != "always retry=3" || string(rec.Payload) != string(cmd{Op: "error", Msg: "always"}.payload()) {
		t.Errorf("record: last result %q, payload %s", rec.Result.ErrorMessage, rec.Payload)
	}

	rec = records[healing]
	if !rec.Success || len(rec.Attempts) != 3 || answer(t, rec.Result).RetryCount != 2 {
		t.Errorf("healing: Success=%v tries=%d last=%s", rec.Success, len(rec.Attempts), rec.Result.Body)
	}
	if s := r.Stats(); s.Invocations != 7 || s.Failures != 6 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestAsyncRetryLimit(t *testing.T) {
	var got []fcsim.AsyncRecord
	r := start(t, fcsim.Config{MaxAsyncRetryAttempts: -1, OnAsyncResult: func(rec fcsim.AsyncRecord) { got = append(got, rec) }})
	r.InvokeAsync(cmd{Op: "error"}.payload(), fcsim.InvokeOptions{})
	if err := r.WaitAsync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Attempts) != 1 || got[0].Success {
		t.Errorf("records %+v, want one failure after a single try", got)
	}
}

func TestLogSliceHoldsOwnLines(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		r := start(t, fcsim.Config{})
		a := invoke(t, r, cmd{Op: "log", Lines: []string{"alpha-1", "alpha-2"}}, fcsim.InvokeOptions{})
		b := invoke(t, r, cmd{Op: "log", Lines: []string{"beta-1"}, Tagged: true}, fcsim.InvokeOptions{})
		wantA := "FC Invoke Start RequestId: " + a.RequestID + "\nalpha-1\nalpha-2\nFC Invoke End RequestId: " + a.RequestID + "\n"
		if a.Log != wantA {
			t.Errorf("log of a:\n%s\nwant:\n%s", a.Log, wantA)
		}
		lines := strings.Split(strings.TrimSuffix(b.Log, "\n"), "\n")
		if len(lines) != 3 || lines[0] != "FC Invoke Start RequestId: "+b.RequestID ||
			!strings.Contains(lines[1], " "+b.RequestID+" [INFO] ") || !strings.HasSuffix(lines[1], "beta-1") ||
			lines[2] != "FC Invoke End RequestId: "+b.RequestID {
			t.Errorf("log of b:\n%s", b.Log)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		r := start(t, fcsim.Config{})
		// Both print a line, meet, then print another: their lines interleave.
		lines := [][]string{{"one-a", "one-b"}, {"two-a", "two-b"}}
		results := make([]fcsim.Result, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				res, err := r.Invoke(context.Background(), cmd{Op: "log", Lines: lines[i], Tagged: true, N: 2}.payload(), fcsim.InvokeOptions{})
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		for i, res := range results {
			answer(t, res)
			own, other := lines[i], lines[1-i]
			if !strings.Contains(res.Log, own[0]) || !strings.Contains(res.Log, own[1]) ||
				strings.Contains(res.Log, other[0]) || strings.Contains(res.Log, other[1]) ||
				strings.Count(res.Log, "FC Invoke") != 2 {
				t.Errorf("log of %d:\n%s", i, res.Log)
			}
		}
	})
}

func TestRuntimeAPIRefusesUnknownRequest(t *testing.T) {
	r := start(t, fcsim.Config{})
	invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	for _, kind := range []string{"response", "error"} {
		url := "http://" + r.Addr() + "/2020-11-11/runtime/invocation/no-such-request/" + kind
		resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", kind, resp.StatusCode)
		}
	}
}

func TestInvokeRejectsBadOptions(t *testing.T) {
	r := start(t, fcsim.Config{})
	if _, err := r.Invoke(context.Background(), nil, fcsim.InvokeOptions{RequestID: "../x"}); err == nil {
		t.Error("a request id with a slash was accepted")
	}
	if _, err := fcsim.Start(fcsim.Config{Binary: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Start accepted a missing binary")
	}
}

func TestCloseLeavesNoProcess(t *testing.T) {
	stderr := watch("")
	r := start(t, fcsim.Config{Stderr: stderr})
	invoke(t, r, cmd{Op: "echo"}, fcsim.InvokeOptions{})
	pid := r.PID()
	if pid == 0 {
		t.Fatal("no process after an invocation")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("process %d still exists after Close", pid)
	}
	for _, out := range []string{stderr.String(), r.Output()} {
		if strings.Contains(out, "failed to get invoke request") {
			t.Errorf("the function polled a closed port:\n%.500s", out)
		}
	}
	if _, err := r.Invoke(context.Background(), nil, fcsim.InvokeOptions{}); !errors.Is(err, fcsim.ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
}
