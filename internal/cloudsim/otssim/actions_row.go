package otssim

import (
	"maps"
	"slices"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"
)

// The single-row calls, and the row operations BatchWriteRow and the
// readers share. Each runs under the server's lock, so every call is atomic
// per row: its condition is checked against the row it then changes.

// rowCondition is a write's Condition.
type rowCondition struct {
	existence otsprotocol.RowExistenceExpectation
	column    *filter
}

func parseCondition(c *otsprotocol.Condition) (rowCondition, *otsError) {
	rc := rowCondition{existence: c.GetRowExistence()}
	if _, ok := otsprotocol.RowExistenceExpectation_name[int32(rc.existence)]; !ok {
		return rc, invalidParam("Invalid row existence expectation: %d.", rc.existence)
	}
	if len(c.GetColumnCondition()) > 0 {
		f, e := parseFilter(c.GetColumnCondition(), false)
		if e != nil {
			return rc, e
		}
		rc.column = f
	}
	return rc, nil
}

// check answers OTSConditionCheckFail when the row (nil if missing) does not
// meet the condition.
func (c rowCondition) check(r *row) *otsError {
	switch c.existence {
	case otsprotocol.RowExistenceExpectation_EXPECT_EXIST:
		if r == nil {
			return errConditionFail
		}
	case otsprotocol.RowExistenceExpectation_EXPECT_NOT_EXIST:
		if r != nil {
			return errConditionFail
		}
	}
	if c.column != nil {
		var cols map[string][]cell
		if r != nil {
			cols = r.cols
		}
		if !c.column.pass(cols) {
			return errConditionFail
		}
	}
	return nil
}

// reads reports whether checking the condition reads the row (1 read CU).
func (c rowCondition) reads() bool {
	return c.existence != otsprotocol.RowExistenceExpectation_IGNORE || c.column != nil
}

// returnSpec is a write's ReturnContent.
type returnSpec struct {
	typ     otsprotocol.ReturnType
	columns []string
}

func parseReturn(rc *otsprotocol.ReturnContent) returnSpec {
	return returnSpec{typ: rc.GetReturnType(), columns: rc.GetReturnColumnNames()}
}

// writeResult is what a row write answers.
type writeResult struct {
	row         []byte // the returned row (RT_PK, RT_AFTER_MODIFY), or nil
	read, write int32  // capacity units
}

func consumed(read, write int32) *otsprotocol.ConsumedCapacity {
	return &otsprotocol.ConsumedCapacity{CapacityUnit: &otsprotocol.CapacityUnit{Read: proto.Int32(read), Write: proto.Int32(write)}}
}

// capacityUnits: one unit per started 4 KB, at least one.
func capacityUnits(bytes int) int32 { return int32(max(1, (bytes+4095)/4096)) }

// decodeRowField decodes a request's one-row PlainBuffer field.
func decodeRowField(field string, b []byte) (pbRow, *otsError) {
	if len(b) > maxRowBytes {
		return pbRow{}, invalidParam("The size of %s exceeds the limit of %d bytes.", field, maxRowBytes)
	}
	r, err := decodeOneRow(b)
	if err != nil {
		return pbRow{}, invalidParam("Invalid PlainBuffer in %s: %v.", field, err) // message unverified
	}
	return r, nil
}

// rowKey names a row for the fault decision.
func rowKey(tableName string, pk []pbCell) string {
	return tableName + "\x00" + string(encodeRows(pbRow{pk: pk}))
}

// keyCells turns key values back into PlainBuffer cells.
func (t *table) keyCells(key []value) []pbCell {
	cells := make([]pbCell, len(key))
	for i, v := range key {
		cells[i] = pbCell{name: t.meta.PrimaryKey[i].Name, value: &v}
	}
	return cells
}

// checkAttribute validates a cell a write puts.
func checkAttribute(c pbCell) *otsError {
	switch {
	case !validName(c.name):
		return invalidParam("Invalid column name: '%s'.", c.name)
	case c.value == nil:
		return invalidParam("The value of column '%s' is missing.", c.name)
	case !isAttributeType(c.value.vt):
		return invalidParam("Invalid type of column '%s': %s.", c.name, vtName(c.value.vt))
	case len(c.value.buf) > maxAttrValueLen:
		return invalidParam("The length of attribute column: '%s' exceeds the MaxLength:%d with CurrentLength:%d.",
			c.name, maxAttrValueLen, len(c.value.buf))
	case c.hasTS && c.ts < 0:
		return invalidParam("Invalid timestamp of column '%s': %d.", c.name, c.ts)
	}
	return nil
}

