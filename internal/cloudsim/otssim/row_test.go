package otssim_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

func TestPutGetRoundTrip(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	want := map[string]any{
		"status":   "requested",
		"attempts": int64(3),
		"dryRun":   false,
		"share":    0.25,
		"digest":   []byte{0, 1, 2, 0xff},
	}
	e.put(c, "run-1", "sag-a", want)

	resp := get(t, c, "run-1", "sag-a")
	if len(resp.PrimaryKey.PrimaryKeys) != 2 || resp.PrimaryKey.PrimaryKeys[0].Value != "run-1" || resp.PrimaryKey.PrimaryKeys[1].Value != "sag-a" {
		t.Fatalf("primary key %v", resp.PrimaryKey.PrimaryKeys)
	}
	got := columns(resp.Columns)
	if len(got) != len(want) {
		t.Fatalf("columns %v, want %v", got, want)
	}
	for name, v := range want {
		if b, ok := v.([]byte); ok {
			if !bytes.Equal(got[name].([]byte), b) {
				t.Errorf("%s = %v, want %v", name, got[name], v)
			}
		} else if got[name] != v {
			t.Errorf("%s = %v (%T), want %v (%T)", name, got[name], got[name], v, v)
		}
	}
	for _, col := range resp.Columns {
		if col.Timestamp <= 0 {
			t.Errorf("%s has no timestamp", col.ColumnName)
		}
	}
	// Columns come back sorted by name, as the service stores them.
	for i := 1; i < len(resp.Columns); i++ {
		if resp.Columns[i-1].ColumnName >= resp.Columns[i].ColumnName {
			t.Fatalf("columns out of order: %s before %s", resp.Columns[i-1].ColumnName, resp.Columns[i].ColumnName)
		}
	}

	// The test's view of the table agrees.
	rows := e.sim.Rows(ledger)
	if len(rows) != 1 {
		t.Fatalf("Rows = %v", rows)
	}
	if v, _ := rows[0].Get("attempts"); v != int64(3) {
		t.Errorf("Rows: attempts = %v", v)
	}
	if v, _ := rows[0].Get("gw"); v != "sag-a" {
		t.Errorf("Rows: gw = %v", v)
	}

	// PutRow replaces the whole row.
	e.put(c, "run-1", "sag-a", map[string]any{"status": "verified"})
	if got := columns(get(t, c, "run-1", "sag-a").Columns); len(got) != 1 || got["status"] != "verified" {
		t.Fatalf("after the second PutRow: %v", got)
	}

	// columns_to_get selects.
	q := &tablestore.SingleRowQueryCriteria{TableName: ledger, PrimaryKey: pk("run-1", "sag-a"), MaxVersion: 1, ColumnsToGet: []string{"nope"}}
	sel, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: q})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.Columns) != 0 || len(sel.PrimaryKey.PrimaryKeys) != 0 {
		t.Fatalf("a row with none of the columns to get came back: %+v", sel)
	}

	// A missing row reads as an empty answer, not an error.
	if miss := get(t, c, "run-1", "sag-zzz"); len(miss.PrimaryKey.PrimaryKeys) != 0 || len(miss.Columns) != 0 {
		t.Fatalf("missing row: %+v", miss)
	}
}

func TestUpdateRow(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"status": "planned", "reason": "outside_window", "rev": int64(1)})

	ch := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	ch.PutColumn("status", "requested")
	ch.DeleteColumn("reason")
	ch.IncrementColumn("rev", 1)
	ch.IncrementColumn("tries", 5) // a missing column starts from 0
	ch.SetReturnIncrementValue()
	ch.AppendIncrementColumnToReturn("rev")
	resp, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Columns) != 1 || resp.Columns[0].ColumnName != "rev" || resp.Columns[0].Value != int64(2) {
		t.Fatalf("returned columns %+v, want rev=2", resp.Columns)
	}
	got := columns(get(t, c, "run-1", "sag-a").Columns)
	want := map[string]any{"status": "requested", "rev": int64(2), "tries": int64(5)}
	if len(got) != len(want) {
		t.Fatalf("after UpdateRow: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after UpdateRow: %v, want %v", got, want)
		}
	}

	// EXPECT_EXIST on a missing row fails and creates nothing.
	miss := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-b")}
	miss.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	miss.PutColumn("status", "requested")
	_, err = c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: miss})
	otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
	if n := len(e.sim.Rows(ledger)); n != 1 {
		t.Fatalf("%d rows after a failed update", n)
	}

	// Incrementing a string is refused.
	inc := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	inc.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	inc.IncrementColumn("status", 1)
	_, err = c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: inc})
	otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest)

	// DeleteRow, then the row is gone.
	del := &tablestore.DeleteRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	del.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	if _, err := c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: del}); err != nil {
		t.Fatal(err)
	}
	if rows := e.sim.Rows(ledger); len(rows) != 0 {
		t.Fatalf("rows after DeleteRow: %v", rows)
	}
	_, err = c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: del})
	otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
}

