package fcapi_test

// End-to-end tests: the official FC 3.0 SDK (fc-20230330/v4) over real HTTP
// → fcapi → fcsim → a function binary built with the real fc-runtime-go-sdk.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcapi"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

const (
	account = "1234567890123456"
	region  = "cn-shanghai"
	fnName  = "sag-upgrade"
)

// fnBinary is testdata/fn, built once.
var fnBinary string

func TestMain(m *testing.M) {
	// The SDK honours proxy variables even for loopback (reference §1.2).
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"} {
		os.Unsetenv(v)
	}
	dir, err := os.MkdirTemp("", "fcapi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fnBinary = filepath.Join(dir, "fn")
	build := exec.Command("go", "build", "-o", fnBinary, "./testdata/fn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/fn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cloud is a keyring, an fcapi server on loopback and an STS credential of
// the functions' account.
type cloud struct {
	keys *auth.Keyring
	srv  *fcapi.Server
	l    *fcapi.Listener
	cred auth.Credential
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	keys := auth.NewKeyring(nil)
	srv := fcapi.New(fcapi.Options{Keyring: keys, AccountID: account, Region: region})
	l, err := srv.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &cloud{keys: keys, srv: srv, l: l, cred: keys.IssueSTS(account, time.Hour)}
}

// runtime starts testdata/fn under fcsim; tag tells its answers apart.
func (c *cloud) runtime(t *testing.T, tag string, onAsync func(fcsim.AsyncRecord)) *fcsim.Runtime {
	t.Helper()
	rt, err := fcsim.Start(fcsim.Config{
		Binary: fnBinary, FunctionName: fnName, Region: region, AccountID: account,
		Env: []string{"FN_TAG=" + tag}, Timeout: 10 * time.Second,
		Credentials:   func() auth.Credential { return c.keys.IssueSTS(account, time.Hour) },
		OnAsyncResult: onAsync,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func (c *cloud) register(t *testing.T, f fcapi.Function) {
	t.Helper()
	if err := c.srv.Register(f); err != nil {
		t.Fatal(err)
	}
}

// client is the SDK pointed at the emulator, as reference §1.4 says.
func client(t *testing.T, endpoint string, cred auth.Credential, edit ...func(*openapiutil.Config)) *fc.Client {
	t.Helper()
	cfg := &openapiutil.Config{
		AccessKeyId:     tea.String(cred.AccessKeyID),
		AccessKeySecret: tea.String(cred.AccessKeySecret),
		Endpoint:        tea.String(endpoint),
		Protocol:        tea.String("http"),
		ReadTimeout:     tea.Int(30_000),
	}
	if cred.SecurityToken != "" {
		cfg.SecurityToken = tea.String(cred.SecurityToken)
	}
	for _, e := range edit {
		e(cfg)
	}
	cl, err := fc.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// call is one InvokeFunction; qualifier "" sends none, headers nil none.
type call struct {
	qualifier string
	payload   any // nil: no body
	headers   *fc.InvokeFunctionHeaders
}

type answer struct {
	status  int
	headers map[string]*string
	body    []byte
}

func (a answer) header(name string) string { return tea.StringValue(a.headers[strings.ToLower(name)]) }

func invoke(t *testing.T, cl *fc.Client, name string, c call) (answer, error) {
	t.Helper()
	req := &fc.InvokeFunctionRequest{}
	if c.qualifier != "" {
		req.Qualifier = tea.String(c.qualifier)
	}
	if c.payload != nil {
		b, err := json.Marshal(c.payload)
		if err != nil {
			t.Fatal(err)
		}
		req.Body = bytes.NewReader(b)
	}
	headers := c.headers
	if headers == nil {
		headers = &fc.InvokeFunctionHeaders{}
	}
	resp, err := cl.InvokeFunctionWithOptions(tea.String(name), req, headers, &dara.RuntimeOptions{})
	if err != nil {
		return answer{}, err
	}
	var body []byte
	if resp.Body != nil {
		if body, err = io.ReadAll(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	return answer{status: int(tea.Int32Value(resp.StatusCode)), headers: resp.Headers, body: body}, nil
}

func mustInvoke(t *testing.T, cl *fc.Client, name string, c call) answer {
	t.Helper()
	a, err := invoke(t, cl, name, c)
	if err != nil {
		t.Fatalf("InvokeFunction(%s, %+v): %v", name, c, err)
	}
	return a
}

// wantAPIError asserts err is the SDK's error for an FC error answer.
func wantAPIError(t *testing.T, err error, status int, code string) *tea.SDKError {
	t.Helper()
	var e *tea.SDKError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *tea.SDKError %d %s", err, err, status, code)
	}
	if tea.IntValue(e.StatusCode) != status || tea.StringValue(e.Code) != code {
		t.Fatalf("got %d %s (%s), want %d %s", tea.IntValue(e.StatusCode), tea.StringValue(e.Code), tea.StringValue(e.Message), status, code)
	}
	return e
}

// reply is what testdata/fn answers.
type reply struct {
	Msg       string `json:"msg"`
	Tag       string `json:"tag"`
	RequestID string `json:"requestId"`
	Qualifier string `json:"qualifier"`
	VersionID string `json:"versionId"`
}

func decode(t *testing.T, a answer) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return r
}

var requestIDShape = regexp.MustCompile(`^1-[0-9a-f]{8}-[0-9a-f]{24}$`)

func TestInvokeSync(t *testing.T) {
	c := newCloud(t)
	f, err := os.Open(fnBinary)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := fcapi.CodeChecksum(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", nil), CodeChecksum: sum})
	cl := client(t, c.l.Endpoint, c.cred)

	a := mustInvoke(t, cl, fnName, call{payload: map[string]string{"op": "echo", "msg": "hello"}})
	got := decode(t, a)
	if a.status != 200 || got.Msg != "hello" || got.Tag != "latest" {
		t.Fatalf("status %d, body %s", a.status, a.body)
	}
	id := a.header("X-Fc-Request-Id")
	if !requestIDShape.MatchString(id) || got.RequestID != id {
		t.Fatalf("X-Fc-Request-Id %q, the function saw %q", id, got.RequestID)
	}
	if got.Qualifier != "LATEST" || got.VersionID != "" {
		t.Fatalf("the function saw qualifier %q version %q, want LATEST and none", got.Qualifier, got.VersionID)
	}
	if h := a.header("X-Fc-Code-Checksum"); h != sum {
		t.Fatalf("X-Fc-Code-Checksum %q, want %q", h, sum)
	}
	for _, h := range []string{"X-Fc-Error-Type", "X-Fc-Log-Result"} {
		if v := a.header(h); v != "" {
			t.Fatalf("%s: %q on a plain success", h, v)
		}
	}

	calls := c.srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	want := fcapi.Call{RequestID: id, Function: fnName, Qualifier: "LATEST", InvocationType: "Sync", LogType: "None",
		AccessKeyID: c.cred.AccessKeyID, AccountID: account, Status: 200}
	if calls[0] != want {
		t.Fatalf("call %+v, want %+v", calls[0], want)
	}
}

func TestInvokePermanentKeyAndEmptyBody(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", nil)})
	// A permanent key signs without a token; no body sends no Content-Type
	// (reference §2.4's second vector). The function itself rejects the
	// empty payload: a function error, so the request did get through.
	cl := client(t, c.l.Endpoint, c.keys.AddAccessKey(account))
	a := mustInvoke(t, cl, fnName, call{})
	if a.status != 200 || a.header("X-Fc-Error-Type") != fcapi.ErrorTypeUnhandled {
		t.Fatalf("status %d, error type %q, body %s", a.status, a.header("X-Fc-Error-Type"), a.body)
	}
}

func TestInvokeFunctionError(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", nil)})
	cl := client(t, c.l.Endpoint, c.cred)

	// A function error is no Go error: 200, X-Fc-Error-Type, the runtime's
	// error JSON (reference §1.3).
	a := mustInvoke(t, cl, fnName, call{payload: map[string]string{"op": "error", "msg": "boom"}})
	if a.status != 200 || a.header("X-Fc-Error-Type") != "UnhandledInvocationError" {
		t.Fatalf("status %d, X-Fc-Error-Type %q", a.status, a.header("X-Fc-Error-Type"))
	}
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.ErrorMessage != "boom" || e.ErrorType != "errorString" {
		t.Fatalf("body %s (%v)", a.body, err)
	}
	if calls := c.srv.Calls(); calls[0].ErrorType != fcapi.ErrorTypeUnhandled {
		t.Fatalf("call %+v", calls[0])
	}
}

func TestInvokeLogTail(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", nil)})
	cl := client(t, c.l.Endpoint, c.cred)
	tail := &fc.InvokeFunctionHeaders{XFcLogType: tea.String("Tail")}

	a := mustInvoke(t, cl, fnName, call{payload: map[string]any{"op": "log", "msg": "short"}, headers: tail})
	id := a.header("X-Fc-Request-Id")
	log, err := base64.StdEncoding.DecodeString(a.header("X-Fc-Log-Result"))
	if err != nil {
		t.Fatalf("X-Fc-Log-Result %q: %v", a.header("X-Fc-Log-Result"), err)
	}
	want := "FC Invoke Start RequestId: " + id + "\nshort\nFC Invoke End RequestId: " + id + "\n"
	if string(log) != want {
		t.Fatalf("log %q, want %q", log, want)
	}

	// 200 lines of 50 bytes: only the last 4 KB come back.
	a = mustInvoke(t, cl, fnName, call{payload: map[string]any{"op": "log", "msg": "last", "lines": 200}, headers: tail})
	id = a.header("X-Fc-Request-Id")
	log, err = base64.StdEncoding.DecodeString(a.header("X-Fc-Log-Result"))
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 4096 || !strings.HasSuffix(string(log), "line 0199 "+strings.Repeat("x", 40)+"\nlast\nFC Invoke End RequestId: "+id+"\n") {
		t.Fatalf("%d bytes of log, ending %q", len(log), log[max(0, len(log)-120):])
	}

	// Without Tail, no log.
	a = mustInvoke(t, cl, fnName, call{payload: map[string]any{"op": "log", "msg": "quiet"},
		headers: &fc.InvokeFunctionHeaders{XFcLogType: tea.String("None")}})
	if v := a.header("X-Fc-Log-Result"); v != "" {
		t.Fatalf("X-Fc-Log-Result %q with None", v)
	}
}

func TestInvokeAsync(t *testing.T) {
	c := newCloud(t)
	done := make(chan fcsim.AsyncRecord, 1)
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", func(r fcsim.AsyncRecord) { done <- r })})
	cl := client(t, c.l.Endpoint, c.cred)

	a := mustInvoke(t, cl, fnName, call{payload: map[string]string{"op": "echo", "msg": "later"},
		headers: &fc.InvokeFunctionHeaders{XFcInvocationType: tea.String("Async"), XFcLogType: tea.String("Tail")}})
	if a.status != 202 || len(a.body) != 0 || a.header("X-Fc-Log-Result") != "" {
		t.Fatalf("status %d, body %q, log %q", a.status, a.body, a.header("X-Fc-Log-Result"))
	}
	id := a.header("X-Fc-Request-Id")
	select {
	case rec := <-done:
		if !rec.Success || rec.RequestID != id || decode(t, answer{body: rec.Result.Body}).Msg != "later" {
			t.Fatalf("async record %+v for request %s", rec, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the async invocation never ran")
	}
	if calls := c.srv.Calls(); calls[0].InvocationType != "Async" || calls[0].Status != 202 {
		t.Fatalf("call %+v", calls[0])
	}
}

// plainTarget is a Target without an async queue.
type plainTarget struct {
	mu   sync.Mutex
	seen []fcsim.InvokeOptions
}

func (p *plainTarget) Invoke(_ context.Context, payload []byte, opts fcsim.InvokeOptions) (fcsim.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, opts)
	return fcsim.Result{RequestID: opts.RequestID, Body: payload}, nil
}

func TestInvokeAsyncPlainTarget(t *testing.T) {
	c := newCloud(t)
	p := &plainTarget{}
	c.register(t, fcapi.Function{Name: "plain", Target: p})
	cl := client(t, c.l.Endpoint, c.cred)
	a := mustInvoke(t, cl, "plain", call{payload: "x", headers: &fc.InvokeFunctionHeaders{XFcInvocationType: tea.String("Async")}})
	c.srv.Wait()
	if a.status != 202 || len(p.seen) != 1 || p.seen[0].RequestID != a.header("X-Fc-Request-Id") {
		t.Fatalf("status %d, target saw %+v", a.status, p.seen)
	}
}

func TestInvokeQualifiers(t *testing.T) {
	c := newCloud(t)
	latest, prod := c.runtime(t, "latest", nil), c.runtime(t, "v3", nil)
	c.register(t, fcapi.Function{Name: fnName, Target: latest})
	c.register(t, fcapi.Function{Name: fnName, Qualifier: "prod", VersionID: "3", Target: prod})
	c.register(t, fcapi.Function{Name: fnName, Qualifier: "3", VersionID: "3", Target: prod})
	cl := client(t, c.l.Endpoint, c.cred)

	for _, q := range []struct{ qualifier, tag, seen, version string }{
		{"", "latest", "LATEST", ""},
		{"LATEST", "latest", "LATEST", ""},
		{"prod", "v3", "prod", "3"},
		{"3", "v3", "3", "3"},
	} {
		got := decode(t, mustInvoke(t, cl, fnName, call{qualifier: q.qualifier, payload: map[string]string{"op": "echo"}}))
		if got.Tag != q.tag || got.Qualifier != q.seen || got.VersionID != q.version {
			t.Errorf("qualifier %q: ran %q, which saw qualifier %q version %q; want %q, %q, %q",
				q.qualifier, got.Tag, got.Qualifier, got.VersionID, q.tag, q.seen, q.version)
		}
	}

	_, err := invoke(t, cl, fnName, call{qualifier: "staging", payload: "x"})
	wantAPIError(t, err, 404, "AliasNotFound")
	_, err = invoke(t, cl, fnName, call{qualifier: "7", payload: "x"})
	wantAPIError(t, err, 404, "VersionNotFound")
	// Sent as ?qualifier=a+b%2A~%2F, signed as a%20b%2A~%2F (reference
	// §2.3): the signature holds, and the value is refused for itself.
	_, err = invoke(t, cl, fnName, call{qualifier: "a b*~/", payload: "x"})
	wantAPIError(t, err, 400, "InvalidArgument")
}

func TestInvokeUnknownFunction(t *testing.T) {
	c := newCloud(t)
	cl := client(t, c.l.Endpoint, c.cred)
	// A name the SDK must percent-encode: the signature still holds.
	_, err := invoke(t, cl, "no such fn*", call{payload: "x"})
	e := wantAPIError(t, err, 404, "FunctionNotFound")
	if !strings.Contains(tea.StringValue(e.Message), "function 'no such fn*' does not exist.") {
		t.Fatalf("message %q", tea.StringValue(e.Message))
	}
	var data struct{ Code, Message, RequestId string }
	if err := json.Unmarshal([]byte(tea.StringValue(e.Data)), &data); err != nil || !requestIDShape.MatchString(data.RequestId) {
		t.Fatalf("error data %q (%v)", tea.StringValue(e.Data), err)
	}
}

func TestInvokeBadHeaders(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: "plain", Target: &plainTarget{}})
	cl := client(t, c.l.Endpoint, c.cred)
	_, err := invoke(t, cl, "plain", call{payload: "x", headers: &fc.InvokeFunctionHeaders{XFcInvocationType: tea.String("sync")}})
	wantAPIError(t, err, 400, "InvalidArgument")
	_, err = invoke(t, cl, "plain", call{payload: "x", headers: &fc.InvokeFunctionHeaders{XFcLogType: tea.String("All")}})
	wantAPIError(t, err, 400, "InvalidArgument")
	_, err = invoke(t, cl, "plain", call{payload: "x", headers: &fc.InvokeFunctionHeaders{
		XFcInvocationType: tea.String("Async"), XFcAsyncTaskId: tea.String("9-starts-with-a-digit")}})
	wantAPIError(t, err, 400, "InvalidArgument")
}

func TestInvokeCredentials(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: "plain", Target: &plainTarget{}})
	ok := call{payload: "x"}

	wrongSecret := c.cred
	wrongSecret.AccessKeySecret += "x"
	_, err := invoke(t, client(t, c.l.Endpoint, wrongSecret), "plain", ok)
	wantAPIError(t, err, 403, "SignatureNotMatch")

	noToken := c.cred
	noToken.SecurityToken = ""
	_, err = invoke(t, client(t, c.l.Endpoint, noToken), "plain", ok)
	wantAPIError(t, err, 400, "MissingRequiredHeader")

	otherToken := c.cred
	otherToken.SecurityToken = c.keys.IssueSTS(account, time.Hour).SecurityToken
	_, err = invoke(t, client(t, c.l.Endpoint, otherToken), "plain", ok)
	wantAPIError(t, err, 403, "InvalidSecurityToken.MismatchWithAccessKey")

	expired := c.keys.IssueSTS(account, -time.Minute)
	_, err = invoke(t, client(t, c.l.Endpoint, expired), "plain", ok)
	wantAPIError(t, err, 403, "InvalidSecurityToken.Expired")

	unknown := auth.Credential{AccessKeyID: "LTAI5tUNKNOWN", AccessKeySecret: "s"}
	_, err = invoke(t, client(t, c.l.Endpoint, unknown), "plain", ok)
	wantAPIError(t, err, 403, "InvalidAccessKeyID")

	// Another account's valid credential: no cross-account grant here.
	_, err = invoke(t, client(t, c.l.Endpoint, c.keys.IssueSTS("6543210987654321", time.Hour)), "plain", ok)
	wantAPIError(t, err, 403, "AccessDenied")

	// Only the last was authenticated (and then refused).
	calls := c.srv.Calls()
	for _, call := range calls[:len(calls)-1] {
		if call.AccessKeyID != "" || call.Status < 400 {
			t.Fatalf("a refused call was authenticated: %+v", call)
		}
	}
	if last := calls[len(calls)-1]; last.AccountID != "6543210987654321" || last.Code != "AccessDenied" {
		t.Fatalf("last call %+v", last)
	}
}

func TestInvokeStaleDateAndReusedNonce(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: "plain", Target: &plainTarget{}})
	cl := client(t, c.l.Endpoint, c.cred)
	pinned := func(date, nonce string) *fc.InvokeFunctionHeaders {
		// CommonHeaders are merged last and win (reference §2.4).
		return &fc.InvokeFunctionHeaders{CommonHeaders: map[string]*string{
			"x-acs-date": tea.String(date), "x-acs-signature-nonce": tea.String(nonce)}}
	}
	const layout = "2006-01-02T15:04:05Z"
	now := time.Now().UTC()

	_, err := invoke(t, cl, "plain", call{payload: "x", headers: pinned(now.Add(-16*time.Minute).Format(layout), "00000000000000000000000000000001")})
	wantAPIError(t, err, 403, "RequestTimeTooSkewed")
	_, err = invoke(t, cl, "plain", call{payload: "x", headers: pinned(now.Add(16*time.Minute).Format(layout), "00000000000000000000000000000002")})
	wantAPIError(t, err, 403, "RequestTimeTooSkewed")

	replay := pinned(now.Format(layout), "00000000000000000000000000000003")
	if a := mustInvoke(t, cl, "plain", call{payload: "x", headers: replay}); a.status != 200 {
		t.Fatalf("first use of the nonce: %d", a.status)
	}
	_, err = invoke(t, cl, "plain", call{payload: "x", headers: replay})
	wantAPIError(t, err, 400, "SignatureNonceUsed")
}

// tamperer is a man in the middle between the SDK and the emulator: edit
// changes each request on the way, keeping its Host.
func tamperer(t *testing.T, target string, edit func(*http.Request)) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		edit(pr.Out)
	}}
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}

