package otssim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// PlainBuffer is the row encoding inside Tablestore's protobuf messages:
//
//	rows   = header(uint32 LE 0x75) row*
//	row    = TAG_ROW_PK cell* [TAG_ROW_DATA cell*] [TAG_DELETE_ROW_MARKER] TAG_ROW_CHECKSUM crc8
//	cell   = TAG_CELL TAG_CELL_NAME len name [TAG_CELL_VALUE len value]
//	         [TAG_CELL_TYPE op] [TAG_CELL_TIMESTAMP int64] TAG_CELL_CHECKSUM crc8
//	value  = type payload   (INTEGER, DOUBLE int64 LE; BOOLEAN 1 byte; STRING, BLOB len bytes;
//	                         INF_MIN, INF_MAX, AUTO_INCREMENT nothing)
//
// Integers are little-endian; lengths are 32-bit. A cell's CRC-8 covers its
// name, its value (type, then payload; a string's or blob's length included),
// its timestamp and then its operation type — the timestamp before the type,
// although they are written the other way round. A row's CRC-8 runs over its
// cells' CRCs and then one byte, 1 with a delete marker and 0 without.
//
// The decoder is strict, as the service is: it verifies every length and
// checksum and fails with an error, never a panic, on any input.

const plainBufferHeader = 0x75

// Tags.
const (
	tagRowPK           = 0x1
	tagRowData         = 0x2
	tagCell            = 0x3
	tagCellName        = 0x4
	tagCellValue       = 0x5
	tagCellType        = 0x6
	tagCellTimestamp   = 0x7
	tagDeleteRowMarker = 0x8
	tagRowChecksum     = 0x9
	tagCellChecksum    = 0xa
)

// Value types (VariantType).
const (
	vtInteger       byte = 0x0
	vtDouble        byte = 0x1
	vtBoolean       byte = 0x2
	vtString        byte = 0x3
	vtBlob          byte = 0x7
	vtInfMin        byte = 0x9
	vtInfMax        byte = 0xa
	vtAutoIncrement byte = 0xb
)

// Cell operations of UpdateRow; a cell without a type is a put.
const (
	opDeleteAll byte = 0x1
	opDeleteOne byte = 0x3
	opIncrement byte = 0x4
)

// value is one primary-key or attribute value.
type value struct {
	vt  byte
	num int64  // INTEGER; DOUBLE as IEEE bits; BOOLEAN 0 or 1
	buf []byte // STRING or BLOB
}

func intValue(i int64) value { return value{vt: vtInteger, num: i} }

// goValue is v as the SDK hands it to callers.
func (v value) goValue() any {
	switch v.vt {
	case vtInteger:
		return v.num
	case vtDouble:
		return math.Float64frombits(uint64(v.num))
	case vtBoolean:
		return v.num != 0
	case vtString:
		return string(v.buf)
	case vtBlob:
		return bytes.Clone(v.buf)
	}
	return nil
}

// size approximates the bytes v takes, for capacity units and the 4 MB limits.
func (v value) size() int {
	switch v.vt {
	case vtString, vtBlob:
		return len(v.buf)
	case vtBoolean:
		return 1
	}
	return 8
}

func vtName(vt byte) string {
	switch vt {
	case vtInteger:
		return "INTEGER"
	case vtDouble:
		return "DOUBLE"
	case vtBoolean:
		return "BOOLEAN"
	case vtString:
		return "STRING"
	case vtBlob:
		return "BINARY"
	case vtInfMin:
		return "INF_MIN"
	case vtInfMax:
		return "INF_MAX"
	case vtAutoIncrement:
		return "AUTO_INCREMENT"
	}
	return fmt.Sprintf("type 0x%x", vt)
}

// pbCell is one cell as carried on the wire.
type pbCell struct {
	name  string
	value *value // nil when the cell has none (a delete)
	op    byte
	hasOp bool
	ts    int64
	hasTS bool
}

// pbRow is one row as carried on the wire.
type pbRow struct {
	pk           []pbCell
	cells        []pbCell
	deleteMarker bool
}

// --- decoding ---

var errTruncated = errors.New("unexpected end of data")

type pbReader struct {
	b   []byte
	off int
}

func (r *pbReader) more() bool { return r.off < len(r.b) }

func (r *pbReader) peek() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	return r.b[r.off], true
}

func (r *pbReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	r.off++
	return r.b[r.off-1], nil
}