func TestExpectNotExist(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	if _, err := c.PutRow(putReq("run-1", "sag-a", map[string]any{"status": "requested"}, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST)); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutRow(putReq("run-1", "sag-a", map[string]any{"status": "failed"}, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST))
	oe := otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
	if oe.Message != "Condition check failed." || oe.RequestId == "" {
		t.Fatalf("error %+v", oe)
	}
	if got := columns(get(t, c, "run-1", "sag-a").Columns); got["status"] != "requested" {
		t.Fatalf("the failed put changed the row: %v", got)
	}
}

// condPut sets rev with UpdateRow (the other columns stay) under a column
// condition.
func condPut(c *tablestore.TableStoreClient, cond tablestore.ColumnFilter, rev int64) error {
	ch := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	ch.SetColumnCondition(cond)
	ch.PutColumn("rev", rev)
	_, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch})
	return err
}

func revIs(rev int64, filterIfMissing bool) *tablestore.SingleColumnCondition {
	cond := tablestore.NewSingleColumnCondition("rev", tablestore.CT_EQUAL, rev)
	cond.FilterIfMissing = filterIfMissing
	cond.LatestVersionOnly = true
	return cond
}

func TestColumnCondition(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()

	// On a missing row the column is missing: FilterIfMissing decides.
	otsErr(t, condPut(c, revIs(3, true), 3), "OTSConditionCheckFail", http.StatusForbidden)
	if err := condPut(c, revIs(3, false), 3); err != nil {
		t.Fatalf("missing column with FilterIfMissing false: %v", err)
	}
	// rev is 3 now: "rev == 3" passes and moves it to 4, then fails.
	if err := condPut(c, revIs(3, true), 4); err != nil {
		t.Fatalf("rev == 3 on rev 3: %v", err)
	}
	otsErr(t, condPut(c, revIs(3, true), 5), "OTSConditionCheckFail", http.StatusForbidden)
	if got := columns(get(t, c, "run-1", "sag-a").Columns); got["rev"] != int64(4) {
		t.Fatalf("rev = %v, want 4", got["rev"])
	}

	// Every comparator, against rev 4.
	for _, tc := range []struct {
		op   tablestore.ComparatorType
		with int64
		pass bool
	}{
		{tablestore.CT_EQUAL, 4, true}, {tablestore.CT_EQUAL, 5, false},
		{tablestore.CT_NOT_EQUAL, 5, true}, {tablestore.CT_NOT_EQUAL, 4, false},
		{tablestore.CT_GREATER_THAN, 3, true}, {tablestore.CT_GREATER_THAN, 4, false},
		{tablestore.CT_GREATER_EQUAL, 4, true}, {tablestore.CT_GREATER_EQUAL, 5, false},
		{tablestore.CT_LESS_THAN, 5, true}, {tablestore.CT_LESS_THAN, 4, false},
		{tablestore.CT_LESS_EQUAL, 4, true}, {tablestore.CT_LESS_EQUAL, 3, false},
	} {
		cond := tablestore.NewSingleColumnCondition("rev", tc.op, tc.with)
		cond.FilterIfMissing = true
		err := condPut(c, cond, 4)
		if tc.pass && err != nil {
			t.Errorf("rev(4) %v %d: %v", tc.op, tc.with, err)
		}
		if !tc.pass {
			otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
		}
	}
	// A value of another type is never equal.
	otsErr(t, condPut(c, tablestore.NewSingleColumnCondition("rev", tablestore.CT_EQUAL, "4"), 4), "OTSConditionCheckFail", http.StatusForbidden)

	// PutRow takes the same conditions.
	put := func(cond tablestore.ColumnFilter) error {
		req := putReq("run-1", "sag-a", map[string]any{"rev": int64(5)}, tablestore.RowExistenceExpectation_EXPECT_EXIST)
		req.PutRowChange.SetColumnCondition(cond)
		_, err := c.PutRow(req)
		return err
	}
	otsErr(t, put(revIs(3, true)), "OTSConditionCheckFail", http.StatusForbidden)
	if err := put(revIs(4, true)); err != nil {
		t.Fatalf("PutRow with rev == 4 on rev 4: %v", err)
	}
}

