package otssim_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

// The SDK retries some errors by itself (see the package documentation).
// Tests that must see an error use e.client(), which has RetryTimes 0;
// e.retryingClient() keeps the default policy to show what it hides.

func TestThrottling(t *testing.T) {
	e := newEnv(t, otssim.Options{QPS: map[string]float64{"PutRow": 5, "ListTable": 1}})
	e.createLedger()
	c := e.client()
	var err error
	ok := 0
	for i := 0; err == nil && i < 1000; i++ {
		_, err = c.PutRow(putReq("run-1", fmt.Sprintf("sag-%d", i), map[string]any{"s": "x"}, tablestore.RowExistenceExpectation_IGNORE))
		if err == nil {
			ok++
		}
	}
	if oe := otsErr(t, err, "OTSServerBusy", http.StatusServiceUnavailable); oe.Message != "Server is busy." {
		t.Errorf("message %q", oe.Message)
	}
	if ok < 5 || e.sim.Throttled() != 1 || len(e.sim.Rows(ledger)) != ok {
		t.Fatalf("%d calls passed (burst 5), %d throttled, %d rows", ok, e.sim.Throttled(), len(e.sim.Rows(ledger)))
	}
	// The SDK retries OTSServerBusy for every action, with backoff for up to
	// 5 s: the limit lets a call through again within that.
	if _, err := e.retryingClient().PutRow(putReq("run-1", "sag-late", nil, tablestore.RowExistenceExpectation_IGNORE)); err != nil {
		t.Fatalf("retrying client: %v", err)
	}

	// Table operations over the limit answer OTSQuotaExhausted.
	for i := 0; err == nil || i == 0; i++ {
		if i == 1000 {
			t.Fatal("ListTable never throttled")
		}
		_, err = c.ListTable()
	}
	if oe := otsErr(t, err, "OTSQuotaExhausted", http.StatusForbidden); oe.Message != "Too frequent table operations." {
		t.Errorf("message %q", oe.Message)
	}
}

// putOutcomes writes 4×25 rows from 4 goroutines, each its own keys, and
// returns each key's outcome: "ok" or the error code.
func putOutcomes(t *testing.T, faults otssim.Faults) map[string]string {
	e := newEnv(t, otssim.Options{Faults: faults})
	e.createLedger()
	c := e.client()
	var mu sync.Mutex
	out := map[string]string{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				gw := fmt.Sprintf("sag-%d-%02d", g, i)
				_, err := c.PutRow(putReq("run-1", gw, map[string]any{"s": "x"}, tablestore.RowExistenceExpectation_IGNORE))
				outcome := "ok"
				var oe *tablestore.OtsError
				if errors.As(err, &oe) {
					outcome = oe.Code
				} else if err != nil {
					outcome = err.Error()
				}
				mu.Lock()
				out[gw] = outcome
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	written := 0
	for _, o := range out {
		if o == "ok" {
			written++
		}
	}
	if n := len(e.sim.Rows(ledger)); n != written {
		t.Fatalf("%d calls succeeded but %d rows were written", written, n)
	}
	return out
}

func TestFaultsReproducible(t *testing.T) {
	faults := otssim.Faults{Seed: 7, Rate: 0.3, Actions: []string{"PutRow"}}
	a, b := putOutcomes(t, faults), putOutcomes(t, faults)
	failed := 0
	for k, o := range a {
		if b[k] != o {
			t.Fatalf("%s: %s, then %s with the same seed", k, o, b[k])
		}
		switch o {
		case "ok":
		case "OTSServerBusy", "OTSInternalServerError", "OTSTimeout":
			failed++
		default:
			t.Fatalf("%s: unexpected outcome %s", k, o)
		}
	}
	if failed < 10 || failed > 50 {
		t.Fatalf("%d of 100 calls failed at rate 0.3", failed)
	}
	faults.Seed = 8
	c, same := putOutcomes(t, faults), true
	for k := range a {
		same = same && a[k] == c[k]
	}
	if same {
		t.Fatal("another seed failed the same calls")
	}
}

func TestInjectedFaultsAndSDKRetries(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	plain, retrying := e.client(), e.retryingClient()
	put := func(c *tablestore.TableStoreClient, gw string) error {
		_, err := c.PutRow(putReq("run-1", gw, map[string]any{"s": "x"}, tablestore.RowExistenceExpectation_IGNORE))
		return err
	}
	getRow := func(c *tablestore.TableStoreClient) error {
		_, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
			TableName: ledger, PrimaryKey: pk("run-1", "sag-a"), MaxVersion: 1}})
		return err
	}
	calls := func(action string) int { return e.sim.Calls()[action] }

	// Each kind as the caller sees it without the SDK's retries.
	for _, tc := range []struct {
		kind   otssim.FaultKind
		code   string
		status int
	}{
		{otssim.ServerBusy, "OTSServerBusy", http.StatusServiceUnavailable},
		{otssim.InternalServerError, "OTSInternalServerError", http.StatusInternalServerError},
		{otssim.Timeout, "OTSTimeout", http.StatusServiceUnavailable},
		{otssim.BadGateway, "OTSServerUnavailable", http.StatusBadGateway}, // the SDK's name for a non-protobuf 5xx
	} {
		e.sim.FailNext("PutRow", 1, tc.kind)
		otsErr(t, put(plain, "sag-"+string(tc.kind)), tc.code, tc.status)
	}
	e.sim.FailNext("PutRow", 1, otssim.Drop)
	if err := put(plain, "sag-drop"); err == nil || errors.As(err, new(*tablestore.OtsError)) {
		t.Fatalf("dropped connection: %v", err)
	}
	if rows := e.sim.Rows(ledger); len(rows) != 0 {
		t.Fatalf("failed calls wrote %v", rows)
	}

	// With its default policy the SDK retries OTSServerBusy and dropped
	// connections for every action…
	before := calls("PutRow")
	e.sim.FailNext("PutRow", 2, otssim.ServerBusy)
	e.sim.FailNext("PutRow", 1, otssim.Drop)
	if err := put(retrying, "sag-a"); err != nil {
		t.Fatal(err)
	}
	if got := calls("PutRow") - before; got != 4 {
		t.Fatalf("%d PutRow calls, want 4", got)
	}
	// …but OTSInternalServerError, OTSTimeout and a 502 page only for reads.
	before = calls("PutRow")
	e.sim.FailNext("PutRow", 1, otssim.InternalServerError)
	otsErr(t, put(retrying, "sag-b"), "OTSInternalServerError", http.StatusInternalServerError)
	if got := calls("PutRow") - before; got != 1 {
		t.Fatalf("%d PutRow calls, want 1", got)
	}
	before = calls("GetRow")
	e.sim.FailNext("GetRow", 1, otssim.InternalServerError)
	e.sim.FailNext("GetRow", 1, otssim.Timeout)
	e.sim.FailNext("GetRow", 1, otssim.BadGateway)
	if err := getRow(retrying); err != nil {
		t.Fatal(err)
	}
	if got := calls("GetRow") - before; got != 4 {
		t.Fatalf("%d GetRow calls, want 4", got)
	}
	if got := e.sim.Failures(); got["OTSServerBusy"] != 3 || got["Drop"] != 2 || got["BadGateway"] != 2 {
		t.Fatalf("Failures %v", got)
	}
}

