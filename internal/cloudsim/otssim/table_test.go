package otssim_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

func createReq(name string, keys ...string) *tablestore.CreateTableRequest {
	meta := &tablestore.TableMeta{TableName: name}
	for _, k := range keys {
		meta.AddPrimaryKeyColumn(k, tablestore.PrimaryKeyType_STRING)
	}
	return &tablestore.CreateTableRequest{
		TableMeta:          meta,
		TableOption:        &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{},
	}
}

func TestTables(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	c := e.client()
	if _, err := c.CreateTable(createReq(ledger, "run", "gw")); err != nil {
		t.Fatal(err)
	}

	d, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: ledger})
	if err != nil {
		t.Fatal(err)
	}
	keys := d.TableMeta.SchemaEntry
	if d.TableMeta.TableName != ledger || len(keys) != 2 || *keys[0].Name != "run" || *keys[1].Name != "gw" ||
		*keys[1].Type != tablestore.PrimaryKeyType_STRING {
		t.Fatalf("described %+v", d.TableMeta)
	}
	if d.TableOption.MaxVersion != 1 || d.TableOption.TimeToAlive != -1 {
		t.Fatalf("options %+v", d.TableOption)
	}

	_, err = c.CreateTable(createReq(ledger, "run", "gw"))
	otsErr(t, err, "OTSObjectAlreadyExist", http.StatusConflict)
	_, err = c.CreateTable(createReq("dup", "k", "k"))
	if oe := otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest); oe.Message != "Duplicated primary key name: 'k'." {
		t.Errorf("message %q", oe.Message)
	}
	_, err = c.CreateTable(createReq("five", "a", "b", "c", "d", "e"))
	otsErr(t, err, "OTSParameterInvalid", http.StatusBadRequest)

	if err := e.sim.CreateTable(otssim.Table{Name: "other", PrimaryKey: []otssim.KeyColumn{{Name: "id", Type: otssim.KeyInteger}}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTable()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(list.TableNames, []string{ledger, "other"}) || !slices.Equal(e.sim.Tables(), list.TableNames) {
		t.Fatalf("ListTable %v, Tables %v", list.TableNames, e.sim.Tables())
	}

	if _, err := c.DeleteTable(&tablestore.DeleteTableRequest{TableName: ledger}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: ledger})
	otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound)
	_, err = c.DeleteTable(&tablestore.DeleteTableRequest{TableName: ledger})
	otsErr(t, err, "OTSObjectNotExist", http.StatusNotFound)
	if e.sim.Rows(ledger) != nil {
		t.Fatal("rows of a deleted table")
	}
	if got := e.sim.Calls(); got["CreateTable"] != 4 || got["DeleteTable"] != 2 || got["ListTable"] != 1 {
		t.Fatalf("Calls %v", got)
	}
}
