package otssim

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"sort"
	"time"
)

// KeyType is the type of a primary key column (the wire's PrimaryKeyType).
type KeyType int

// Primary key types.
const (
	KeyInteger KeyType = 1
	KeyString  KeyType = 2
	KeyBinary  KeyType = 3
)

func (t KeyType) vt() byte {
	switch t {
	case KeyInteger:
		return vtInteger
	case KeyString:
		return vtString
	}
	return vtBlob
}

// KeyColumn is one column of a table's primary key.
type KeyColumn struct {
	Name string
	Type KeyType
	// AutoIncrement makes the service assign the value on PutRow (an
	// integer column that is not the first, the partition key).
	AutoIncrement bool
}

// Table describes a table to create.
type Table struct {
	Name       string
	PrimaryKey []KeyColumn // 1 to 4 columns
	// MaxVersions is how many versions of each attribute column are kept,
	// newest first; default 1.
	MaxVersions int
	// TimeToLive in seconds, -1 for ever (the default). It is described
	// back but data never expires here.
	TimeToLive int
}

// Column is a cell of a Row snapshot.
type Column struct {
	Name string
	// Value is a string, int64, bool, float64 or []byte.
	Value any
	// Timestamp is the version in milliseconds; 0 for primary key columns.
	Timestamp int64
}

// Row is a snapshot of a stored row.
type Row struct {
	PrimaryKey []Column // in schema order
	Columns    []Column // the newest version of each attribute column, by name
}

// Get returns the value of a primary key or attribute column.
func (r Row) Get(name string) (any, bool) {
	for _, c := range slices.Concat(r.PrimaryKey, r.Columns) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return nil, false
}

// Limits from the service's documentation (general limits).
const (
	maxTables        = 64
	maxKeyColumns    = 4
	maxKeyValueLen   = 1024
	maxAttrValueLen  = 2 << 20
	maxColumnNameLen = 255
	maxColumnsInRow  = 1024 // attribute columns one write may carry
	maxColumnsToGet  = 128
	maxRowBytes      = 4 << 20 // PutRow, UpdateRow, and a whole BatchWriteRow
	maxBatchGetRows  = 100
	maxBatchPutRows  = 200
	maxRangeRows     = 5000
	maxRangeBytes    = 4 << 20
)

// table is a table and its rows.
type table struct {
	meta          Table
	defined       []definedColumn
	reservedRead  int32
	reservedWrite int32
	created       time.Time
	rows          []*row // ascending by key
	lastAuto      int64  // the last auto-increment value handed out
}

type definedColumn struct {
	name string
	typ  int32 // DefinedColumnType, echoed by DescribeTable
}

// row is a stored row. A row exists from the write that creates it until
// it is deleted, even when it has no attribute column left.
type row struct {
	key  []value
	cols map[string][]cell // versions, newest first
}

// cell is one version of an attribute column.
type cell struct {
	ts int64 // milliseconds
	v  value
}

func (r *row) clone() *row {
	c := &row{key: r.key, cols: maps.Clone(r.cols)}
	for name, versions := range c.cols {
		c.cols[name] = slices.Clone(versions)
	}
	return c
}

// put stores a version, replacing one with the same timestamp, and keeps
// the newest max versions.
func (r *row) put(name string, c cell, max int) {
	versions := slices.DeleteFunc(r.cols[name], func(o cell) bool { return o.ts == c.ts })
	i := sort.Search(len(versions), func(i int) bool { return versions[i].ts < c.ts })
	versions = slices.Insert(versions, i, c)
	if len(versions) > max {
		versions = versions[:max]
	}
	r.cols[name] = versions
}

// size approximates the bytes of the row's newest versions.
func (r *row) size(schema []KeyColumn) int {
	n := 0
	for i, k := range r.key {
		n += len(schema[i].Name) + k.size()
	}
	for name, versions := range r.cols {
		for _, c := range versions {
			n += len(name) + c.v.size() + 8
		}
	}
	return n
}

