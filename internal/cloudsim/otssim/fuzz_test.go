package otssim

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// FuzzActions feeds any body to any action, twice (the second call sees
// what the first did), on a server with a table: no input may panic, and
// every answer must marshal.
func FuzzActions(f *testing.F) {
	names := slices.Sorted(maps.Keys(actions))
	seed := func(action string, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(slices.Index(names, action)), b)
	}
	key := func() *tablestore.PrimaryKey {
		k := &tablestore.PrimaryKey{}
		k.AddPrimaryKeyColumn("a", "x")
		k.AddPrimaryKeyColumn("b", int64(1))
		return k
	}
	bound := func(max bool) []byte {
		k := &tablestore.PrimaryKey{}
		if max {
			k.AddPrimaryKeyColumnWithMaxValue("a")
			k.AddPrimaryKeyColumnWithMaxValue("b")
		} else {
			k.AddPrimaryKeyColumnWithMinValue("a")
			k.AddPrimaryKeyColumnWithMinValue("b")
		}
		return k.Build(false)
	}
	cond := tablestore.NewCompositeColumnCondition(tablestore.LO_OR)
	cond.AddFilter(tablestore.NewSingleColumnCondition("c", tablestore.CT_GREATER_THAN, int64(1)))
	cond.AddFilter(tablestore.NewSingleColumnCondition("c", tablestore.CT_EQUAL, "s"))
	put := &tablestore.PutRowChange{PrimaryKey: key()}
	put.AddColumn("c", int64(3))
	upd := &tablestore.UpdateRowChange{PrimaryKey: key()}
	upd.IncrementColumn("c", 2)
	upd.DeleteColumn("d")

	ignore := &otsprotocol.Condition{RowExistence: otsprotocol.RowExistenceExpectation_IGNORE.Enum(), ColumnCondition: cond.Serialize()}
	seed("PutRow", &otsprotocol.PutRowRequest{TableName: proto.String("t"), Row: put.Serialize(), Condition: ignore,
		ReturnContent: &otsprotocol.ReturnContent{ReturnType: otsprotocol.ReturnType_RT_PK.Enum()}})
	seed("UpdateRow", &otsprotocol.UpdateRowRequest{TableName: proto.String("t"), RowChange: upd.Serialize(), Condition: ignore})
	seed("GetRow", &otsprotocol.GetRowRequest{TableName: proto.String("t"), PrimaryKey: key().Build(false),
		MaxVersions: proto.Int32(1), Filter: cond.Serialize()})
	seed("DeleteRow", &otsprotocol.DeleteRowRequest{TableName: proto.String("t"), PrimaryKey: key().Build(true), Condition: ignore})
	seed("GetRange", &otsprotocol.GetRangeRequest{TableName: proto.String("t"), Direction: otsprotocol.Direction_FORWARD.Enum(),
		MaxVersions: proto.Int32(1), Limit: proto.Int32(2), InclusiveStartPrimaryKey: bound(false), ExclusiveEndPrimaryKey: bound(true)})
	seed("BatchGetRow", &otsprotocol.BatchGetRowRequest{Tables: []*otsprotocol.TableInBatchGetRowRequest{
		{TableName: proto.String("t"), PrimaryKey: [][]byte{key().Build(false)}, MaxVersions: proto.Int32(1)}}})
	seed("BatchWriteRow", &otsprotocol.BatchWriteRowRequest{Tables: []*otsprotocol.TableInBatchWriteRowRequest{
		{TableName: proto.String("t"), Rows: []*otsprotocol.RowInBatchWriteRowRequest{
			{Type: otsprotocol.OperationType_PUT.Enum(), RowChange: put.Serialize(), Condition: ignore},
			{Type: otsprotocol.OperationType_UPDATE.Enum(), RowChange: upd.Serialize(), Condition: ignore}}}}})
	seed("CreateTable", &otsprotocol.CreateTableRequest{
		TableMeta: &otsprotocol.TableMeta{TableName: proto.String("u"), PrimaryKey: []*otsprotocol.PrimaryKeySchema{
			{Name: proto.String("k"), Type: otsprotocol.PrimaryKeyType_BINARY.Enum()}}},
		ReservedThroughput: &otsprotocol.ReservedThroughput{CapacityUnit: &otsprotocol.CapacityUnit{}}})

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		s := New(Options{Keyring: auth.NewKeyring(nil)})
		if err := s.CreateTable(Table{Name: "t", MaxVersions: 2, PrimaryKey: []KeyColumn{
			{Name: "a", Type: KeyString}, {Name: "b", Type: KeyInteger}}}); err != nil {
			t.Fatal(err)
		}
		op, e := actions[names[int(which)%len(names)]].decode(body)
		if e != nil {
			return
		}
		for range 2 {
			s.mu.Lock()
			msg, e := op.run(s, time.UnixMilli(1700000000000))
			s.mu.Unlock()
			if e == nil {
				if _, err := proto.Marshal(msg); err != nil {
					t.Fatalf("answer does not marshal: %v", err)
				}
			}
		}
	})
}
