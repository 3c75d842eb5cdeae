package otssim

import (
	"strings"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"
)

// The multi-row calls: GetRange, BatchGetRow and BatchWriteRow.

func decodeGetRange(body []byte) (*operation, *otsError) {
	var req otsprotocol.GetRangeRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	if len(req.GetToken()) > 0 {
		return nil, notEmulated("row tokens")
	}
	start, e := decodeRowField("inclusive_start_primary_key", req.GetInclusiveStartPrimaryKey())
	if e != nil {
		return nil, e
	}
	end, e := decodeRowField("exclusive_end_primary_key", req.GetExclusiveEndPrimaryKey())
	if e != nil {
		return nil, e
	}
	spec, e := parseReadSpec(&req, req.MaxVersions != nil)
	if e != nil {
		return nil, e
	}
	spec.entirePK = req.GetReturnEntirePrimaryKeys()
	limit := maxRangeRows
	if req.Limit != nil {
		if req.GetLimit() <= 0 {
			return nil, errLimitNotPositive
		}
		limit = min(limit, int(req.GetLimit()))
	}
	backward := req.GetDirection() == otsprotocol.Direction_BACKWARD
	if !backward && req.GetDirection() != otsprotocol.Direction_FORWARD {
		return nil, invalidParam("Invalid direction: %d.", req.GetDirection())
	}
	return &operation{key: rowKey(req.GetTableName(), start.pk), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		from, e := t.checkKey(start.pk, keyRange)
		if e != nil {
			return nil, e
		}
		to, e := t.checkKey(end.pk, keyRange)
		if e != nil {
			return nil, e
		}
		c := compareKeys(from, to)
		if !backward && c >= 0 {
			return nil, invalidParam("Begin key must less than end key in FORWARD")
		}
		if backward && c <= 0 {
			return nil, invalidParam("Begin key must more than end key in BACKWARD")
		}
		return t.scan(from, to, backward, limit, spec), nil
	}}, nil
}

// scan reads the rows from the inclusive bound from to the exclusive bound
// to. It stops before the row that would exceed limit rows, 5000 scanned
// rows (filtered out or not) or 4 MB of returned data (a first row is
// returned whatever its size), and names that row as the next start. A page
// may so be empty and still have a next start.
func (t *table) scan(from, to []value, backward bool, limit int, spec readSpec) *otsprotocol.GetRangeResponse {
	i, found := t.find(from)
	step := 1
	if backward {
		step = -1
		if !found {
			i--
		}
	}
	var rows []pbRow
	var next []value
	scanned, size := 0, 0
	for ; i >= 0 && i < len(t.rows); i += step {
		r := t.rows[i]
		if c := compareKeys(r.key, to); !backward && c >= 0 || backward && c <= 0 {
			break
		}
		if len(rows) == limit || scanned == maxRangeRows {
			next = r.key
			break
		}
		out, ok := t.read(r, spec)
		if ok && len(rows) > 0 && size+readSize(out) > maxRangeBytes {
			next = r.key
			break
		}
		scanned++
		if ok {
			rows = append(rows, out)
			size += readSize(out)
		}
	}
	resp := &otsprotocol.GetRangeResponse{
		Consumed:      consumed(capacityUnits(size), 0),
		Rows:          []byte{},
		DataBlockType: otsprotocol.DataBlockType_DBT_PLAIN_BUFFER.Enum(),
		CompressType:  otsprotocol.CompressType_CPT_NONE.Enum(),
	}
	if len(rows) > 0 {
		resp.Rows = encodeRows(rows...)
	}
	if next != nil {
		resp.NextStartPrimaryKey = encodeRows(pbRow{pk: t.keyCells(next)})
	}
	return resp
}

type batchGetTable struct {
	name string
	spec readSpec
	keys []pbRow
}

func decodeBatchGetRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.BatchGetRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if len(req.GetTables()) == 0 {
		return nil, errNoRowsBatchGet
	}
	var tables []batchGetTable
	var names []string
	total := 0
	for _, tr := range req.GetTables() {
		if len(tr.GetToken()) > 0 {
			return nil, notEmulated("row tokens")
		}
		spec, e := parseReadSpec(tr, tr.MaxVersions != nil)
		if e != nil {
			return nil, e
		}
		bt := batchGetTable{name: tr.GetTableName(), spec: spec}
		for _, raw := range tr.GetPrimaryKey() {
			pk, e := decodeRowField("primary_key", raw)
			if e != nil {
				return nil, e
			}
			bt.keys = append(bt.keys, pk)
		}
		total += len(bt.keys)
		tables = append(tables, bt)
		names = append(names, bt.name)
	}
	if total > maxBatchGetRows {
		return nil, invalidParam("Rows count exceeds the upper limit: %d.", maxBatchGetRows) // message unverified
	}
	return &operation{key: strings.Join(names, "\x00"), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		resp := &otsprotocol.BatchGetRowResponse{}
		for _, bt := range tables {
			t, e := s.lookup(bt.name)
			if e != nil {
				return nil, e
			}
			out := &otsprotocol.TableInBatchGetRowResponse{TableName: proto.String(bt.name)}
			for _, pk := range bt.keys {
				out.Rows = append(out.Rows, noteRowFailure(s, t.batchGet(pk, bt.spec)))
			}
			resp.Tables = append(resp.Tables, out)
		}
		return resp, nil
	}}, nil
}

