package sagsim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

const otherAccount = "9876543210987654"

// loadDemo reads testdata/fleets/demo.json afresh, so a test may change its copy.
func loadDemo(t *testing.T) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Load(filepath.Join("..", "..", "..", "testdata", "fleets", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// env is one emulator over the demo fleet (or another), served over real
// HTTP on loopback, with an STS credential of the fleet's account.
type env struct {
	t      *testing.T
	fleet  *fleet.Fleet
	keys   *auth.Keyring
	keyNow *time.Time // the keyring's clock, for STS expiry
	cred   auth.Credential
	clock  *clock.Sim
	sim    *sagsim.Server
	addr   string
	mu     sync.Mutex
	byReg  map[string]*smartag.Client
}

func newEnv(t *testing.T, opts sagsim.Options) *env {
	return newEnvWith(t, loadDemo(t), opts)
}

func newEnvWith(t *testing.T, f *fleet.Fleet, opts sagsim.Options) *env {
	t.Helper()
	now := time.Now()
	e := &env{t: t, fleet: f, keyNow: &now, clock: clock.NewSim(f.Start), byReg: map[string]*smartag.Client{}}
	e.keys = auth.NewKeyring(func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return *e.keyNow
	})
	e.cred = e.keys.IssueSTS(f.AccountID, time.Hour)
	opts.Keyring = e.keys
	if opts.Clock == nil {
		opts.Clock = e.clock
	}
	e.sim = sagsim.New(f, opts)
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	e.addr = strings.TrimPrefix(srv.URL, "http://")
	return e
}

// advanceKeyring moves the keyring's clock (STS expiry), not the devices'.
func (e *env) advanceKeyring(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*e.keyNow = e.keyNow.Add(d)
}

// newClient builds a real SDK client for the emulator: plain HTTP, no retry.
// A nil transport means the SDK's own.
func (e *env) newClient(region string, c auth.Credential, transport http.RoundTripper) *smartag.Client {
	e.t.Helper()
	cfg := sdk.NewConfig()
	cfg.AutoRetry = false
	cfg.MaxRetryTime = 0
	cfg.Scheme = "HTTP"
	cfg.Transport = transport
	var provider credentials.CredentialsProvider = credentials.NewStaticAKCredentialsProvider(c.AccessKeyID, c.AccessKeySecret)
	if c.SecurityToken != "" {
		provider = credentials.NewStaticSTSCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, c.SecurityToken)
	}
	cli, err := smartag.NewClientWithOptions(region, cfg, provider)
	if err != nil {
		e.t.Fatal(err)
	}
	cli.Domain = e.addr
	cli.SetNoProxy(`127\.0\.0\.1`) // a CI proxy must not see loopback calls
	cli.SetReadTimeout(10 * time.Second)
	return cli
}

// client returns the shared client of a region (tests that call it must not
// use it from several goroutines).
func (e *env) client(region string) *smartag.Client {
	if c := e.byReg[region]; c != nil {
		return c
	}
	c := e.newClient(region, e.cred, nil)
	e.byReg[region] = c
	return c
}

// find returns the first demo gateway that satisfies ok.
func (e *env) find(ok func(fleet.Gateway) bool) fleet.Gateway {
	e.t.Helper()
	for _, g := range e.fleet.Gateways {
		if ok(g) {
			return g
		}
	}
	e.t.Fatal("no gateway in the fleet fits")
	return fleet.Gateway{}
}

// byCase returns the first sag-1000 gateway of a case (the version-less and
// software cases have their own models).
func (e *env) byCase(c fleet.Case) fleet.Gateway {
	e.t.Helper()
	return e.find(func(g fleet.Gateway) bool {
		return g.Case == c && (g.HardwareVersion == "sag-1000" || c == fleet.CaseSoftware || c == fleet.CaseRecentRelease)
	})
}

func (e *env) update(g fleet.Gateway, versionType, code, sn string) (*smartag.UpdateSmartAccessGatewayVersionResponse, error) {
	req := smartag.CreateUpdateSmartAccessGatewayVersionRequest()
	req.SmartAGId, req.VersionType, req.VersionCode, req.SerialNumber = g.SmartAGID, versionType, code, sn
	return e.client(g.RegionID).UpdateSmartAccessGatewayVersion(req)
}

func (e *env) attribute(g fleet.Gateway) *smartag.DescribeSmartAccessGatewayAttributeResponse {
	e.t.Helper()
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.SmartAGId = g.SmartAGID
	resp, err := e.client(g.RegionID).DescribeSmartAccessGatewayAttribute(req)
	if err != nil {
		e.t.Fatalf("DescribeSmartAccessGatewayAttribute %s: %v", g.SmartAGID, err)
	}
	return resp
}

// listed returns the gateway's entry in DescribeSmartAccessGateways.
func (e *env) listed(g fleet.Gateway) smartag.SmartAccessGateway {
	e.t.Helper()
	req := smartag.CreateDescribeSmartAccessGatewaysRequest()
	req.SmartAGId = g.SmartAGID
	resp, err := e.client(g.RegionID).DescribeSmartAccessGateways(req)
	if err != nil {
		e.t.Fatalf("DescribeSmartAccessGateways %s: %v", g.SmartAGID, err)
	}
	if n := len(resp.SmartAccessGateways.SmartAccessGateway); n != 1 {
		e.t.Fatalf("DescribeSmartAccessGateways SmartAGId=%s: %d entries", g.SmartAGID, n)
	}
	return resp.SmartAccessGateways.SmartAccessGateway[0]
}

// serverError returns err as the SDK's ServerError, failing the test if it is not one.
func serverError(t *testing.T, err error) *sdkerrors.ServerError {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want an SDK ServerError, got %T: %v", err, err)
	}
	return se
}

// wantError checks that err is a ServerError with that HTTP status and Code.
func wantError(t *testing.T, err error, status int, code string) *sdkerrors.ServerError {
	t.Helper()
	se := serverError(t, err)
	if se.HttpStatus() != status || se.ErrorCode() != code {
		t.Fatalf("got %d %q (%s), want %d %q", se.HttpStatus(), se.ErrorCode(), se.Message(), status, code)
	}
	if se.RequestId() == "" {
		t.Errorf("error without a RequestId")
	}
	return se
}

// recorder is an http.RoundTripper that keeps a copy of every request. With
// hold set it does not send them, so a test can replay a request the server
// has never seen.
type recorder struct {
	mu   sync.Mutex
	hold bool
	reqs []captured
	next http.RoundTripper
}

type captured struct {
	method string
	url    string
	header http.Header
	body   []byte
}

var errHeld = errors.New("held by the recorder")

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, captured{req.Method, req.URL.String(), req.Header.Clone(), body})
	hold := r.hold
	r.mu.Unlock()
	if hold {
		return nil, errHeld
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) last(t *testing.T) captured {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("no request recorded")
	}
	return r.reqs[len(r.reqs)-1]
}

// send replays a request as plain HTTP and decodes the JSON answer.
func send(t *testing.T, method, url, contentType string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, resp.Header, m
}