func checkColumnCount(cells []pbCell) *otsError {
	if len(cells) > maxColumnsInRow {
		return invalidParam("The number of attribute columns exceeds the limit: %d.", maxColumnsInRow)
	}
	return nil
}

// putRow replaces (or creates) a whole row.
func (t *table) putRow(change pbRow, cond rowCondition, ret returnSpec, now time.Time) (writeResult, *otsError) {
	key, e := t.checkKey(change.pk, keyPut)
	if e != nil {
		return writeResult{}, e
	}
	if change.deleteMarker {
		return writeResult{}, invalidParam("PutRow does not take a delete marker.")
	}
	if e := checkColumnCount(change.cells); e != nil {
		return writeResult{}, e
	}
	for _, c := range change.cells {
		if c.hasOp {
			return writeResult{}, invalidParam("PutRow does not take a cell type: column '%s'.", c.name)
		}
		if e := checkAttribute(c); e != nil {
			return writeResult{}, e
		}
	}
	auto := slices.ContainsFunc(key, func(v value) bool { return v.vt == vtAutoIncrement })
	var old *row
	if !auto {
		old = t.get(key)
	}
	if e := cond.check(old); e != nil {
		return writeResult{}, e
	}
	for i := range key {
		if key[i].vt == vtAutoIncrement {
			key[i] = intValue(t.nextAutoIncrement(now))
		}
	}
	nr := &row{key: key, cols: map[string][]cell{}}
	for _, c := range change.cells {
		nr.put(c.name, cell{ts: cellTime(c, now), v: *c.value}, t.meta.MaxVersions)
	}
	t.store(nr)
	res := writeResult{write: capacityUnits(nr.size(t.meta.PrimaryKey))}
	if cond.reads() {
		res.read = 1
	}
	if ret.typ == otsprotocol.ReturnType_RT_PK {
		res.row = encodeRows(pbRow{pk: t.keyCells(key)})
	}
	return res, nil
}

func cellTime(c pbCell, now time.Time) int64 {
	if c.hasTS {
		return c.ts
	}
	return now.UnixMilli()
}

// updateRow changes the columns it names: a put, a deletion of one version
// or of all, or an increment.
func (t *table) updateRow(change pbRow, cond rowCondition, ret returnSpec, now time.Time) (writeResult, *otsError) {
	key, e := t.checkKey(change.pk, keyExact)
	if e != nil {
		return writeResult{}, e
	}
	if len(change.cells) == 0 {
		return writeResult{}, errMissingAttrs
	}
	if e := checkColumnCount(change.cells); e != nil {
		return writeResult{}, e
	}
	old := t.get(key)
	if e := cond.check(old); e != nil {
		return writeResult{}, e
	}
	nr := &row{key: key, cols: map[string][]cell{}}
	if old != nil {
		nr = old.clone()
	}
	for _, c := range change.cells {
		if e := t.applyUpdate(nr, c, now); e != nil {
			return writeResult{}, e
		}
	}
	if old != nil || len(nr.cols) > 0 {
		t.store(nr)
	}
	res := writeResult{write: capacityUnits(nr.size(t.meta.PrimaryKey))}
	if cond.reads() {
		res.read = 1
	}
	switch ret.typ {
	case otsprotocol.ReturnType_RT_PK:
		res.row = encodeRows(pbRow{pk: t.keyCells(key)})
	case otsprotocol.ReturnType_RT_AFTER_MODIFY:
		out := pbRow{pk: t.keyCells(key)}
		for _, name := range ret.columns {
			if versions := nr.cols[name]; len(versions) > 0 {
				v := versions[0]
				out.cells = append(out.cells, pbCell{name: name, value: &v.v, ts: v.ts, hasTS: true})
			}
		}
		res.row = encodeRows(out)
	}
	return res, nil
}