// compareValues orders two primary key values of one column: INF_MIN
// before everything, INF_MAX after; integers as signed numbers, strings
// and binaries bytewise.
func compareValues(a, b value) int {
	rank := func(v value) int {
		switch v.vt {
		case vtInfMin:
			return -1
		case vtInfMax:
			return 1
		}
		return 0
	}
	if ra, rb := rank(a), rank(b); ra != 0 || rb != 0 {
		return cmp.Compare(ra, rb)
	}
	if a.vt == vtInteger && b.vt == vtInteger {
		return cmp.Compare(a.num, b.num)
	}
	return bytes.Compare(a.buf, b.buf)
}

func compareKeys(a, b []value) int {
	for i := range min(len(a), len(b)) {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// find returns where key is, or would be inserted.
func (t *table) find(key []value) (int, bool) {
	return slices.BinarySearchFunc(t.rows, key, func(r *row, k []value) int { return compareKeys(r.key, k) })
}

func (t *table) get(key []value) *row {
	if i, ok := t.find(key); ok {
		return t.rows[i]
	}
	return nil
}

// store inserts or replaces r.
func (t *table) store(r *row) {
	i, ok := t.find(r.key)
	if ok {
		t.rows[i] = r
		return
	}
	t.rows = slices.Insert(t.rows, i, r)
}

func (t *table) remove(key []value) {
	if i, ok := t.find(key); ok {
		t.rows = slices.Delete(t.rows, i, i+1)
	}
}

// nextAutoIncrement hands out increasing values that, like the service's,
// grow with time.
func (t *table) nextAutoIncrement(now time.Time) int64 {
	t.lastAuto = max(t.lastAuto+1, now.UnixMicro())
	return t.lastAuto
}

// keyUse says which special primary key values a request may carry.
type keyUse int

const (
	keyExact keyUse = iota // GetRow, UpdateRow, DeleteRow: plain values only
	keyPut                 // PutRow: AUTO_INCREMENT placeholders in auto-increment columns
	keyRange               // GetRange bounds: INF_MIN and INF_MAX
)

// checkKey validates a primary key against the schema and returns its
// values in schema order. The messages of the size and name checks are the
// service's; the others are unverified.
func (t *table) checkKey(cells []pbCell, use keyUse) ([]value, *otsError) {
	schema := t.meta.PrimaryKey
	if len(cells) != len(schema) {
		return nil, invalidPK("Validate PK size fail. Input: %d, Meta: %d.", len(cells), len(schema))
	}
	key := make([]value, len(cells))
	for i, c := range cells {
		col := schema[i]
		if c.name != col.Name {
			return nil, invalidPK("Validate PK name fail. Input: %s, Meta: %s.", c.name, col.Name)
		}
		if c.value == nil || c.hasOp || c.hasTS {
			return nil, invalidPK("Invalid primary key column: %s.", c.name)
		}
		v := *c.value
		switch {
		case v.vt == vtInfMin || v.vt == vtInfMax:
			if use != keyRange {
				return nil, invalidPK("INF_MIN and INF_MAX are only allowed in a range: %s.", c.name)
			}
		case v.vt == vtAutoIncrement:
			if use != keyPut || !col.AutoIncrement {
				return nil, invalidPK("AUTO_INCREMENT is only allowed in the auto-increment column of PutRow: %s.", c.name)
			}
		case v.vt != col.Type.vt():
			return nil, invalidPK("Validate PK type fail. Input: VT_%s, Meta: VT_%s.", vtName(v.vt), vtName(col.Type.vt()))
		case len(v.buf) > maxKeyValueLen:
			return nil, invalidParam("The length of primary key column: '%s' exceeds the MaxLength:%d with CurrentLength:%d.",
				c.name, maxKeyValueLen, len(v.buf))
		}
		key[i] = v
	}
	return key, nil
}

// validName is the service's rule for table and column names.
func validName(s string) bool {
	if s == "" || len(s) > maxColumnNameLen {
		return false
	}
	for i, c := range []byte(s) {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// snapshot turns a stored row into a Row.
func (t *table) snapshot(r *row) Row {
	out := Row{}
	for i, k := range r.key {
		out.PrimaryKey = append(out.PrimaryKey, Column{Name: t.meta.PrimaryKey[i].Name, Value: k.goValue()})
	}
	for _, name := range slices.Sorted(maps.Keys(r.cols)) {
		if versions := r.cols[name]; len(versions) > 0 {
			out.Columns = append(out.Columns, Column{Name: name, Value: versions[0].v.goValue(), Timestamp: versions[0].ts})
		}
	}
	return out
}