func TestCompositeCondition(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"rev": int64(4), "status": "requested"})
	status := func(s string) *tablestore.SingleColumnCondition {
		return tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, s)
	}
	composite := func(op tablestore.LogicalOperator, subs ...tablestore.ColumnFilter) *tablestore.CompositeColumnValueFilter {
		f := tablestore.NewCompositeColumnCondition(op)
		for _, s := range subs {
			f.AddFilter(s)
		}
		return f
	}
	for _, tc := range []struct {
		name string
		cond tablestore.ColumnFilter
		pass bool
	}{
		{"rev==4 AND status==requested", composite(tablestore.LO_AND, revIs(4, true), status("requested")), true},
		{"rev==4 AND status==failed", composite(tablestore.LO_AND, revIs(4, true), status("failed")), false},
		{"rev==9 OR status==requested", composite(tablestore.LO_OR, revIs(9, true), status("requested")), true},
		{"rev==9 OR status==failed", composite(tablestore.LO_OR, revIs(9, true), status("failed")), false},
		{"NOT rev==9", composite(tablestore.LO_NOT, revIs(9, true)), true},
		{"NOT (rev==4 AND status==requested)", composite(tablestore.LO_NOT, composite(tablestore.LO_AND, revIs(4, true), status("requested"))), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := condPut(c, tc.cond, 4)
			if tc.pass && err != nil {
				t.Fatal(err)
			}
			if !tc.pass {
				otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
			}
		})
	}
	// NOT takes exactly one condition.
	otsErr(t, condPut(c, composite(tablestore.LO_NOT, revIs(4, true), status("x")), 4), "OTSParameterInvalid", http.StatusBadRequest)
}

func TestGetRowFilter(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"status": "failed", "rev": int64(2)})
	read := func(f tablestore.ColumnFilter, cols ...string) *tablestore.GetRowResponse {
		resp, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
			TableName: ledger, PrimaryKey: pk("run-1", "sag-a"), MaxVersion: 1, Filter: f, ColumnsToGet: cols}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := read(tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, "failed")); len(r.Columns) != 2 {
		t.Fatalf("matching filter: %+v", r.Columns)
	}
	if r := read(tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, "requested")); len(r.PrimaryKey.PrimaryKeys) != 0 {
		t.Fatalf("filtered-out row came back: %+v", r)
	}
	// The filter sees only the columns read: status is missing from a read
	// of rev alone, so FilterIfMissing drops the row.
	f := tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, "failed")
	f.FilterIfMissing = true
	if r := read(f, "rev"); len(r.PrimaryKey.PrimaryKeys) != 0 {
		t.Fatalf("filter on an unread column kept the row: %+v", r)
	}
}

func TestVersions(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	err := e.sim.CreateTable(otssim.Table{Name: ledger, MaxVersions: 3, PrimaryKey: []otssim.KeyColumn{
		{Name: "run", Type: otssim.KeyString}, {Name: "gw", Type: otssim.KeyString}}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	for ts := int64(1000); ts <= 4000; ts += 1000 {
		ch := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
		ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
		ch.PutColumnWithTimestamp("status", "v"+string(rune('0'+ts/1000)), ts)
		if _, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch}); err != nil {
			t.Fatal(err)
		}
	}
	versions := func(q *tablestore.SingleRowQueryCriteria) []int64 {
		t.Helper()
		q.TableName, q.PrimaryKey = ledger, pk("run-1", "sag-a")
		resp, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: q})
		if err != nil {
			t.Fatal(err)
		}
		var ts []int64
		for _, col := range resp.Columns {
			ts = append(ts, col.Timestamp)
		}
		return ts
	}
	// Three versions are kept, newest first.
	if got := versions(&tablestore.SingleRowQueryCriteria{MaxVersion: 10}); len(got) != 3 || got[0] != 4000 || got[2] != 2000 {
		t.Fatalf("versions %v, want [4000 3000 2000]", got)
	}
	if got := versions(&tablestore.SingleRowQueryCriteria{MaxVersion: 2}); len(got) != 2 || got[1] != 3000 {
		t.Fatalf("max 2 versions: %v", got)
	}
	if got := versions(&tablestore.SingleRowQueryCriteria{TimeRange: &tablestore.TimeRange{Specific: 3000}}); len(got) != 1 || got[0] != 3000 {
		t.Fatalf("specific time 3000: %v", got)
	}
	if got := versions(&tablestore.SingleRowQueryCriteria{TimeRange: &tablestore.TimeRange{Start: 2000, End: 4000}}); len(got) != 2 {
		t.Fatalf("time range [2000, 4000): %v", got)
	}

	// latest_version_only false passes on an older version.
	older := tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, "v2")
	older.FilterIfMissing, older.LatestVersionOnly = true, false
	ch := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	ch.SetColumnCondition(older)
	ch.DeleteColumnWithTimestamp("status", 3000)
	if _, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch}); err != nil {
		t.Fatalf("condition on an older version: %v", err)
	}
	if got := versions(&tablestore.SingleRowQueryCriteria{MaxVersion: 10}); len(got) != 2 || got[0] != 4000 || got[1] != 2000 {
		t.Fatalf("after deleting version 3000: %v", got)
	}
	older.LatestVersionOnly = true
	_, err = c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch})
	otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)
}

