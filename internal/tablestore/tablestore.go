// Package tablestore keeps the handler's ledger in a Tablestore table with
// the official aliyun-tablestore-go-sdk.
//
// The table has two primary key columns, both strings:
//
//	pk  the SmartAGId (Tablestore partitions on it, so a fleet spreads out)
//	sk  "state#<VersionType>"                              one state row per gateway and version type
//	    "audit#<time, fixed width, UTC>#<VersionType>#<rev, 12 digits>#<event>"  the audit trail, insert-only
//
// and documents (rollouts, the kill switch) under pk = the document's id,
// sk = "doc", with a JSON body column. The attribute columns are those
// encode below writes (kind, state, rev, target, lease_until, …).
// CreateTable makes the table; deploy/README.md documents it.
//
// A state row is only ever written on a condition: insert-if-absent for the
// first revision, "rev equals the previous revision" for every other. The
// SDK's own retries are off: after a connection reset it resends a write, and
// the handler retries by error class instead. A conditional write that fails
// is read back, so a write whose reply was lost is recognised as ours.
//
// Rows are read strictly on what this version knows and tolerantly of what it
// does not: a known column of another type, a value out of range (a negative
// rev or attempt count, an unknown version type or state) or a missing
// required column is a *RowError naming the row and the column, never a zero
// value to act on; a column it does not know is ignored, since a newer
// version may add columns and a rollback must still read its rows.
package tablestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	ots "github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Options configure the ledger.
type Options struct {
	Endpoint    string // LEDGER_ENDPOINT, e.g. https://<instance>.<region>.ots.aliyuncs.com
	Instance    string // LEDGER_INSTANCE
	Table       string // LEDGER_TABLE
	Credentials handler.Credentials
	Timeout     time.Duration // one request; default 5 s
}

// DefaultTimeout bounds one request when Options.Timeout is not set.
const DefaultTimeout = 5 * time.Second

// Ledger implements handler.Ledger.
type Ledger struct {
	client    *ots.TableStoreClient
	transport *http.Transport // the client's own, for Close
	table     string
	scrub     *strings.Replacer
}

var _ handler.Ledger = (*Ledger)(nil)