func TestInvokeTampered(t *testing.T) {
	c := newCloud(t)
	p := &plainTarget{}
	c.register(t, fcapi.Function{Name: "plain", Target: p})
	c.register(t, fcapi.Function{Name: "other", Target: p})
	payload := call{payload: map[string]int{"amount": 1}}

	cases := []struct {
		name string
		edit func(*http.Request)
	}{
		{"body", func(r *http.Request) { setBody(r, `{"amount":1000}`) }},
		{"body and its hash", func(r *http.Request) {
			setBody(r, `{"amount":1000}`)
			sum := sha256.Sum256([]byte(`{"amount":1000}`))
			r.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
		}},
		{"function", func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "/plain/", "/other/", 1) }},
		{"qualifier", func(r *http.Request) { r.URL.RawQuery = "qualifier=prod" }},
		{"security token dropped", func(r *http.Request) { r.Header.Del("x-acs-security-token") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := client(t, tamperer(t, c.l.URL, tc.edit), c.cred)
			_, err := invoke(t, cl, "plain", payload)
			code := "SignatureNotMatch"
			if tc.name == "security token dropped" {
				code = "MissingRequiredHeader"
			}
			status := 403
			if code == "MissingRequiredHeader" {
				status = 400
			}
			wantAPIError(t, err, status, code)
		})
	}
	if len(p.seen) != 0 {
		t.Fatalf("a tampered request reached the function: %+v", p.seen)
	}

	// x-fc-* headers are not signed (reference §2.3): changing one is not
	// detected, as on the service.
	cl := client(t, tamperer(t, c.l.URL, func(r *http.Request) { r.Header.Set("x-fc-invocation-type", "Async") }), c.cred)
	if a := mustInvoke(t, cl, "plain", payload); a.status != 202 {
		t.Fatalf("status %d", a.status)
	}
	c.srv.Wait()
}

