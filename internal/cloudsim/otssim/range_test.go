package otssim_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

// bound is a ledger key with gw at INF_MIN or INF_MAX: the edge of a run.
func bound(run string, max bool) *tablestore.PrimaryKey {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", run)
	if max {
		k.AddPrimaryKeyColumnWithMaxValue("gw")
	} else {
		k.AddPrimaryKeyColumnWithMinValue("gw")
	}
	return k
}

// pages follows NextStartPrimaryKey until it is nil and returns the rows'
// values of column col (a primary key or attribute column) and the page sizes.
func pages(t *testing.T, c *tablestore.TableStoreClient, q tablestore.RangeRowQueryCriteria, col string) ([]any, []int) {
	t.Helper()
	var got []any
	var sizes []int
	for {
		resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &q})
		if err != nil {
			t.Fatalf("GetRange: %v", err)
		}
		for _, r := range resp.Rows {
			for _, k := range r.PrimaryKey.PrimaryKeys {
				if k.ColumnName == col {
					got = append(got, k.Value)
				}
			}
			for _, a := range r.Columns {
				if a.ColumnName == col {
					got = append(got, a.Value)
				}
			}
		}
		sizes = append(sizes, len(resp.Rows))
		if resp.NextStartPrimaryKey == nil {
			return got, sizes
		}
		if len(sizes) > 100 {
			t.Fatal("GetRange does not end")
		}
		q.StartPrimaryKey = resp.NextStartPrimaryKey
	}
}

func TestGetRange(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	c := e.client()
	e.put(c, "r0", "g00", map[string]any{"status": "failed"})
	e.put(c, "r2", "g00", map[string]any{"status": "failed"})
	var want []any
	for i := range 25 {
		gw := fmt.Sprintf("g%02d", i)
		status := "requested"
		if i%5 == 0 {
			status = "failed"
		}
		e.put(c, "r1", gw, map[string]any{"status": status})
		want = append(want, gw)
	}

	// Forward over the prefix r1, 7 rows a page.
	fwd := tablestore.RangeRowQueryCriteria{TableName: ledger, StartPrimaryKey: bound("r1", false), EndPrimaryKey: bound("r1", true),
		Direction: tablestore.FORWARD, MaxVersion: 1, Limit: 7}
	got, sizes := pages(t, c, fwd, "gw")
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{7, 7, 7, 4}) {
		t.Fatalf("forward: %v in pages %v", got, sizes)
	}

	// Backward from the end of r1 to its start, 10 a page.
	bwd := tablestore.RangeRowQueryCriteria{TableName: ledger, StartPrimaryKey: bound("r1", true), EndPrimaryKey: bound("r1", false),
		Direction: tablestore.BACKWARD, MaxVersion: 1, Limit: 10}
	got, sizes = pages(t, c, bwd, "gw")
	slices.Reverse(want)
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("backward: %v in pages %v", got, sizes)
	}

	// Inclusive start, exclusive end.
	part := fwd
	part.StartPrimaryKey, part.EndPrimaryKey, part.Limit = pk("r1", "g03"), pk("r1", "g06"), 0
	if got, _ := pages(t, c, part, "gw"); !slices.Equal(got, []any{"g03", "g04", "g05"}) {
		t.Fatalf("[g03, g06): %v", got)
	}
	part.Direction, part.StartPrimaryKey, part.EndPrimaryKey = tablestore.BACKWARD, pk("r1", "g06"), pk("r1", "g03")
	if got, _ := pages(t, c, part, "gw"); !slices.Equal(got, []any{"g06", "g05", "g04"}) {
		t.Fatalf("backward [g06, g03): %v", got)
	}

	// A filter: the limit counts returned rows, filtered rows are skipped.
	failed := fwd
	failed.Limit = 3
	failed.Filter = tablestore.NewSingleColumnCondition("status", tablestore.CT_EQUAL, "failed")
	got, sizes = pages(t, c, failed, "gw")
	if !slices.Equal(got, []any{"g00", "g05", "g10", "g15", "g20"}) || !slices.Equal(sizes, []int{3, 2}) {
		t.Fatalf("filtered: %v in pages %v", got, sizes)
	}

	// The whole table, INF_MIN to INF_MAX in both columns.
	all := tablestore.RangeRowQueryCriteria{TableName: ledger, StartPrimaryKey: &tablestore.PrimaryKey{}, EndPrimaryKey: &tablestore.PrimaryKey{},
		Direction: tablestore.FORWARD, MaxVersion: 1}
	all.StartPrimaryKey.AddPrimaryKeyColumnWithMinValue("run")
	all.StartPrimaryKey.AddPrimaryKeyColumnWithMinValue("gw")
	all.EndPrimaryKey.AddPrimaryKeyColumnWithMaxValue("run")
	all.EndPrimaryKey.AddPrimaryKeyColumnWithMaxValue("gw")
	if got, _ := pages(t, c, all, "run"); len(got) != 27 || got[0] != "r0" || got[26] != "r2" {
		t.Fatalf("whole table: %v", got)
	}

	// Bounds the wrong way round, and a bad limit.
	wrong := fwd
	wrong.StartPrimaryKey, wrong.EndPrimaryKey = wrong.EndPrimaryKey, wrong.StartPrimaryKey
	_, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &wrong})
	if oe := otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest); oe.Message != "Begin key must less than end key in FORWARD" {
		t.Errorf("message %q", oe.Message)
	}
	neg := fwd
	neg.Limit = -1
	_, err = c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &neg})
	otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest)
}