// New returns the ledger client. It makes no call.
func New(o Options) (*Ledger, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tablestore: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	if o.Instance == "" || o.Table == "" {
		return nil, errors.New("tablestore: instance and table are required")
	}
	if o.Credentials.AccessKeyID == "" || o.Credentials.AccessKeySecret == "" {
		return nil, errors.New("tablestore: no credentials")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	cfg := ots.NewDefaultTableStoreConfig()
	cfg.RetryTimes = 0
	cfg.HTTPTimeout.ConnectionTimeout = min(o.Timeout, 3*time.Second)
	cfg.HTTPTimeout.RequestTimeout = o.Timeout
	// The SDK's own transport, with a handle to close it.
	tr := &http.Transport{
		MaxIdleConnsPerHost: cfg.MaxIdleConnections,
		IdleConnTimeout:     cfg.IdleConnTimeout,
		DialContext:         (&net.Dialer{Timeout: cfg.HTTPTimeout.ConnectionTimeout}).DialContext,
	}
	cfg.Transport = tr
	client := ots.NewClientWithConfig(strings.TrimSuffix(o.Endpoint, "/"), o.Instance, o.Credentials.AccessKeyID,
		o.Credentials.AccessKeySecret, o.Credentials.SecurityToken, cfg)
	var pairs []string
	for _, s := range []string{o.Credentials.AccessKeySecret, o.Credentials.SecurityToken} {
		if s != "" {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	return &Ledger{client: client, transport: tr, table: o.Table, scrub: strings.NewReplacer(pairs...)}, nil
}

// CreateTable creates the ledger table if it does not exist: two string
// primary key columns, one version per cell, no expiry.
func (l *Ledger) CreateTable(ctx context.Context) error {
	meta := new(ots.TableMeta)
	meta.TableName = l.table
	meta.AddPrimaryKeyColumn("pk", ots.PrimaryKeyType_STRING)
	meta.AddPrimaryKeyColumn("sk", ots.PrimaryKeyType_STRING)
	req := &ots.CreateTableRequest{TableMeta: meta, TableOption: &ots.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &ots.ReservedThroughput{}}
	err := call(ctx, l, "CreateTable", func() error { _, err := l.client.CreateTable(req); return err })
	var e *Error
	if errors.As(err, &e) && e.Code == "OTSObjectAlreadyExist" {
		return nil
	}
	return err
}

// call runs one SDK call, abandoning it at the context's deadline (the SDK
// takes no context), and turns its error into an *Error.
func call(ctx context.Context, l *Ledger, op string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		// The goroutine is ours: a panic in the SDK is this call's error,
		// not the end of the process.
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("the SDK panicked: %v", p)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		return l.wrap(op, err)
	case <-ctx.Done():
		return &Error{Op: op, Message: "abandoned at the deadline: " + ctx.Err().Error()}
	}
}

// Error is a failed Tablestore call.
type Error struct {
	Op, Code, Message string
	Status            int
	temporary         bool
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("tablestore %s: %s %s", e.Op, e.Code, e.Message)
	}
	return fmt.Sprintf("tablestore %s: %s", e.Op, e.Message)
}

// Temporary reports whether a retry may succeed.
func (e *Error) Temporary() bool { return e.temporary }

// Codes worth a retry: flow control, busy or unavailable servers, timeouts.
var temporaryCodes = map[string]bool{
	"OTSServerBusy": true, "OTSQuotaExhausted": true, "OTSRowOperationConflict": true, "OTSTimeout": true,
	"OTSInternalServerError": true, "OTSServerUnavailable": true, "OTSPartitionUnavailable": true,
	"OTSNotEnoughCapacityUnit": true, "OTSTableNotReady": true, "OTSStorageServerBusy": true,
}

func (l *Ledger) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Message: l.scrub.Replace(err.Error())}
	var oe *ots.OtsError
	if errors.As(err, &oe) {
		e.Code, e.Message, e.Status = oe.Code, l.scrub.Replace(oe.Message), oe.HttpStatusCode
		e.temporary = temporaryCodes[oe.Code] || (oe.Code == "" && oe.HttpStatusCode >= 500)
		return e
	}
	// Transport errors and answers that are not Tablestore errors (an HTML
	// 502) may pass: retry them.
	e.temporary = true
	return e
}

const (
	statePrefix = "state#"
	auditPrefix = "audit#"
	auditTime   = "2006-01-02T15:04:05.000000000Z"
)

func key(pk, sk string) *ots.PrimaryKey {
	k := new(ots.PrimaryKey)
	k.AddPrimaryKeyColumn("pk", pk)
	k.AddPrimaryKeyColumn("sk", sk)
	return k
}

// Get implements handler.Ledger with one BatchGetRow.
func (l *Ledger) Get(ctx context.Context, vt upgrade.VersionType, ids []string) (map[string]handler.Record, error) {
	out := map[string]handler.Record{}
	if len(ids) == 0 {
		return out, nil
	}
	crit := &ots.MultiRowQueryCriteria{TableName: l.table, MaxVersion: 1}
	for _, id := range ids {
		crit.AddRow(key(id, statePrefix+string(vt)))
	}
	req := &ots.BatchGetRowRequest{}
	req.MultiRowQueryCriteria = append(req.MultiRowQueryCriteria, crit)
	var resp *ots.BatchGetRowResponse
	err := call(ctx, l, "BatchGetRow", func() error { var err error; resp, err = l.client.BatchGetRow(req); return err })
	if err != nil {
		return nil, err
	}
	for _, row := range resp.TableToRowsResult[l.table] {
		if !row.IsSucceed {
			e := &Error{Op: "BatchGetRow", Message: "a row failed", temporary: true}
			if row.Error.Code != "" {
				e.Code, e.Message, e.temporary = row.Error.Code, row.Error.Message, temporaryCodes[row.Error.Code]
			}
			return nil, e
		}
		if row.PrimaryKey.PrimaryKeys == nil || len(row.Columns) == 0 {
			continue // no such row
		}
		rec, err := decode("BatchGetRow", row.PrimaryKey.PrimaryKeys, row.Columns)
		if err != nil {
			return nil, err
		}
		out[rec.Gateway] = rec
	}
	return out, nil
}