func (t *table) batchGet(pk pbRow, spec readSpec) *otsprotocol.RowInBatchGetRowResponse {
	key, e := t.checkKey(pk.pk, keyExact)
	if e != nil {
		return &otsprotocol.RowInBatchGetRowResponse{IsOk: proto.Bool(false), Error: errorBody(e)}
	}
	res := &otsprotocol.RowInBatchGetRowResponse{IsOk: proto.Bool(true), Consumed: consumed(1, 0), Row: []byte{}}
	if r := t.get(key); r != nil {
		if out, ok := t.read(r, spec); ok {
			res.Row = encodeRows(out)
			res.Consumed = consumed(capacityUnits(readSize(out)), 0)
		}
	}
	return res
}

// noteRowFailure counts a batch row's error under its code (s.mu held).
func noteRowFailure[R interface{ GetError() *otsprotocol.Error }](s *Server, r R) R {
	if err := r.GetError(); err != nil {
		s.failures[err.GetCode()]++
	}
	return r
}

type batchWrite struct {
	typ    otsprotocol.OperationType
	change pbRow
	cond   rowCondition
	ret    returnSpec
}

type batchWriteTable struct {
	name string
	rows []batchWrite
}

func decodeBatchWriteRow(body []byte) (*operation, *otsError) {
	var req otsprotocol.BatchWriteRowRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, notEmulated("transactions")
	}
	if req.GetIsAtomic() {
		return nil, notEmulated("atomic batch writes")
	}
	if len(req.GetTables()) == 0 {
		return nil, errNoRowsBatchPut
	}
	var tables []batchWriteTable
	var names []string
	seen := map[string]bool{}
	total, size := 0, 0
	for _, tr := range req.GetTables() {
		name := tr.GetTableName()
		if seen[name] {
			return nil, invalidParam("Duplicated table name: '%s'.", name) // message unverified
		}
		seen[name] = true
		if len(tr.GetRows()) == 0 {
			return nil, invalidParam("No operation is specified for table: '%s'.", name)
		}
		bt := batchWriteTable{name: name}
		for _, rr := range tr.GetRows() {
			w := batchWrite{typ: rr.GetType(), ret: parseReturn(rr.GetReturnContent())}
			if _, ok := otsprotocol.OperationType_name[int32(w.typ)]; !ok {
				return nil, invalidParam("Invalid operation type: %d.", w.typ)
			}
			var e *otsError
			if w.change, e = decodeRowField("row_change", rr.GetRowChange()); e != nil {
				return nil, e
			}
			if w.cond, e = parseCondition(rr.GetCondition()); e != nil {
				return nil, e
			}
			size += len(rr.GetRowChange())
			bt.rows = append(bt.rows, w)
		}
		total += len(bt.rows)
		tables = append(tables, bt)
		names = append(names, name)
	}
	if total > maxBatchPutRows {
		return nil, invalidParam("Rows count exceeds the upper limit: %d.", maxBatchPutRows) // message unverified
	}
	if size > maxRowBytes {
		return nil, invalidParam("The total data size of BatchWriteRow exceeds the limit: %d bytes.", maxRowBytes) // message unverified
	}
	return &operation{key: strings.Join(names, "\x00"), run: func(s *Server, now time.Time) (proto.Message, *otsError) {
		// Every table must exist before any row is written.
		for _, bt := range tables {
			if _, e := s.lookup(bt.name); e != nil {
				return nil, e
			}
		}
		resp := &otsprotocol.BatchWriteRowResponse{}
		for _, bt := range tables {
			t := s.tables[bt.name]
			out := &otsprotocol.TableInBatchWriteRowResponse{TableName: proto.String(bt.name)}
			for _, w := range bt.rows {
				out.Rows = append(out.Rows, noteRowFailure(s, t.batchWrite(w, now)))
			}
			resp.Tables = append(resp.Tables, out)
		}
		return resp, nil
	}}, nil
}

func (t *table) batchWrite(w batchWrite, now time.Time) *otsprotocol.RowInBatchWriteRowResponse {
	var res writeResult
	var e *otsError
	switch w.typ {
	case otsprotocol.OperationType_PUT:
		res, e = t.putRow(w.change, w.cond, w.ret, now)
	case otsprotocol.OperationType_UPDATE:
		res, e = t.updateRow(w.change, w.cond, w.ret, now)
	default:
		res, e = t.deleteRow(w.change, w.cond)
	}
	if e != nil {
		return &otsprotocol.RowInBatchWriteRowResponse{IsOk: proto.Bool(false), Error: errorBody(e)}
	}
	return &otsprotocol.RowInBatchWriteRowResponse{IsOk: proto.Bool(true), Consumed: consumed(res.read, res.write), Row: res.row}
}
