package otssim_test

import (
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

const (
	instance = "sag-ledger"
	account  = "1234567890123456"
	ledger   = "ledger" // the table most tests use: PK (run STRING, gw STRING)
)

// env is one emulator served over real HTTP on loopback, with an STS
// credential, as the function gets under FC.
type env struct {
	t      *testing.T
	keys   *auth.Keyring
	keyNow *time.Time // the keyring's clock, for STS expiry
	mu     sync.Mutex
	cred   auth.Credential
	sim    *otssim.Server
	url    string
}

func newEnv(t *testing.T, opts otssim.Options) *env {
	t.Helper()
	now := time.Now()
	e := &env{t: t, keyNow: &now}
	e.keys = auth.NewKeyring(func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return *e.keyNow
	})
	e.cred = e.keys.IssueSTS(account, time.Hour)
	opts.Keyring = e.keys
	if opts.Instance == "" {
		opts.Instance = instance
	}
	e.sim = otssim.New(opts)
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// advanceKeyring moves the keyring's clock (STS expiry).
func (e *env) advanceKeyring(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*e.keyNow = e.keyNow.Add(d)
}

// config is the SDK's default configuration with retries retries: 0 shows
// every error, as the calling code sees it without the SDK's own retries.
func config(retries uint) *tablestore.TableStoreConfig {
	cfg := tablestore.NewDefaultTableStoreConfig()
	cfg.RetryTimes = retries
	cfg.HTTPTimeout.RequestTimeout = 10 * time.Second
	return cfg
}

// client is a real SDK client with the env's credential and no retries.
func (e *env) client() *tablestore.TableStoreClient { return e.clientWith(e.cred, config(0)) }

// retryingClient keeps the SDK's default retry policy (10 retries, 5 s).
func (e *env) retryingClient() *tablestore.TableStoreClient {
	return e.clientWith(e.cred, config(tablestore.NewDefaultTableStoreConfig().RetryTimes))
}

func (e *env) clientWith(c auth.Credential, cfg *tablestore.TableStoreConfig) *tablestore.TableStoreClient {
	return tablestore.NewClientWithConfig(e.url, instance, c.AccessKeyID, c.AccessKeySecret, c.SecurityToken, cfg)
}

// createLedger creates the ledger table through the emulator's helper.
func (e *env) createLedger() {
	e.t.Helper()
	err := e.sim.CreateTable(otssim.Table{Name: ledger, PrimaryKey: []otssim.KeyColumn{
		{Name: "run", Type: otssim.KeyString}, {Name: "gw", Type: otssim.KeyString},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
}

func pk(run, gw string) *tablestore.PrimaryKey {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", run)
	k.AddPrimaryKeyColumn("gw", gw)
	return k
}

// put writes a ledger row with IGNORE, failing the test on error.
func (e *env) put(c *tablestore.TableStoreClient, run, gw string, cols map[string]any) {
	e.t.Helper()
	if _, err := c.PutRow(putReq(run, gw, cols, tablestore.RowExistenceExpectation_IGNORE)); err != nil {
		e.t.Fatalf("PutRow(%s, %s): %v", run, gw, err)
	}
}

func putReq(run, gw string, cols map[string]any, exp tablestore.RowExistenceExpectation) *tablestore.PutRowRequest {
	ch := &tablestore.PutRowChange{TableName: ledger, PrimaryKey: pk(run, gw)}
	for name, v := range cols {
		ch.AddColumn(name, v)
	}
	ch.SetCondition(exp)
	return &tablestore.PutRowRequest{PutRowChange: ch}
}

// get reads a ledger row (latest versions), nil columns when it is missing.
func get(t *testing.T, c *tablestore.TableStoreClient, run, gw string) *tablestore.GetRowResponse {
	t.Helper()
	resp, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
		TableName: ledger, PrimaryKey: pk(run, gw), MaxVersion: 1}})
	if err != nil {
		t.Fatalf("GetRow(%s, %s): %v", run, gw, err)
	}
	return resp
}

// columns maps a response's columns by name (the newest version of each).
func columns(cols []*tablestore.AttributeColumn) map[string]any {
	m := map[string]any{}
	for _, c := range cols {
		if _, seen := m[c.ColumnName]; !seen {
			m[c.ColumnName] = c.Value
		}
	}
	return m
}

// otsErr asserts err is an OtsError with the code and HTTP status.
func otsErr(t *testing.T, err error, code string, status int) *tablestore.OtsError {
	t.Helper()
	var oe *tablestore.OtsError
	if !errors.As(err, &oe) {
		t.Fatalf("got error %v (%T), want %s", err, err, code)
	}
	if oe.Code != code || oe.HttpStatusCode != status {
		t.Fatalf("got %s %d %q, want %s %d", oe.Code, oe.HttpStatusCode, oe.Message, code, status)
	}
	return oe
}