func (r *pbReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errTruncated
	}
	r.off += n
	return r.b[r.off-n : r.off], nil
}

func (r *pbReader) uint32() (uint32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (r *pbReader) int64() (int64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(p)), nil
}

// lengthPrefixed reads a 32-bit length and that many bytes.
func (r *pbReader) lengthPrefixed() ([]byte, error) {
	n, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if n > math.MaxInt32 {
		return nil, errTruncated
	}
	return r.take(int(n))
}

func (r *pbReader) expect(tag byte) error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b != tag {
		return fmt.Errorf("tag 0x%x at offset %d where 0x%x was expected", b, r.off-1, tag)
	}
	return nil
}

// decodeRows decodes a PlainBuffer block: the header and one or more rows.
func decodeRows(b []byte) ([]pbRow, error) {
	r := &pbReader{b: b}
	h, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if h != plainBufferHeader {
		return nil, fmt.Errorf("invalid header 0x%x", h)
	}
	if !r.more() {
		return nil, errors.New("no row")
	}
	var rows []pbRow
	for r.more() {
		row, err := decodeRow(r)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// decodeOneRow decodes a block that must hold exactly one row, as the row
// fields of every request do.
func decodeOneRow(b []byte) (pbRow, error) {
	rows, err := decodeRows(b)
	if err != nil {
		return pbRow{}, err
	}
	if len(rows) != 1 {
		return pbRow{}, fmt.Errorf("%d rows where one was expected", len(rows))
	}
	return rows[0], nil
}

func decodeRow(r *pbReader) (pbRow, error) {
	var row pbRow
	if err := r.expect(tagRowPK); err != nil {
		return row, err
	}
	var err error
	if row.pk, err = decodeCells(r); err != nil {
		return row, err
	}
	if t, _ := r.peek(); t == tagRowData {
		r.off++
		if row.cells, err = decodeCells(r); err != nil {
			return row, err
		}
	}
	if t, _ := r.peek(); t == tagDeleteRowMarker {
		r.off++
		row.deleteMarker = true
	}
	if err := r.expect(tagRowChecksum); err != nil {
		return row, err
	}
	sum, err := r.byte()
	if err != nil {
		return row, err
	}
	if want := rowChecksum(row); sum != want {
		return row, fmt.Errorf("row checksum 0x%x, computed 0x%x", sum, want)
	}
	return row, nil
}

func decodeCells(r *pbReader) ([]pbCell, error) {
	var cells []pbCell
	for {
		if t, _ := r.peek(); t != tagCell {
			return cells, nil
		}
		r.off++
		c, err := decodeCell(r)
		if err != nil {
			return nil, err
		}
		cells = append(cells, c)
	}
}

func decodeCell(r *pbReader) (pbCell, error) {
	var c pbCell
	if err := r.expect(tagCellName); err != nil {
		return c, err
	}
	name, err := r.lengthPrefixed()
	if err != nil {
		return c, err
	}
	c.name = string(name)
	if t, _ := r.peek(); t == tagCellValue {
		r.off++
		raw, err := r.lengthPrefixed()
		if err != nil {
			return c, err
		}
		v, err := decodeValue(raw)
		if err != nil {
			return c, fmt.Errorf("cell %q: %w", c.name, err)
		}
		c.value = &v
	}
	if t, _ := r.peek(); t == tagCellType {
		r.off++
		if c.op, err = r.byte(); err != nil {
			return c, err
		}
		c.hasOp = true
	}
	if t, _ := r.peek(); t == tagCellTimestamp {
		r.off++
		if c.ts, err = r.int64(); err != nil {
			return c, err
		}
		c.hasTS = true
	}
	if err := r.expect(tagCellChecksum); err != nil {
		return c, err
	}
	sum, err := r.byte()
	if err != nil {
		return c, err
	}
	if want := cellChecksum(c); sum != want {
		return c, fmt.Errorf("cell %q checksum 0x%x, computed 0x%x", c.name, sum, want)
	}
	return c, nil
}

// decodeValue decodes a value that must fill raw exactly (raw is the
// content of a length-prefixed TAG_CELL_VALUE, or a filter's column_value).
func decodeValue(raw []byte) (value, error) {
	r := &pbReader{b: raw}
	vt, err := r.byte()
	if err != nil {
		return value{}, err
	}
	v := value{vt: vt}
	switch vt {
	case vtInteger, vtDouble:
		v.num, err = r.int64()
	case vtBoolean:
		var b byte
		b, err = r.byte()
		if b > 1 {
			err = fmt.Errorf("boolean byte 0x%x", b)
		}
		v.num = int64(b)
	case vtString, vtBlob:
		var p []byte
		p, err = r.lengthPrefixed()
		v.buf = bytes.Clone(p)
	case vtInfMin, vtInfMax, vtAutoIncrement:
	default:
		return v, fmt.Errorf("unknown value type 0x%x", vt)
	}
	if err != nil {
		return v, err
	}
	if r.more() {
		return v, fmt.Errorf("%d stray bytes after a %s value", len(raw)-r.off, vtName(vt))
	}
	return v, nil
}

// --- encoding ---

// encodeRows encodes rows as one PlainBuffer block.
func encodeRows(rows ...pbRow) []byte {
	b := binary.LittleEndian.AppendUint32(nil, plainBufferHeader)
	for _, row := range rows {
		b = appendRow(b, row)
	}
	return b
}

func appendRow(b []byte, row pbRow) []byte {
	b = append(b, tagRowPK)
	for _, c := range row.pk {
		b = appendCell(b, c)
	}
	if len(row.cells) > 0 {
		b = append(b, tagRowData)
		for _, c := range row.cells {
			b = appendCell(b, c)
		}
	}
	if row.deleteMarker {
		b = append(b, tagDeleteRowMarker)
	}
	return append(b, tagRowChecksum, rowChecksum(row))
}

func appendCell(b []byte, c pbCell) []byte {
	b = append(b, tagCell, tagCellName)
	b = appendLengthPrefixed(b, []byte(c.name))
	if c.value != nil {
		b = append(b, tagCellValue)
		b = appendLengthPrefixed(b, appendValue(nil, *c.value))
	}
	if c.hasOp {
		b = append(b, tagCellType, c.op)
	}
	if c.hasTS {
		b = append(b, tagCellTimestamp)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.ts))
	}
	return append(b, tagCellChecksum, cellChecksum(c))
}

