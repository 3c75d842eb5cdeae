package otssim_test

import (
	"net/http"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

func TestBatchGetRow(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"status": "requested"})

	badType := &tablestore.PrimaryKey{}
	badType.AddPrimaryKeyColumn("run", "run-1")
	badType.AddPrimaryKeyColumn("gw", int64(1))
	q := &tablestore.MultiRowQueryCriteria{TableName: ledger, MaxVersion: 1}
	q.AddRow(pk("run-1", "sag-a")) // exists
	q.AddRow(pk("run-1", "sag-b")) // missing
	q.AddRow(badType)              // fails on its own
	resp, err := c.BatchGetRow(&tablestore.BatchGetRowRequest{MultiRowQueryCriteria: []*tablestore.MultiRowQueryCriteria{q}})
	if err != nil {
		t.Fatal(err)
	}
	rows := resp.TableToRowsResult[ledger]
	if len(rows) != 3 {
		t.Fatalf("%d results", len(rows))
	}
	if r := rows[0]; !r.IsSucceed || columns(r.Columns)["status"] != "requested" || r.PrimaryKey.PrimaryKeys[1].Value != "sag-a" {
		t.Errorf("existing row: %+v", r)
	}
	if r := rows[1]; !r.IsSucceed || len(r.Columns) != 0 || len(r.PrimaryKey.PrimaryKeys) != 0 {
		t.Errorf("missing row: %+v", r)
	}
	if r := rows[2]; r.IsSucceed || r.Error.Code != "OTSInvalidPK" {
		t.Errorf("bad key: %+v", r)
	}
	if got := e.sim.Failures()["OTSInvalidPK"]; got != 1 {
		t.Errorf("Failures()[OTSInvalidPK] = %d", got)
	}

	// An unknown table fails the whole request.
	other := &tablestore.MultiRowQueryCriteria{TableName: "nope", MaxVersion: 1}
	other.AddRow(pk("run-1", "sag-a"))
	_, err = c.BatchGetRow(&tablestore.BatchGetRowRequest{MultiRowQueryCriteria: []*tablestore.MultiRowQueryCriteria{q, other}})
	otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound)

	// At most 100 rows.
	big := &tablestore.MultiRowQueryCriteria{TableName: ledger, MaxVersion: 1}
	for range 101 {
		big.AddRow(pk("run-1", "sag-a"))
	}
	_, err = c.BatchGetRow(&tablestore.BatchGetRowRequest{MultiRowQueryCriteria: []*tablestore.MultiRowQueryCriteria{big}})
	otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest)
}

func TestBatchWriteRow(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "run-1", "sag-a", map[string]any{"status": "requested"})
	e.put(c, "run-1", "sag-d", map[string]any{"status": "requested"})

	req := &tablestore.BatchWriteRowRequest{}
	put := func(gw string, exp tablestore.RowExistenceExpectation) {
		ch := &tablestore.PutRowChange{TableName: ledger, PrimaryKey: pk("run-1", gw)}
		ch.AddColumn("status", "planned")
		ch.SetCondition(exp)
		req.AddRowChange(ch)
	}
	put("sag-a", tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST) // 0: fails, the row exists
	put("sag-b", tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST) // 1: new row
	upd := &tablestore.UpdateRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-c")}
	upd.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	upd.PutColumn("status", "skipped")
	req.AddRowChange(upd) // 2: creates sag-c
	del := &tablestore.DeleteRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-d")}
	del.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	req.AddRowChange(del) // 3: deletes sag-d
	ret := &tablestore.PutRowChange{TableName: ledger, PrimaryKey: pk("run-1", "sag-e"), ReturnType: tablestore.ReturnType_RT_PK}
	ret.AddColumn("status", "planned")
	ret.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	req.AddRowChange(ret) // 4: returns its key

	resp, err := c.BatchWriteRow(req)
	if err != nil {
		t.Fatal(err)
	}
	rows := resp.TableToRowsResult[ledger]
	if len(rows) != 5 {
		t.Fatalf("%d results", len(rows))
	}
	if r := rows[0]; r.IsSucceed || r.Error.Code != "OTSConditionCheckFail" || r.Error.Message != "Condition check failed." {
		t.Errorf("row 0: %+v", r)
	}
	for i := 1; i < 5; i++ {
		if !rows[i].IsSucceed {
			t.Errorf("row %d: %+v", i, rows[i])
		}
	}
	if k := rows[4].PrimaryKey.PrimaryKeys; len(k) != 2 || k[1].Value != "sag-e" {
		t.Errorf("row 4 returned key %v", k)
	}

	want := map[string]string{"sag-a": "requested", "sag-b": "planned", "sag-c": "skipped", "sag-e": "planned"}
	got := map[string]string{}
	for _, r := range e.sim.Rows(ledger) {
		gw, _ := r.Get("gw")
		status, _ := r.Get("status")
		got[gw.(string)] = status.(string)
	}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("rows %v, want %v", got, want)
		}
	}

	// An unknown table fails the whole request and writes nothing.
	req = &tablestore.BatchWriteRowRequest{}
	put("sag-x", tablestore.RowExistenceExpectation_IGNORE)
	lost := &tablestore.PutRowChange{TableName: "nope", PrimaryKey: pk("run-1", "sag-x")}
	lost.AddColumn("status", "planned")
	lost.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	req.AddRowChange(lost)
	_, err = c.BatchWriteRow(req)
	otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound)
	if n := len(e.sim.Rows(ledger)); n != 4 {
		t.Fatalf("%d rows after a refused batch", n)
	}

	// At most 200 rows.
	req = &tablestore.BatchWriteRowRequest{}
	for range 201 {
		put("sag-y", tablestore.RowExistenceExpectation_IGNORE)
	}
	_, err = c.BatchWriteRow(req)
	otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest)
}