func TestPrimaryKeyChecks(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	get := func(k *tablestore.PrimaryKey) error {
		_, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
			TableName: ledger, PrimaryKey: k, MaxVersion: 1}})
		return err
	}
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", "r")
	oe := otsErr(t, get(k), "OTSInvalidPK", http.StatusBadRequest)
	if oe.Message != "Validate PK size fail. Input: 1, Meta: 2." {
		t.Errorf("message %q", oe.Message)
	}
	k.AddPrimaryKeyColumn("gateway", "g")
	if oe := otsErr(t, get(k), "OTSInvalidPK", http.StatusBadRequest); oe.Message != "Validate PK name fail. Input: gateway, Meta: gw." {
		t.Errorf("message %q", oe.Message)
	}
	k = &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", "r")
	k.AddPrimaryKeyColumn("gw", int64(7))
	otsErr(t, get(k), "OTSInvalidPK", http.StatusBadRequest)

	// An unknown table.
	_, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
		TableName: "nope", PrimaryKey: pk("r", "g"), MaxVersion: 1}})
	if oe := otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound); oe.Message != "Requested table does not exist." {
		t.Errorf("message %q", oe.Message)
	}
	_, err = c.PutRow(&tablestore.PutRowRequest{PutRowChange: &tablestore.PutRowChange{
		TableName: "nope", PrimaryKey: pk("r", "g"), Condition: &tablestore.RowCondition{}}})
	otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound)
}

func TestAutoIncrement(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	err := e.sim.CreateTable(otssim.Table{Name: "events", PrimaryKey: []otssim.KeyColumn{
		{Name: "run", Type: otssim.KeyString}, {Name: "seq", Type: otssim.KeyInteger, AutoIncrement: true}}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	var seqs []int64
	for range 3 {
		k := &tablestore.PrimaryKey{}
		k.AddPrimaryKeyColumn("run", "r")
		k.AddPrimaryKeyColumnWithAutoIncrement("seq")
		ch := &tablestore.PutRowChange{TableName: "events", PrimaryKey: k}
		ch.AddColumn("e", "x")
		ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
		ch.SetReturnPk()
		resp, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: ch})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, resp.PrimaryKey.PrimaryKeys[1].Value.(int64))
	}
	if !(seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Fatalf("auto-increment values %v do not increase", seqs)
	}
	if n := len(e.sim.Rows("events")); n != 3 {
		t.Fatalf("%d rows", n)
	}
}

// Cell timestamps follow Options.Clock, so a simulated clock gives
// predictable versions.
func TestTimestampsFollowClock(t *testing.T) {
	start := time.Date(2024, 3, 1, 2, 0, 0, 0, time.UTC)
	clk := clock.NewSim(start)
	e := newEnv(t, otssim.Options{Clock: clk})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"status": "requested"})
	clk.Advance(time.Minute)
	ch := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-a")}
	ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	ch.IncrementColumn("tries", 1)
	if _, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: ch}); err != nil {
		t.Fatal(err)
	}
	ts := map[string]int64{}
	for _, col := range get(t, c, "run-1", "sag-a").Columns {
		ts[col.ColumnName] = col.Timestamp
	}
	if ts["status"] != start.UnixMilli() || ts["tries"] != start.Add(time.Minute).UnixMilli() {
		t.Fatalf("timestamps %v, want status at %d and tries a minute later", ts, start.UnixMilli())
	}
}