func TestInvokeProductionHost(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: "plain", Target: &plainTarget{}})
	viaProxy := func(host string) *fc.Client {
		return client(t, host, c.cred, func(cfg *openapiutil.Config) { cfg.HttpProxy = tea.String(c.l.URL) })
	}
	for _, host := range []string{account + "." + region + ".fc.aliyuncs.com", account + "." + region + "-internal.fc.aliyuncs.com"} {
		if a := mustInvoke(t, viaProxy(host), "plain", call{payload: "x"}); a.status != 200 {
			t.Fatalf("%s: status %d", host, a.status)
		}
	}
	_, err := invoke(t, viaProxy("6543210987654321."+region+".fc.aliyuncs.com"), "plain", call{payload: "x"})
	wantAPIError(t, err, 403, "AccessDenied")
	_, err = invoke(t, viaProxy(account+".cn-beijing.fc.aliyuncs.com"), "plain", call{payload: "x"})
	wantAPIError(t, err, 404, "FunctionNotFound")
}

// httpClient is a dara.HttpClient without the SDK's data race: its pooled
// client's Timeout is written on every request (tea v1.3.13 dara/core.go:326)
// while other requests read it, so concurrent calls through clients with the
// same endpoint and options fail -race.
type httpClient struct{ c *http.Client }

