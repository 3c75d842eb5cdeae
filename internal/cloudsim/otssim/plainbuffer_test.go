package otssim

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
)

// The SDK's exported builders serve as an oracle: the emulator's decoder
// must accept what they produce, checksums included, and its encoder must
// produce the same bytes for the same row.

func sdkPutRow() []byte {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", "run-1")
	k.AddPrimaryKeyColumn("seq", int64(-42))
	k.AddPrimaryKeyColumn("bin", []byte{0, 0xff})
	ch := &tablestore.PutRowChange{PrimaryKey: k}
	ch.AddColumnWithTimestamp("s", "héllo", 1700000000000)
	ch.AddColumnWithTimestamp("i", int64(math.MinInt64), 1)
	ch.AddColumnWithTimestamp("b", true, 2)
	ch.AddColumnWithTimestamp("d", -0.5, 3)
	ch.AddColumnWithTimestamp("x", []byte("raw"), 4)
	return ch.Serialize()
}

func ptr(v value) *value { return &v }

func stringValue(s string) value { return value{vt: vtString, buf: []byte(s)} }

func TestDecodeAndEncodeLikeTheSDK(t *testing.T) {
	want := pbRow{
		pk: []pbCell{
			{name: "run", value: ptr(stringValue("run-1"))},
			{name: "seq", value: ptr(intValue(-42))},
			{name: "bin", value: ptr(value{vt: vtBlob, buf: []byte{0, 0xff}})},
		},
		cells: []pbCell{
			{name: "s", value: ptr(stringValue("héllo")), ts: 1700000000000, hasTS: true},
			{name: "i", value: ptr(intValue(math.MinInt64)), ts: 1, hasTS: true},
			{name: "b", value: ptr(value{vt: vtBoolean, num: 1}), ts: 2, hasTS: true},
			{name: "d", value: ptr(value{vt: vtDouble, num: int64(math.Float64bits(-0.5))}), ts: 3, hasTS: true},
			{name: "x", value: ptr(value{vt: vtBlob, buf: []byte("raw")}), ts: 4, hasTS: true},
		},
	}
	sdk := sdkPutRow()
	got, err := decodeOneRow(sdk)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if enc := encodeRows(want); !bytes.Equal(enc, sdk) {
		t.Fatalf("encoded\n% x\nthe SDK\n% x", enc, sdk)
	}
}

func TestDecodeUpdatesAndKeys(t *testing.T) {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("run", "r")
	ch := &tablestore.UpdateRowChange{PrimaryKey: k}
	ch.PutColumn("p", int64(1))
	ch.DeleteColumn("all")
	ch.DeleteColumnWithTimestamp("one", 77)
	ch.IncrementColumn("n", 5)
	row, err := decodeOneRow(ch.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name  string
		hasOp bool
		op    byte
		hasTS bool
		value bool
	}{{"p", false, 0, false, true}, {"all", true, opDeleteAll, false, false}, {"one", true, opDeleteOne, true, false}, {"n", true, opIncrement, false, true}}
	for i, o := range ops {
		c := row.cells[i]
		if c.name != o.name || c.hasOp != o.hasOp || c.op != o.op || c.hasTS != o.hasTS || (c.value != nil) != o.value {
			t.Errorf("cell %d: %+v, want %+v", i, c, o)
		}
	}

	// A range bound and a delete's key.
	b := &tablestore.PrimaryKey{}
	b.AddPrimaryKeyColumnWithMinValue("a")
	b.AddPrimaryKeyColumnWithMaxValue("b")
	row, err = decodeOneRow(b.Build(true))
	if err != nil {
		t.Fatal(err)
	}
	if row.pk[0].value.vt != vtInfMin || row.pk[1].value.vt != vtInfMax || !row.deleteMarker {
		t.Fatalf("bound %+v", row)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := sdkPutRow()
	if _, err := decodeOneRow(good); err != nil {
		t.Fatal(err)
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x20
		if _, err := decodeRows(bad); err == nil {
			t.Errorf("a flipped bit at byte %d of %d went unnoticed", i, len(good))
		}
	}
	for n := range len(good) {
		if _, err := decodeRows(good[:n]); err == nil {
			t.Errorf("%d of %d bytes decoded", n, len(good))
		}
	}
}

func FuzzDecodeRows(f *testing.F) {
	f.Add(sdkPutRow())
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("id", int64(1))
	f.Add(k.Build(true))
	f.Add(encodeRows(pbRow{pk: []pbCell{{name: "a", value: ptr(intValue(1))}}}, pbRow{pk: []pbCell{{name: "a", value: ptr(intValue(2))}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := decodeRows(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeRows(encodeRows(rows...))
		if err != nil {
			t.Fatalf("re-encoded rows do not decode: %v", err)
		}
		if !reflect.DeepEqual(again, rows) {
			t.Fatalf("round trip changed\n%+v\ninto\n%+v", rows, again)
		}
	})
}