func (t *table) applyUpdate(r *row, c pbCell, now time.Time) *otsError {
	if !validName(c.name) {
		return invalidParam("Invalid column name: '%s'.", c.name)
	}
	switch {
	case !c.hasOp:
		if e := checkAttribute(c); e != nil {
			return e
		}
		r.put(c.name, cell{ts: cellTime(c, now), v: *c.value}, t.meta.MaxVersions)
	case c.op == opDeleteAll:
		delete(r.cols, c.name)
	case c.op == opDeleteOne:
		if !c.hasTS {
			return invalidParam("Deleting one version of column '%s' needs its timestamp.", c.name)
		}
		r.cols[c.name] = slices.DeleteFunc(r.cols[c.name], func(o cell) bool { return o.ts == c.ts })
		if len(r.cols[c.name]) == 0 {
			delete(r.cols, c.name)
		}
	case c.op == opIncrement:
		if c.value == nil || c.value.vt != vtInteger || c.hasTS {
			return invalidParam("The increment of column '%s' must be an INTEGER without a timestamp.", c.name)
		}
		sum := c.value.num
		if versions := r.cols[c.name]; len(versions) > 0 {
			if versions[0].v.vt != vtInteger {
				return invalidParam("Column '%s' is not an INTEGER and cannot be incremented.", c.name)
			}
			sum += versions[0].v.num
		}
		r.put(c.name, cell{ts: now.UnixMilli(), v: intValue(sum)}, t.meta.MaxVersions)
	default:
		return invalidParam("Invalid cell type 0x%x of column '%s'.", c.op, c.name)
	}
	return nil
}

// deleteRow deletes a row, which need not exist.
func (t *table) deleteRow(change pbRow, cond rowCondition) (writeResult, *otsError) {
	key, e := t.checkKey(change.pk, keyExact)
	if e != nil {
		return writeResult{}, e
	}
	if len(change.cells) > 0 {
		return writeResult{}, invalidParam("DeleteRow takes no attribute column.")
	}
	if e := cond.check(t.get(key)); e != nil {
		return writeResult{}, e
	}
	t.remove(key)
	res := writeResult{write: 1}
	if cond.reads() {
		res.read = 1
	}
	return res, nil
}

func decodePutRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.PutRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	change, e := decodeRowField("row", req.GetRow())
	if e != nil {
		return nil, e
	}
	cond, e := parseCondition(req.GetCondition())
	if e != nil {
		return nil, e
	}
	ret := parseReturn(req.GetReturnContent())
	return &operation{key: rowKey(req.GetTableName(), change.pk), run: func(s *Server, now time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		res, e := t.putRow(change, cond, ret, now)
		if e != nil {
			return nil, e
		}
		return &otsprotocol.PutRowResponse{Consumed: consumed(res.read, res.write), Row: res.row}, nil
	}}, nil
}

func decodeUpdateRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.UpdateRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	change, e := decodeRowField("row_change", req.GetRowChange())
	if e != nil {
		return nil, e
	}
	cond, e := parseCondition(req.GetCondition())
	if e != nil {
		return nil, e
	}
	ret := parseReturn(req.GetReturnContent())
	return &operation{key: rowKey(req.GetTableName(), change.pk), run: func(s *Server, now time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		res, e := t.updateRow(change, cond, ret, now)
		if e != nil {
			return nil, e
		}
		return &otsprotocol.UpdateRowResponse{Consumed: consumed(res.read, res.write), Row: res.row}, nil
	}}, nil
}

func decodeDeleteRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.DeleteRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	change, e := decodeRowField("primary_key", req.GetPrimaryKey())
	if e != nil {
		return nil, e
	}
	cond, e := parseCondition(req.GetCondition())
	if e != nil {
		return nil, e
	}
	return &operation{key: rowKey(req.GetTableName(), change.pk), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		res, e := t.deleteRow(change, cond)
		if e != nil {
			return nil, e
		}
		return &otsprotocol.DeleteRowResponse{Consumed: consumed(res.read, res.write)}, nil
	}}, nil
}

// --- reads ---

// readSpec is what a read returns of a row.
type readSpec struct {
	columns     map[string]bool // nil: every column
	maxVersions int             // 0: every version in the time range
	timeRange   bool
	start, end  int64 // [start, end) in ms, with timeRange
	filter      *filter
	startColumn string // columns from startColumn (inclusive) …
	endColumn   string // … to endColumn (exclusive); "" means open
	entirePK    bool   // return the whole primary key, not only the named columns
}

type readRequest interface {
	GetColumnsToGet() []string
	GetTimeRange() *otsprotocol.TimeRange
	GetMaxVersions() int32
	GetFilter() []byte
	GetStartColumn() string
	GetEndColumn() string
}