// writeAll writes rows of (id INTEGER) tables with BatchWriteRow, per rows.
func writeAll(t *testing.T, c *tablestore.TableStoreClient, table string, n, per int, value func(i int) any) {
	t.Helper()
	for from := 0; from < n; from += per {
		req := &tablestore.BatchWriteRowRequest{}
		for i := from; i < min(n, from+per); i++ {
			k := &tablestore.PrimaryKey{}
			k.AddPrimaryKeyColumn("id", int64(i))
			ch := &tablestore.PutRowChange{TableName: table, PrimaryKey: k}
			ch.AddColumn("v", value(i))
			ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
			req.AddRowChange(ch)
		}
		resp, err := c.BatchWriteRow(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.TableToRowsResult[table] {
			if !r.IsSucceed {
				t.Fatalf("row %d: %+v", r.Index, r.Error)
			}
		}
	}
}

func wholeTable(table string) tablestore.RangeRowQueryCriteria {
	q := tablestore.RangeRowQueryCriteria{TableName: table, StartPrimaryKey: &tablestore.PrimaryKey{}, EndPrimaryKey: &tablestore.PrimaryKey{},
		Direction: tablestore.FORWARD, MaxVersion: 1}
	q.StartPrimaryKey.AddPrimaryKeyColumnWithMinValue("id")
	q.EndPrimaryKey.AddPrimaryKeyColumnWithMaxValue("id")
	return q
}

func TestGetRangeLimits(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	c := e.client()
	for _, name := range []string{"many", "big"} {
		if err := e.sim.CreateTable(otssim.Table{Name: name, PrimaryKey: []otssim.KeyColumn{{Name: "id", Type: otssim.KeyInteger}}}); err != nil {
			t.Fatal(err)
		}
	}

	// 5000 rows a page at most.
	writeAll(t, c, "many", 5100, 200, func(i int) any { return int64(i) })
	got, sizes := pages(t, c, wholeTable("many"), "id")
	if !slices.Equal(sizes, []int{5000, 100}) || len(got) != 5100 || got[5000] != int64(5000) {
		t.Fatalf("pages %v", sizes)
	}
	// 5000 rows scanned at most, even when the filter keeps none: the page is
	// empty but names where to go on.
	none := wholeTable("many")
	none.Filter = tablestore.NewSingleColumnCondition("v", tablestore.CT_LESS_THAN, int64(0))
	resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &none})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Rows) != 0 || resp.NextStartPrimaryKey == nil || resp.NextStartPrimaryKey.PrimaryKeys[0].Value != int64(5000) {
		t.Fatalf("filtered scan: %d rows, next %v", len(resp.Rows), resp.NextStartPrimaryKey)
	}

	// 4 MB a page at most: 50 rows of 100 KiB take two pages.
	blob := make([]byte, 100<<10)
	writeAll(t, c, "big", 50, 20, func(int) any { return blob })
	got, sizes = pages(t, c, wholeTable("big"), "id")
	if len(got) != 50 || len(sizes) != 2 || sizes[0]*len(blob) > 4<<20 || sizes[0] < 35 {
		t.Fatalf("pages %v of 100 KiB rows", sizes)
	}
}