func appendValue(b []byte, v value) []byte {
	b = append(b, v.vt)
	switch v.vt {
	case vtInteger, vtDouble:
		b = binary.LittleEndian.AppendUint64(b, uint64(v.num))
	case vtBoolean:
		b = append(b, byte(v.num))
	case vtString, vtBlob:
		b = appendLengthPrefixed(b, v.buf)
	}
	return b
}

func appendLengthPrefixed(b, p []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// --- checksums ---

// crc8Table is CRC-8 with polynomial x^8+x^2+x+1 (0x07), initial value 0.
var crc8Table = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		for range 8 {
			if c&0x80 != 0 {
				c = c<<1 ^ 0x07
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc8(crc byte, p ...byte) byte {
	for _, b := range p {
		crc = crc8Table[crc^b]
	}
	return crc
}

func crc8Uint32(crc byte, v uint32) byte {
	return crc8(crc, binary.LittleEndian.AppendUint32(nil, v)...)
}

func crc8Uint64(crc byte, v uint64) byte {
	return crc8(crc, binary.LittleEndian.AppendUint64(nil, v)...)
}

func valueChecksum(crc byte, v value) byte {
	crc = crc8(crc, v.vt)
	switch v.vt {
	case vtInteger, vtDouble:
		crc = crc8Uint64(crc, uint64(v.num))
	case vtBoolean:
		crc = crc8(crc, byte(v.num))
	case vtString, vtBlob:
		crc = crc8Uint32(crc, uint32(len(v.buf)))
		crc = crc8(crc, v.buf...)
	}
	return crc
}

func cellChecksum(c pbCell) byte {
	crc := crc8(0, []byte(c.name)...)
	if c.value != nil {
		crc = valueChecksum(crc, *c.value)
	}
	if c.hasTS {
		crc = crc8Uint64(crc, uint64(c.ts))
	}
	if c.hasOp {
		crc = crc8(crc, c.op)
	}
	return crc
}

func rowChecksum(row pbRow) byte {
	var crc byte
	for _, c := range row.pk {
		crc = crc8(crc, cellChecksum(c))
	}
	for _, c := range row.cells {
		crc = crc8(crc, cellChecksum(c))
	}
	if row.deleteMarker {
		return crc8(crc, 1)
	}
	return crc8(crc, 0)
}