// parseReadSpec reads the options GetRow, BatchGetRow and GetRange share.
// The service needs max_versions or a time range (the SDK checks it too).
func parseReadSpec(req readRequest, hasMaxVersions bool) (readSpec, *otsError) {
	spec := readSpec{entirePK: true, startColumn: req.GetStartColumn(), endColumn: req.GetEndColumn()}
	if n := len(req.GetColumnsToGet()); n > maxColumnsToGet {
		return spec, invalidParam("The number of columns to get exceeds the limit: %d.", maxColumnsToGet)
	} else if n > 0 {
		spec.columns = map[string]bool{}
		for _, c := range req.GetColumnsToGet() {
			spec.columns[c] = true
		}
	}
	tr := req.GetTimeRange()
	if !hasMaxVersions && tr == nil {
		return spec, invalidParam("Neither max_versions nor time_range is set.")
	}
	if hasMaxVersions {
		if spec.maxVersions = int(req.GetMaxVersions()); spec.maxVersions <= 0 {
			return spec, invalidParam("max_versions must be greater than 0.")
		}
	}
	if tr != nil {
		spec.timeRange = true
		switch {
		case tr.SpecificTime != nil:
			spec.start, spec.end = tr.GetSpecificTime(), tr.GetSpecificTime()+1
		case tr.StartTime != nil && tr.EndTime != nil:
			spec.start, spec.end = tr.GetStartTime(), tr.GetEndTime()
		default:
			return spec, invalidParam("Invalid time range: give specific_time, or start_time and end_time.")
		}
		if spec.start < 0 || spec.start >= spec.end {
			return spec, invalidParam("Invalid time range: [%d, %d).", spec.start, spec.end)
		}
	}
	if len(req.GetFilter()) > 0 {
		f, e := parseFilter(req.GetFilter(), true)
		if e != nil {
			return spec, e
		}
		spec.filter = f
	}
	return spec, nil
}

// read returns what spec selects of r, and false when the row is not
// returned (filtered out, or none of the requested columns exists).
func (t *table) read(r *row, spec readSpec) (pbRow, bool) {
	sel := map[string][]cell{}
	for name, versions := range r.cols {
		if spec.columns != nil && !spec.columns[name] ||
			spec.startColumn != "" && name < spec.startColumn ||
			spec.endColumn != "" && name >= spec.endColumn {
			continue
		}
		if spec.timeRange {
			versions = slices.DeleteFunc(slices.Clone(versions), func(c cell) bool { return c.ts < spec.start || c.ts >= spec.end })
		}
		if spec.maxVersions > 0 && len(versions) > spec.maxVersions {
			versions = versions[:spec.maxVersions]
		}
		if len(versions) > 0 {
			sel[name] = versions
		}
	}
	if spec.filter != nil && !spec.filter.pass(sel) {
		return pbRow{}, false
	}
	names := slices.Sorted(maps.Keys(sel))
	if f := spec.filter; f != nil && f.typ == otsprotocol.FilterType_FT_COLUMN_PAGINATION {
		lo := min(f.offset, len(names))
		names = names[lo:min(lo+f.limit, len(names))]
	}

	var out pbRow
	pkNamed := false
	for _, k := range t.keyCells(r.key) {
		if spec.columns[k.name] {
			pkNamed = true
		} else if !spec.entirePK {
			continue
		}
		out.pk = append(out.pk, k)
	}
	if spec.columns != nil && len(names) == 0 && !pkNamed {
		return pbRow{}, false
	}
	for _, name := range names {
		for _, c := range sel[name] {
			out.cells = append(out.cells, pbCell{name: name, value: &c.v, ts: c.ts, hasTS: true})
		}
	}
	return out, true
}

// readSize approximates the bytes of a returned row.
func readSize(r pbRow) int {
	n := 0
	for _, c := range slices.Concat(r.pk, r.cells) {
		n += len(c.name) + c.value.size()
		if c.hasTS {
			n += 8
		}
	}
	return n
}

func decodeGetRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.GetRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	if len(req.GetToken()) > 0 {
		return nil, notEmulated("row tokens")
	}
	pk, e := decodeRowField("primary_key", req.GetPrimaryKey())
	if e != nil {
		return nil, e
	}
	spec, e := parseReadSpec(&req, req.MaxVersions != nil)
	if e != nil {
		return nil, e
	}
	return &operation{key: rowKey(req.GetTableName(), pk.pk), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		key, e := t.checkKey(pk.pk, keyExact)
		if e != nil {
			return nil, e
		}
		resp := &otsprotocol.GetRowResponse{Row: []byte{}, Consumed: consumed(1, 0)}
		if r := t.get(key); r != nil {
			if out, ok := t.read(r, spec); ok {
				resp.Row = encodeRows(out)
				resp.Consumed = consumed(capacityUnits(readSize(out)), 0)
			}
		}
		return resp, nil
	}}, nil
}
