package tablestore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ots "github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
	"github.com/sag-upgrade/sag-upgrade/internal/tablestore"
)

type env struct {
	sim    *otssim.Server
	ledger *tablestore.Ledger
	creds  handler.Credentials
	url    string
}

func setup(t *testing.T) *env {
	t.Helper()
	keys := auth.NewKeyring(nil)
	sim := otssim.New(otssim.Options{Keyring: keys, Instance: "sag-upgrade"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := keys.IssueSTS("1234567890123456", time.Hour)
	creds := handler.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
	l, err := tablestore.New(tablestore.Options{Endpoint: srv.URL, Instance: "sag-upgrade", Table: "ledger", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTable(context.Background()); err != nil {
		t.Fatalf("CreateTable is not idempotent: %v", err)
	}
	return &env{sim: sim, ledger: l, creds: creds, url: srv.URL}
}

var t0 = time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)

func record(id string, rev int64, state handler.State) handler.Record {
	return handler.Record{Gateway: id, Region: "cn-shanghai", VersionType: upgrade.VersionDevice, Rev: rev, State: state,
		Target: "2.3.1", From: "2.0.8", Serial: "sn-" + id, ClaimID: fmt.Sprintf("claim-%d", rev), LeaseUntil: t0.Add(30 * time.Minute),
		RunID: "run-1", RequestID: "req-1", Trigger: events.TriggerTimer, Correlation: "nightly", ClaimedAt: t0,
		Attempts: int(rev) % 3, UpdatedAt: t0.Add(time.Duration(rev) * time.Second)}
}

func TestPutGetRoundTripAndConflicts(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	want := record("sag-a", 1, handler.StateClaimed)
	if err := e.ledger.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := e.ledger.Get(ctx, upgrade.VersionDevice, []string{"sag-a", "sag-missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Get returned %d records", len(got))
	}
	g := got["sag-a"]
	if g.Rev != 1 || g.State != handler.StateClaimed || g.Target != "2.3.1" || g.Serial != "sn-sag-a" || g.ClaimID != "claim-1" ||
		!g.LeaseUntil.Equal(want.LeaseUntil) || g.Trigger != events.TriggerTimer || g.Correlation != "nightly" || g.Attempts != 1 ||
		!g.UpdatedAt.Equal(want.UpdatedAt) || !g.RequestedAt.IsZero() || g.Region != "cn-shanghai" {
		t.Fatalf("round trip: %+v", g)
	}
	// Another writer's first revision, and a revision that skips one, conflict.
	rival := record("sag-a", 1, handler.StateClaimed)
	rival.ClaimID = "rival"
	if err := e.ledger.Put(ctx, rival); !errors.Is(err, handler.ErrConflict) {
		t.Fatalf("a second rev 1: %v", err)
	}
	if err := e.ledger.Put(ctx, record("sag-a", 3, handler.StateRequested)); !errors.Is(err, handler.ErrConflict) {
		t.Fatalf("rev 3 after rev 1: %v", err)
	}
	if err := e.ledger.Put(ctx, record("sag-a", 2, handler.StateRequested)); err != nil {
		t.Fatalf("rev 2 after rev 1: %v", err)
	}
	if got, _ := e.ledger.Get(ctx, upgrade.VersionDevice, []string{"sag-a"}); got["sag-a"].Rev != 2 {
		t.Fatalf("after rev 2: %+v", got["sag-a"])
	}
	// Another version type is another record.
	if got, _ := e.ledger.Get(ctx, upgrade.VersionDpi, []string{"sag-a"}); len(got) != 0 {
		t.Fatalf("a Dpi record appeared: %+v", got)
	}
}

// Many workers race to claim one gateway: exactly one wins.
func TestOnlyOneClaimWins(t *testing.T) {
	e := setup(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, _ := tablestore.New(tablestore.Options{Endpoint: e.url, Instance: "sag-upgrade", Table: "ledger", Credentials: e.creds})
			r := record("sag-race", 1, handler.StateClaimed)
			r.ClaimID = fmt.Sprintf("worker-%d", i)
			err := l.Put(context.Background(), r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, handler.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 11 {
		t.Fatalf("%d wins, %d conflicts", wins, conflicts)
	}
}

// A write whose reply is lost looks failed; written again, its condition
// fails because it already happened. The adapter reads back and knows it.
func TestLostReplyIsRecognisedAsOurs(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	r := record("sag-a", 1, handler.StateClaimed)
	e.sim.FailNext("PutRow", 1, otssim.LostReply)
	err := e.ledger.Put(ctx, r)
	var te *tablestore.Error
	if !errors.As(err, &te) || !te.Temporary() {
		t.Fatalf("a lost reply: %v, want a temporary error", err)
	}
	if err := e.ledger.Put(ctx, r); err != nil {
		t.Fatalf("writing it again: %v, want success (it is our own write)", err)
	}
	other := r
	other.ClaimID = "someone-else"
	if err := e.ledger.Put(ctx, other); !errors.Is(err, handler.ErrConflict) {
		t.Fatalf("another writer's rev 1: %v, want a conflict", err)
	}
}

func TestFaultsAreTemporary(t *testing.T) {
	e := setup(t)
	for _, kind := range []otssim.FaultKind{otssim.ServerBusy, otssim.InternalServerError, otssim.Timeout, otssim.BadGateway, otssim.Drop} {
		e.sim.FailNext("BatchGetRow", 1, kind)
		_, err := e.ledger.Get(context.Background(), upgrade.VersionDevice, []string{"sag-a"})
		var te *tablestore.Error
		if !errors.As(err, &te) || !te.Temporary() {
			t.Errorf("%s: %v, want a temporary error", kind, err)
		}
	}
	// Condition failures and unknown tables are not worth a retry.
	l, _ := tablestore.New(tablestore.Options{Endpoint: e.url, Instance: "sag-upgrade", Table: "no_such_table", Credentials: e.creds})
	_, err := l.Get(context.Background(), upgrade.VersionDevice, []string{"sag-a"})
	var te *tablestore.Error
	if !errors.As(err, &te) || te.Temporary() || te.Code != "OTSObjectNotExist" {
		t.Fatalf("unknown table: %v", err)
	}
}

func TestScanFiltersOnTheServerAndPages(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for i := range 30 {
		state := []handler.State{handler.StateRequested, handler.StateVerified, handler.StateFailed}[i%3]
		r := record(fmt.Sprintf("sag-%02d", i), 1, state)
		if i < 15 && state == handler.StateRequested {
			// Large rows: a range answer carries a few MB at most, so the
			// scan must page.
			r.LastError = strings.Repeat("x", 1<<20)
		}
		if err := e.ledger.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		// Audit rows share the partition and must not come back as records.
		if err := e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: r.Gateway, VersionType: r.VersionType, Time: t0, Event: string(state), RunID: "run-1"}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := e.ledger.Scan(ctx, handler.StateRequested, handler.StateFailed)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 20 {
		t.Fatalf("%d records, want 20", len(recs))
	}
	for _, r := range recs {
		if r.State != handler.StateRequested && r.State != handler.StateFailed {
			t.Fatalf("a %s record", r.State)
		}
	}
	if n := e.sim.Calls()["GetRange"]; n < 2 {
		t.Fatalf("%d GetRange calls: the scan did not page", n)
	}
}

func TestAuditTrailInOrder(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	steps := []handler.State{handler.StateClaimed, handler.StateRequested, handler.StateUnverified, handler.StateClaimed}
	for i, s := range steps {
		err := e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: "sag-a", VersionType: upgrade.VersionDevice, Time: t0.Add(time.Duration(i) * time.Hour),
			Event: string(s), Target: "2.3.1", From: "2.0.8", RunID: fmt.Sprintf("run-%d", i), RequestID: "req", APIRequestID: "API-1",
			Trigger: string(events.TriggerTimer), Correlation: "nightly", Force: i == 3, Error: strings.Repeat("x", i),
			Operator: map[bool]string{true: "alice@example.com"}[i == 3]})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: "sag-b", VersionType: upgrade.VersionDevice, Time: t0, Event: string(handler.StateClaimed)})
	h, err := e.ledger.History(ctx, "sag-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(steps) {
		t.Fatalf("%d entries, want %d", len(h), len(steps))
	}
	for i, entry := range h {
		if entry.Event != string(steps[i]) || entry.RunID != fmt.Sprintf("run-%d", i) || !entry.Time.Equal(t0.Add(time.Duration(i)*time.Hour)) ||
			entry.Force != (i == 3) || entry.APIRequestID != "API-1" || entry.Trigger != string(events.TriggerTimer) ||
			entry.Operator != map[bool]string{true: "alice@example.com"}[i == 3] {
			t.Fatalf("entry %d: %+v", i, entry)
		}
	}
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	e := setup(t)
	creds := e.creds
	creds.AccessKeySecret = "not-the-secret"
	l, _ := tablestore.New(tablestore.Options{Endpoint: e.url, Instance: "sag-upgrade", Table: "ledger", Credentials: creds})
	_, err := l.Get(context.Background(), upgrade.VersionDevice, []string{"sag-a"})
	if err == nil || !strings.Contains(err.Error(), "OTSAuthFailed") {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, s := range []string{"not-the-secret", e.creds.SecurityToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes a secret: %v", err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	creds := handler.Credentials{AccessKeyID: "id", AccessKeySecret: "s"}
	for _, o := range []tablestore.Options{
		{Endpoint: "ots.example", Instance: "i", Table: "t", Credentials: creds},
		{Endpoint: "https://x", Table: "t", Credentials: creds},
		{Endpoint: "https://x", Instance: "i", Credentials: creds},
		{Endpoint: "https://x", Instance: "i", Table: "t"},
	} {
		if _, err := tablestore.New(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

func TestDocuments(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, found, err := e.ledger.GetDoc(ctx, "rollout#Device#sag-1000#2.3.1"); err != nil || found {
		t.Fatalf("a missing document: found %v, %v", found, err)
	}
	doc := handler.Doc{ID: "rollout#Device#sag-1000#2.3.1", Rev: 1, Body: []byte(`{"wave":0}`), Writer: "w1"}
	if err := e.ledger.PutDoc(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if err := e.ledger.PutDoc(ctx, handler.Doc{ID: doc.ID, Rev: 1, Body: []byte(`{"wave":9}`), Writer: "w2"}); !errors.Is(err, handler.ErrConflict) {
		t.Fatalf("another first revision: %v", err)
	}
	// Another writer's revision with the same body is another write: two
	// chunks that each take 3 from a night's count of 10 both write 13.
	if err := e.ledger.PutDoc(ctx, handler.Doc{ID: doc.ID, Rev: 1, Body: doc.Body, Writer: "w2"}); !errors.Is(err, handler.ErrConflict) {
		t.Fatalf("another writer's first revision with the same body: %v", err)
	}
	if err := e.ledger.PutDoc(ctx, doc); err != nil {
		t.Fatalf("the same write again (a lost reply): %v", err)
	}
	if err := e.ledger.PutDoc(ctx, handler.Doc{ID: doc.ID, Rev: 2, Body: []byte(`{"wave":1}`)}); err != nil {
		t.Fatal(err)
	}
	got, found, err := e.ledger.GetDoc(ctx, doc.ID)
	if err != nil || !found || got.Rev != 2 || string(got.Body) != `{"wave":1}` {
		t.Fatalf("GetDoc = %+v %v %v", got, found, err)
	}
	e.ledger.PutDoc(ctx, handler.Doc{ID: "rollout#Dpi#sag-1000#1.8.3", Rev: 1, Body: []byte(`{}`)})
	e.ledger.PutDoc(ctx, handler.Doc{ID: "control", Rev: 1, Body: []byte(`{"killSwitch":true}`)})
	if err := e.ledger.Put(ctx, record("rollout-lookalike", 1, handler.StateClaimed)); err != nil { // a state row, not a document
		t.Fatal(err)
	}
	docs, err := e.ledger.ListDocs(ctx, "rollout#")
	if err != nil || len(docs) != 2 {
		t.Fatalf("ListDocs = %+v, %v", docs, err)
	}
	for _, d := range docs {
		if !strings.HasPrefix(d.ID, "rollout#") {
			t.Fatalf("ListDocs returned %s", d.ID)
		}
	}
	// Documents are not records.
	if recs, err := e.ledger.Scan(ctx, handler.StateClaimed); err != nil || len(recs) != 1 || recs[0].Gateway != "rollout-lookalike" {
		t.Fatalf("Scan = %+v, %v", recs, err)
	}
}

// Entries of one instant (a frozen clock; a release and a new claim in one
// run) come back in the order they were made, by the record's revision, not
// by event name, and none overwrites another.
func TestAuditTrailOfOneInstantInRevisionOrder(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	steps := []handler.State{handler.StateReleased, handler.StateClaimed, handler.StateRequested, handler.StateReleased, handler.StateClaimed}
	for i, s := range steps {
		if err := e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: "sag-a", VersionType: upgrade.VersionDevice, Time: t0,
			Event: string(s), RunID: "run-1", Rev: int64(i + 3)}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := e.ledger.History(ctx, "sag-a")
	if err != nil {
		t.Fatal(err)
	}
	var got []handler.State
	for i, entry := range h {
		got = append(got, handler.State(entry.Event))
		if entry.Rev != int64(i+3) {
			t.Errorf("entry %d: rev %d, want %d", i, entry.Rev, i+3)
		}
	}
	if !slices.Equal(got, steps) {
		t.Fatalf("history %v, want %v", got, steps)
	}
}

// raw writes columns into an existing row with the SDK itself, as another
// version of the function (or a hand at the console) would.
func (e *env) raw(t *testing.T, pk, sk string, cols map[string]any) {
	t.Helper()
	cfg := ots.NewDefaultTableStoreConfig()
	cfg.RetryTimes = 0
	client := ots.NewClientWithConfig(e.url, "sag-upgrade", e.creds.AccessKeyID, e.creds.AccessKeySecret, e.creds.SecurityToken, cfg)
	key := new(ots.PrimaryKey)
	key.AddPrimaryKeyColumn("pk", pk)
	key.AddPrimaryKeyColumn("sk", sk)
	change := &ots.UpdateRowChange{TableName: "ledger", PrimaryKey: key}
	change.SetCondition(ots.RowExistenceExpectation_EXPECT_EXIST)
	for name, v := range cols {
		change.PutColumn(name, v)
	}
	if _, err := client.UpdateRow(&ots.UpdateRowRequest{UpdateRowChange: change}); err != nil {
		t.Fatalf("UpdateRow %s %s: %v", pk, sk, err)
	}
}

// auditKey is the sort key of the one audit entry a test writes at t0.
const auditKey = "audit#2026-11-22T18:00:00.000000000Z#Device#000000000001#claimed"

// A newer version of the function may add columns to every kind of row: this
// one reads such rows as before (a rollback must not break on them).
func TestRowsWithColumnsOfANewerVersionStillRead(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	want := record("sag-a", 1, handler.StateRequested)
	if err := e.ledger.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: "sag-a", VersionType: upgrade.VersionDevice, Time: t0,
		Event: string(handler.StateClaimed), RunID: "run-1", Rev: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.ledger.PutDoc(ctx, handler.Doc{ID: "rollout#Device#sag-1000#2.3.1", Rev: 1, Body: []byte(`{"wave":0}`)}); err != nil {
		t.Fatal(err)
	}
	extra := map[string]any{"wave": int64(3), "paused_by": "ops", "weight": 0.5, "priority_lane": true, "blob": []byte{1, 2}}
	e.raw(t, "sag-a", "state#Device", extra)
	e.raw(t, "sag-a", auditKey, extra)
	e.raw(t, "rollout#Device#sag-1000#2.3.1", "doc", extra)

	got, err := e.ledger.Get(ctx, upgrade.VersionDevice, []string{"sag-a"})
	if err != nil || got["sag-a"].Rev != 1 || got["sag-a"].ClaimID != want.ClaimID || !got["sag-a"].LeaseUntil.Equal(want.LeaseUntil) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if recs, err := e.ledger.Scan(ctx, handler.StateRequested); err != nil || len(recs) != 1 || recs[0].Serial != want.Serial {
		t.Fatalf("Scan = %+v, %v", recs, err)
	}
	if h, err := e.ledger.History(ctx, "sag-a"); err != nil || len(h) != 1 || h[0].RunID != "run-1" || !h[0].Time.Equal(t0) {
		t.Fatalf("History = %+v, %v", h, err)
	}
	if d, found, err := e.ledger.GetDoc(ctx, "rollout#Device#sag-1000#2.3.1"); err != nil || !found || string(d.Body) != `{"wave":0}` {
		t.Fatalf("GetDoc = %+v, %v, %v", d, found, err)
	}
	if docs, err := e.ledger.ListDocs(ctx, "rollout#"); err != nil || len(docs) != 1 || docs[0].Rev != 1 {
		t.Fatalf("ListDocs = %+v, %v", docs, err)
	}
	// Writing the next revision over such a row works too.
	if err := e.ledger.Put(ctx, record("sag-a", 2, handler.StateVerified)); err != nil {
		t.Fatal(err)
	}
}

// A column this version knows that holds another type, or a value out of
// range, makes the row unreadable: every read says which row and column,
// rather than taking a zero value (a rev of 0, no lease) and acting on it.
func TestUnreadableRowsAreErrorsNamingTheRowAndColumn(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		pk, sk string
		cols   map[string]any
		column string
	}{
		{"sag-a", "state#Device", map[string]any{"rev": "7"}, "rev"},
		{"sag-a", "state#Device", map[string]any{"rev": int64(-1)}, "rev"},
		{"sag-a", "state#Device", map[string]any{"attempts": int64(-3)}, "attempts"},
		{"sag-a", "state#Device", map[string]any{"lease_until": "tomorrow"}, "lease_until"},
		{"sag-a", "state#Device", map[string]any{"version_type": "Firmware"}, "version_type"},
		{"sag-a", "state#Device", map[string]any{"state": "paused"}, "state"},
		{"sag-a", "state#Device", map[string]any{"target": int64(231)}, "target"},
		{"sag-a", auditKey, map[string]any{"at": "yesterday"}, "at"},
		{"sag-a", auditKey, map[string]any{"force": "yes"}, "force"},
		{"rollout#Device#sag-1000#2.3.1", "doc", map[string]any{"body": []byte(`{}`)}, "body"},
		{"rollout#Device#sag-1000#2.3.1", "doc", map[string]any{"rev": 1.0}, "rev"},
	} {
		t.Run(tc.sk+"/"+tc.column, func(t *testing.T) {
			e := setup(t)
			if err := e.ledger.Put(ctx, record("sag-a", 1, handler.StateRequested)); err != nil {
				t.Fatal(err)
			}
			if err := e.ledger.Audit(ctx, upgrade.AuditEntry{Gateway: "sag-a", VersionType: upgrade.VersionDevice, Time: t0,
				Event: string(handler.StateClaimed), RunID: "run-1", Rev: 1}); err != nil {
				t.Fatal(err)
			}
			if err := e.ledger.PutDoc(ctx, handler.Doc{ID: "rollout#Device#sag-1000#2.3.1", Rev: 1, Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			e.raw(t, tc.pk, tc.sk, tc.cols)
			var reads map[string]error
			switch {
			case strings.HasPrefix(tc.sk, "state#"):
				_, getErr := e.ledger.Get(ctx, upgrade.VersionDevice, []string{"sag-a"})
				reads = map[string]error{"Get": getErr}
				if tc.column != "state" { // Scan asks the server for known states only
					_, reads["Scan"] = e.ledger.Scan(ctx, handler.StateRequested, handler.StateVerified)
				}
			case strings.HasPrefix(tc.sk, "audit#"):
				_, err := e.ledger.History(ctx, "sag-a")
				reads = map[string]error{"History": err}
			default:
				_, _, getErr := e.ledger.GetDoc(ctx, tc.pk)
				_, listErr := e.ledger.ListDocs(ctx, "rollout#")
				reads = map[string]error{"GetDoc": getErr, "ListDocs": listErr}
			}
			for read, err := range reads {
				var re *tablestore.RowError
				if !errors.As(err, &re) || re.Key != tc.pk || re.Column != tc.column ||
					!strings.Contains(err.Error(), tc.pk) || !strings.Contains(err.Error(), "column "+tc.column+" ") {
					t.Errorf("%s after %v: %v, want an error naming %s and column %s", read, tc.cols, err, tc.pk, tc.column)
				}
				var te interface{ Temporary() bool }
				if errors.As(err, &te) && te.Temporary() {
					t.Errorf("%s: an unreadable row is not worth a retry: %v", read, err)
				}
			}
		})
	}
}

// A client whose credentials were replaced is closed: its kept-alive
// connections must not stay open (under FC, credentials rotate and the
// function makes a new client, for as long as the instance lives).
func TestCloseClosesIdleConnections(t *testing.T) {
	keys := auth.NewKeyring(nil)
	sim := otssim.New(otssim.Options{Keyring: keys, Instance: "sag-upgrade"})
	srv := httptest.NewUnstartedServer(sim)
	openConns := cloudsim.CountConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	c := keys.IssueSTS("1234567890123456", time.Hour)
	l, err := tablestore.New(tablestore.Options{Endpoint: srv.URL, Instance: "sag-upgrade", Table: "ledger",
		Credentials: handler.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := l.Get(context.Background(), upgrade.VersionDevice, []string{fmt.Sprintf("sag-%d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if openConns() == 0 {
		t.Fatal("no connection kept alive after the calls: nothing to close")
	}
	l.Close()
	for deadline := time.Now().Add(10 * time.Second); openConns() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close", openConns())
		}
	}
	if _, err := l.Get(context.Background(), upgrade.VersionDevice, []string{"sag-0"}); err != nil {
		t.Fatalf("a call after Close: %v", err)
	}
}