func (h httpClient) Call(r *http.Request, _ *http.Transport) (*http.Response, error) {
	return h.c.Do(r)
}

func TestInvokeConcurrent(t *testing.T) {
	c := newCloud(t)
	c.register(t, fcapi.Function{Name: fnName, Target: c.runtime(t, "latest", nil)})
	cl := client(t, c.l.Endpoint, c.cred, func(cfg *openapiutil.Config) {
		cfg.HttpClient = httpClient{&http.Client{Timeout: 30 * time.Second}}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			msg := fmt.Sprint("n", i)
			a, err := invoke(t, cl, fnName, call{payload: map[string]string{"op": "echo", "msg": msg}})
			if err != nil {
				errs <- err
				return
			}
			var r reply
			if err := json.Unmarshal(a.body, &r); err != nil || r.Msg != msg || r.RequestID != a.header("X-Fc-Request-Id") {
				errs <- fmt.Errorf("%s: body %s (%v)", msg, a.body, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(c.srv.Calls()); n != 8 {
		t.Fatalf("%d calls recorded", n)
	}
}

func TestWrongPath(t *testing.T) {
	c := newCloud(t)
	resp, err := http.Get(c.l.URL + "/2023-03-30/functions/x/invocations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code, Message, RequestId string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || e.Code != "PathNotSupported" || e.RequestId != resp.Header.Get("X-Fc-Request-Id") {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
}