// putRevision writes revision rev of a row: only if absent for the first,
// only over revision rev-1 for any other. conditionFailed says the condition
// did not hold (the caller reads the row back); err is any other failure.
func (l *Ledger) putRevision(ctx context.Context, change *ots.PutRowChange, rev int64) (conditionFailed bool, err error) {
	if rev == 1 {
		change.SetCondition(ots.RowExistenceExpectation_EXPECT_NOT_EXIST)
	} else {
		change.SetCondition(ots.RowExistenceExpectation_EXPECT_EXIST)
		change.SetColumnCondition(ots.NewSingleColumnCondition("rev", ots.CT_EQUAL, rev-1))
	}
	err = call(ctx, l, "PutRow", func() error { _, err := l.client.PutRow(&ots.PutRowRequest{PutRowChange: change}); return err })
	var e *Error
	if errors.As(err, &e) && e.Code == "OTSConditionCheckFail" {
		return true, nil
	}
	return false, err
}

// Put implements handler.Ledger.
func (l *Ledger) Put(ctx context.Context, r handler.Record) error {
	change := &ots.PutRowChange{TableName: l.table, PrimaryKey: key(r.Gateway, statePrefix+string(r.VersionType))}
	for _, c := range encode(r) {
		change.AddColumn(c.ColumnName, c.Value)
	}
	if failed, err := l.putRevision(ctx, change, r.Rev); !failed {
		return err
	}
	// The condition failed: another writer came first, or an earlier attempt
	// of this very write succeeded and its reply was lost.
	got, gerr := l.Get(ctx, r.VersionType, []string{r.Gateway})
	if gerr != nil {
		return gerr
	}
	if cur, ok := got[r.Gateway]; ok && cur.Rev == r.Rev && cur.ClaimID == r.ClaimID && cur.State == r.State && cur.UpdatedAt.UnixMilli() == r.UpdatedAt.UnixMilli() {
		return nil
	}
	return handler.ErrConflict
}