// A LostReply applies the write and then drops the connection: the client
// sees an error although the row is stored.
func TestLostReply(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	e.sim.FailNext("PutRow", 1, otssim.LostReply)
	_, err := e.client().PutRow(putReq("run-1", "sag-a", map[string]any{"status": "requested"}, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST))
	if err == nil || errors.As(err, new(*tablestore.OtsError)) {
		t.Fatalf("lost reply: %v", err)
	}
	if rows := e.sim.Rows(ledger); len(rows) != 1 {
		t.Fatalf("rows %v, want the write applied", rows)
	}

	// The SDK resends a write whose reply was lost (an EOF): an insert-once
	// then comes back OTSConditionCheckFail although it succeeded.
	e.sim.FailNext("PutRow", 1, otssim.LostReply)
	_, err = e.retryingClient().PutRow(putReq("run-1", "sag-b", map[string]any{"status": "requested"}, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST))
	otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
	if rows := e.sim.Rows(ledger); len(rows) != 2 {
		t.Fatalf("rows %v, want both writes applied", rows)
	}
}

// A SlowReply applies the write and answers late: a client that gives up
// first sees a timeout, and the row is stored.
func TestSlowReply(t *testing.T) {
	e := newEnv(t, otssim.Options{Faults: otssim.Faults{SlowDelay: 700 * time.Millisecond}})
	e.createLedger()
	cfg := config(0)
	cfg.HTTPTimeout.RequestTimeout = 100 * time.Millisecond
	e.sim.FailNext("PutRow", 1, otssim.SlowReply)
	_, err := e.clientWith(e.cred, cfg).PutRow(putReq("run-1", "sag-a", map[string]any{"status": "requested"}, tablestore.RowExistenceExpectation_IGNORE))
	if err == nil || errors.As(err, new(*tablestore.OtsError)) {
		t.Fatalf("slow reply: %v", err)
	}
	if rows := e.sim.Rows(ledger); len(rows) != 1 {
		t.Fatalf("rows %v, want the write applied", rows)
	}
}

// N clients race to insert one row with EXPECT_NOT_EXIST: exactly one wins.
func TestConcurrentInsertOnce(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	const n = 16
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		c := e.client()
		wg.Go(func() {
			<-start
			_, errs[i] = c.PutRow(putReq("run-1", "sag-a", map[string]any{"winner": int64(i)}, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("clients %d and %d both inserted", winner, i)
			}
			winner = i
			continue
		}
		otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
	}
	if winner < 0 {
		t.Fatal("nobody inserted")
	}
	rows := e.sim.Rows(ledger)
	if v, _ := rows[0].Get("winner"); len(rows) != 1 || v != int64(winner) {
		t.Fatalf("rows %v, want winner %d", rows, winner)
	}
}