// Scan implements handler.Ledger: one range over the table, filtered on the
// server to the state rows in the given states, page by page.
func (l *Ledger) Scan(ctx context.Context, states ...handler.State) ([]handler.Record, error) {
	if len(states) == 0 {
		return nil, nil
	}
	// OR takes two conditions or more: one state is a plain condition.
	var stateFilter ots.ColumnFilter = ots.NewSingleColumnCondition("state", ots.CT_EQUAL, string(states[0]))
	if len(states) > 1 {
		or := ots.NewCompositeColumnCondition(ots.LO_OR)
		for _, s := range states {
			or.AddFilter(ots.NewSingleColumnCondition("state", ots.CT_EQUAL, string(s)))
		}
		stateFilter = or
	}
	filter := ots.NewCompositeColumnCondition(ots.LO_AND)
	filter.AddFilter(ots.NewSingleColumnCondition("kind", ots.CT_EQUAL, "state"))
	filter.AddFilter(stateFilter)

	start, end := new(ots.PrimaryKey), new(ots.PrimaryKey)
	start.AddPrimaryKeyColumnWithMinValue("pk")
	start.AddPrimaryKeyColumnWithMinValue("sk")
	end.AddPrimaryKeyColumnWithMaxValue("pk")
	end.AddPrimaryKeyColumnWithMaxValue("sk")
	rows, err := l.rangeRows(ctx, start, end, filter, 0)
	if err != nil {
		return nil, err
	}
	out := make([]handler.Record, len(rows))
	for i, row := range rows {
		if out[i], err = decode("GetRange", row.PrimaryKey.PrimaryKeys, row.Columns); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rangeRows reads the rows from start (inclusive) to end (exclusive) that
// pass filter (nil: all), page after page, at most max of them (0: all).
func (l *Ledger) rangeRows(ctx context.Context, start, end *ots.PrimaryKey, filter ots.ColumnFilter, max int) ([]*ots.Row, error) {
	var rows []*ots.Row
	for start != nil && (max == 0 || len(rows) < max) {
		crit := &ots.RangeRowQueryCriteria{TableName: l.table, StartPrimaryKey: start, EndPrimaryKey: end,
			Direction: ots.FORWARD, MaxVersion: 1, Filter: filter}
		if max > 0 {
			crit.Limit = int32(min(max-len(rows), 5000))
		}
		var resp *ots.GetRangeResponse
		err := call(ctx, l, "GetRange", func() error {
			var err error
			resp, err = l.client.GetRange(&ots.GetRangeRequest{RangeRowQueryCriteria: crit})
			return err
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, resp.Rows...)
		start = resp.NextStartPrimaryKey
	}
	return rows, nil
}

// Audit implements handler.Ledger: an insert-only row under the gateway.
func (l *Ledger) Audit(ctx context.Context, e upgrade.AuditEntry) error {
	// The revision after the time: entries of one instant sort in the order
	// they were made, not by event name, and none overwrites another.
	sk := fmt.Sprintf("%s%s#%s#%012d#%s", auditPrefix, e.Time.UTC().Format(auditTime), e.VersionType, e.Rev, e.Event)
	change := &ots.PutRowChange{TableName: l.table, PrimaryKey: key(e.Gateway, sk)}
	change.SetCondition(ots.RowExistenceExpectation_IGNORE)
	for _, c := range encodeAudit(e) {
		change.AddColumn(c.ColumnName, c.Value)
	}
	return call(ctx, l, "PutRow", func() error { _, err := l.client.PutRow(&ots.PutRowRequest{PutRowChange: change}); return err })
}

// History implements handler.Ledger: the gateway's audit rows in order.
func (l *Ledger) History(ctx context.Context, gateway string) ([]upgrade.AuditEntry, error) {
	rows, err := l.rangeRows(ctx, key(gateway, auditPrefix), key(gateway, prefixEnd(auditPrefix)), nil, 0)
	if err != nil {
		return nil, err
	}
	var out []upgrade.AuditEntry
	for _, row := range rows {
		e, err := decodeAudit("GetRange", row.PrimaryKey.PrimaryKeys, row.Columns)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// encode lays a record out as columns. Times are epoch milliseconds, 0 for
// none.
func encode(r handler.Record) []ots.AttributeColumn {
	cols := []ots.AttributeColumn{
		{ColumnName: "kind", Value: "state"},
		{ColumnName: "region", Value: r.Region},
		{ColumnName: "model", Value: r.Model},
		{ColumnName: "version_type", Value: string(r.VersionType)},
		{ColumnName: "rev", Value: r.Rev},
		{ColumnName: "state", Value: string(r.State)},
		{ColumnName: "target", Value: r.Target},
		{ColumnName: "from_version", Value: r.From},
		{ColumnName: "serial", Value: r.Serial},
		{ColumnName: "claim_id", Value: r.ClaimID},
		{ColumnName: "lease_until", Value: ms(r.LeaseUntil)},
		{ColumnName: "verify_by", Value: ms(r.VerifyBy)},
		{ColumnName: "run_id", Value: r.RunID},
		{ColumnName: "request_id", Value: r.RequestID},
		{ColumnName: "api_request_id", Value: r.APIRequestID},
		{ColumnName: "trigger", Value: string(r.Trigger)},
		{ColumnName: "correlation_id", Value: r.Correlation},
		{ColumnName: "claimed_at", Value: ms(r.ClaimedAt)},
		{ColumnName: "requested_at", Value: ms(r.RequestedAt)},
		{ColumnName: "verified_at", Value: ms(r.VerifiedAt)},
		{ColumnName: "attempts", Value: int64(r.Attempts)},
		{ColumnName: "penalty_until", Value: ms(r.PenaltyUntil)},
		{ColumnName: "last_error", Value: r.LastError},
		{ColumnName: "updated_at", Value: ms(r.UpdatedAt)},
	}
	return cols
}

// ms is a time as epoch milliseconds, 0 for none (the zero time's own count
// is negative, which no reader takes).
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func encodeAudit(e upgrade.AuditEntry) []ots.AttributeColumn {
	return []ots.AttributeColumn{
		{ColumnName: "kind", Value: "audit"},
		{ColumnName: "version_type", Value: string(e.VersionType)},
		{ColumnName: "event", Value: string(e.Event)},
		{ColumnName: "target", Value: e.Target},
		{ColumnName: "from_version", Value: e.From},
		{ColumnName: "serial", Value: e.Serial},
		{ColumnName: "run_id", Value: e.RunID},
		{ColumnName: "request_id", Value: e.RequestID},
		{ColumnName: "api_request_id", Value: e.APIRequestID},
		{ColumnName: "trigger", Value: string(e.Trigger)},
		{ColumnName: "correlation_id", Value: e.Correlation},
		{ColumnName: "operator", Value: e.Operator},
		{ColumnName: "force", Value: e.Force},
		{ColumnName: "error", Value: e.Error},
		{ColumnName: "at", Value: ms(e.Time)},
		{ColumnName: "rev", Value: e.Rev},
	}
}

func encodeDoc(d handler.Doc) []ots.AttributeColumn {
	cols := []ots.AttributeColumn{
		{ColumnName: "kind", Value: "doc"},
		{ColumnName: "rev", Value: d.Rev},
		{ColumnName: "body", Value: string(d.Body)},
	}
	if d.Writer != "" {
		cols = append(cols, ots.AttributeColumn{ColumnName: "writer", Value: d.Writer})
	}
	return cols
}

// states are the values of a state row's state column. A state this version
// does not know (a newer one's) is an error, not a record to act on: it may
// mean an upgrade in flight that this version would call for again.
var states = []handler.State{handler.StateClaimed, handler.StateRequested, handler.StateVerified,
	handler.StateUnverified, handler.StateFailed, handler.StateReleased}

func decode(op string, pk []*ots.PrimaryKeyColumn, attrs []*ots.AttributeColumn) (handler.Record, error) {
	c := newRow(op, pk, attrs)
	c.kind("state")
	r := handler.Record{
		Gateway: c.pk, Region: c.str("region"), Model: c.str("model"), VersionType: c.versionType(),
		Rev: c.int("rev", 1, required), State: handler.State(c.string("state", required)), Target: c.str("target"),
		From: c.str("from_version"), Serial: c.str("serial"), ClaimID: c.str("claim_id"), LeaseUntil: c.time("lease_until"),
		VerifyBy: c.time("verify_by"), RunID: c.str("run_id"), RequestID: c.str("request_id"),
		APIRequestID: c.str("api_request_id"), Trigger: events.Trigger(c.str("trigger")),
		Correlation: c.str("correlation_id"), ClaimedAt: c.time("claimed_at"), RequestedAt: c.time("requested_at"),
		VerifiedAt: c.time("verified_at"), Attempts: int(c.int("attempts", 0, optional)), PenaltyUntil: c.time("penalty_until"),
		LastError: c.str("last_error"), UpdatedAt: c.time("updated_at"),
	}
	if c.err == nil && !slices.Contains(states, r.State) {
		c.fail("state", "holds %q, not a state this version knows", r.State)
	}
	if c.err == nil && c.sk != statePrefix+string(r.VersionType) {
		c.fail("version_type", "holds %q, but the row is %s", r.VersionType, c.sk)
	}
	if c.err != nil {
		return handler.Record{}, c.err
	}
	return r, nil
}

func decodeAudit(op string, pk []*ots.PrimaryKeyColumn, attrs []*ots.AttributeColumn) (upgrade.AuditEntry, error) {
	c := newRow(op, pk, attrs)
	c.kind("audit")
	e := upgrade.AuditEntry{
		Gateway: c.pk, VersionType: c.versionType(), Time: c.time("at"),
		// An event this version does not know is still history to show.
		Event: c.str("event"), Target: c.str("target"), From: c.str("from_version"),
		Serial: c.str("serial"), RunID: c.str("run_id"), RequestID: c.str("request_id"),
		APIRequestID: c.str("api_request_id"), Trigger: c.str("trigger"),
		Correlation: c.str("correlation_id"), Operator: c.str("operator"), Force: c.bool("force"), Error: c.str("error"),
		Rev: c.int("rev", 0, optional),
	}
	if c.err != nil {
		return upgrade.AuditEntry{}, c.err
	}
	return e, nil
}

func decodeDoc(op string, pk []*ots.PrimaryKeyColumn, attrs []*ots.AttributeColumn) (handler.Doc, error) {
	c := newRow(op, pk, attrs)
	c.kind("doc")
	d := handler.Doc{ID: c.pk, Rev: c.int("rev", 1, required), Body: []byte(c.string("body", required)), Writer: c.str("writer")}
	if c.err != nil {
		return handler.Doc{}, c.err
	}
	return d, nil
}

// RowError is a ledger row this version of the function cannot read: a
// column it knows holds another type or a value out of range, or one it needs
// is missing. Reading it again gives the same, so it is not temporary.
type RowError struct {
	Op      string // the call that read the row
	Key     string // its partition key: the gateway, or the document's id
	Sort    string // its sort key
	Column  string
	Problem string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("tablestore %s: row %s (%s) is unreadable: column %s %s", e.Op, e.Key, e.Sort, e.Column, e.Problem)
}

// row reads the attribute columns of one row strictly on what it knows and
// tolerant of what it does not: a newer version of the function may add
// columns, and a rollback must still read the row. The first problem is kept
// in err.
type row struct {
	op, pk, sk string
	cols       columns
	err        *RowError
}

const (
	optional = false
	required = true
)

func newRow(op string, pk []*ots.PrimaryKeyColumn, attrs []*ots.AttributeColumn) *row {
	r := &row{op: op, cols: attrs}
	for _, k := range pk {
		v, ok := k.Value.(string)
		switch {
		case k.ColumnName != "pk" && k.ColumnName != "sk":
			continue
		case !ok:
			r.fail(k.ColumnName, "(primary key) holds %s, want a string", typeName(k.Value))
		case k.ColumnName == "pk":
			r.pk = v
		default:
			r.sk = v
		}
	}
	return r
}

func (r *row) fail(column, format string, args ...any) {
	if r.err == nil {
		r.err = &RowError{Op: r.op, Key: r.pk, Sort: r.sk, Column: column, Problem: fmt.Sprintf(format, args...)}
	}
}

func (r *row) wrongType(column, want string) {
	r.fail(column, "holds %s, want %s", typeName(r.cols.get(column)), want)
}

func (r *row) value(name string, need bool) any {
	v := r.cols.get(name)
	if v == nil && need {
		r.fail(name, "is missing")
	}
	return v
}

func (r *row) str(name string) string { return r.string(name, optional) }

func (r *row) string(name string, need bool) string {
	v := r.value(name, need)
	s, ok := v.(string)
	if v != nil && !ok {
		r.wrongType(name, "a string")
	}
	return s
}

func (r *row) int(name string, min int64, need bool) int64 {
	v := r.value(name, need)
	n, ok := v.(int64)
	switch {
	case v != nil && !ok:
		r.wrongType(name, "an integer")
	case ok && n < min:
		r.fail(name, "holds %d, below %d", n, min)
	}
	return n
}

func (r *row) bool(name string) bool {
	v := r.value(name, optional)
	b, ok := v.(bool)
	if v != nil && !ok {
		r.wrongType(name, "a boolean")
	}
	return b
}

// maxMillis is the end of year 9999: a later time is no time this function
// wrote, and would hold a lease or a penalty for ever.
var maxMillis = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()

// time reads epoch milliseconds, 0 for none.
func (r *row) time(name string) time.Time {
	ms := r.int(name, 0, optional)
	if ms > maxMillis {
		r.fail(name, "holds %d, after the year 9999", ms)
	}
	if ms <= 0 || ms > maxMillis {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func (r *row) kind(want string) {
	if k := r.string("kind", required); r.err == nil && k != want {
		r.fail("kind", "holds %q, want %q", k, want)
	}
}

func (r *row) versionType() upgrade.VersionType {
	vt := upgrade.VersionType(r.string("version_type", required))
	if r.err == nil && !vt.Known() {
		r.fail("version_type", "holds %q, not Device or Dpi", vt)
	}
	return vt
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a double"
	case bool:
		return "a boolean"
	case []byte:
		return "binary"
	}
	return fmt.Sprintf("a %T", v)
}

type columns []*ots.AttributeColumn

// get returns the value of the named column, nil for none.
func (cs columns) get(name string) any {
	for _, c := range cs {
		if c.ColumnName == name {
			return c.Value
		}
	}
	return nil
}

const docKey = "doc"

// prefixEnd is the first string after every string that starts with p (an
// ASCII prefix): p with its last byte incremented, "audit#" → "audit$".
// prefixRange is the range of the rows whose partition key starts with
// prefix, every sort key included.
func prefixRange(prefix string) (start, end *ots.PrimaryKey) {
	start, end = new(ots.PrimaryKey), new(ots.PrimaryKey)
	start.AddPrimaryKeyColumn("pk", prefix)
	start.AddPrimaryKeyColumnWithMinValue("sk")
	end.AddPrimaryKeyColumn("pk", prefixEnd(prefix))
	end.AddPrimaryKeyColumnWithMaxValue("sk")
	return start, end
}

func prefixEnd(p string) string {
	return p[:len(p)-1] + string(p[len(p)-1]+1)
}

// GetDoc implements handler.Ledger.
func (l *Ledger) GetDoc(ctx context.Context, id string) (handler.Doc, bool, error) {
	crit := &ots.SingleRowQueryCriteria{TableName: l.table, PrimaryKey: key(id, docKey), MaxVersion: 1}
	var resp *ots.GetRowResponse
	err := call(ctx, l, "GetRow", func() error {
		var err error
		resp, err = l.client.GetRow(&ots.GetRowRequest{SingleRowQueryCriteria: crit})
		return err
	})
	if err != nil || len(resp.Columns) == 0 {
		return handler.Doc{}, false, err
	}
	d, err := decodeDoc("GetRow", resp.PrimaryKey.PrimaryKeys, resp.Columns)
	if err != nil {
		return handler.Doc{}, false, err
	}
	return d, true, nil
}

// PutDoc implements handler.Ledger: the revision rule of Put, and the same
// read-back after a failed condition.
func (l *Ledger) PutDoc(ctx context.Context, d handler.Doc) error {
	change := &ots.PutRowChange{TableName: l.table, PrimaryKey: key(d.ID, docKey)}
	for _, c := range encodeDoc(d) {
		change.AddColumn(c.ColumnName, c.Value)
	}
	if failed, err := l.putRevision(ctx, change, d.Rev); !failed {
		return err
	}
	cur, found, gerr := l.GetDoc(ctx, d.ID)
	if gerr != nil {
		return gerr
	}
	// Our own write, whose reply was lost: the same revision by the same
	// writer (the body alone may be another writer's, the same).
	if found && cur.Rev == d.Rev && cur.Writer == d.Writer && string(cur.Body) == string(d.Body) {
		return nil
	}
	return handler.ErrConflict
}

// ListDocs implements handler.Ledger: a range over the partition keys that
// start with prefix.
func (l *Ledger) ListDocs(ctx context.Context, prefix string) ([]handler.Doc, error) {
	start, end := prefixRange(prefix)
	rows, err := l.rangeRows(ctx, start, end, ots.NewSingleColumnCondition("kind", ots.CT_EQUAL, "doc"), 0)
	if err != nil {
		return nil, err
	}
	out := make([]handler.Doc, len(rows))
	for i, row := range rows {
		if out[i], err = decodeDoc("GetRange", row.PrimaryKey.PrimaryKeys, row.Columns); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Close closes the client's kept-alive connections; a call after it opens a
// new one. Under FC the credentials rotate and main makes a new client with
// them: the old one must not keep its connections for as long as the
// instance lives.
func (l *Ledger) Close() { l.transport.CloseIdleConnections() }
