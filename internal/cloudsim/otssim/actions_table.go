package otssim

import (
	"maps"
	"slices"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"
)

// The table calls. Messages for invalid schemas are the service's where the
// Python SDK's tests show them ("Duplicated primary key name", "… is an
// invalid type for the primary key.") and unverified otherwise.

// defaultDeviationSec is the allowed deviation of explicit cell timestamps
// DescribeTable reports; it is not enforced here.
const defaultDeviationSec = 86400

func unmarshal(body []byte, m proto.Message) *otsError {
	if err := proto.Unmarshal(body, m); err != nil {
		return errBadProtobuf
	}
	return nil
}

func decodeCreateTable(body []byte) (*operation, *otsError) {
	var req otsprotocol.CreateTableRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	t, e := tableFromRequest(&req)
	if e != nil {
		return nil, e
	}
	return &operation{key: t.meta.Name, run: func(s *Server, now time.Time) (proto.Message, *otsError) {
		return &otsprotocol.CreateTableResponse{}, s.addTable(t, now)
	}}, nil
}

func tableFromRequest(req *otsprotocol.CreateTableRequest) (*table, *otsError) {
	switch {
	case len(req.GetIndexMetas()) > 0 || len(req.GetTableMeta().GetIndexMeta()) > 0:
		return nil, notEmulated("secondary indexes")
	case req.GetStreamSpec().GetEnableStream():
		return nil, notEmulated("streams")
	case req.GetSseSpec().GetEnable():
		return nil, notEmulated("server-side encryption")
	case req.GetEnableLocalTxn():
		return nil, notEmulated("local transactions")
	case len(req.GetPartitions()) > 0:
		return nil, notEmulated("pre-split partitions")
	}
	meta := Table{Name: req.GetTableMeta().GetTableName(), MaxVersions: 1, TimeToLive: -1}
	for _, k := range req.GetTableMeta().GetPrimaryKey() {
		meta.PrimaryKey = append(meta.PrimaryKey, KeyColumn{
			Name:          k.GetName(),
			Type:          KeyType(k.GetType()),
			AutoIncrement: k.Option != nil && k.GetOption() == otsprotocol.PrimaryKeyOption_AUTO_INCREMENT,
		})
		if k.Option != nil && k.GetOption() != otsprotocol.PrimaryKeyOption_AUTO_INCREMENT {
			return nil, invalidParam("Invalid option of primary key column: '%s'.", k.GetName())
		}
	}
	if o := req.GetTableOptions(); o != nil {
		if o.MaxVersions != nil {
			meta.MaxVersions = int(o.GetMaxVersions())
			if meta.MaxVersions <= 0 {
				return nil, invalidParam("max_versions must be greater than 0.")
			}
		}
		if o.TimeToLive != nil {
			meta.TimeToLive = int(o.GetTimeToLive())
			if meta.TimeToLive != -1 && meta.TimeToLive < 86400 {
				return nil, invalidParam("time_to_live must be -1 or at least 86400 seconds.")
			}
		}
	}
	t, e := newTable(meta)
	if e != nil {
		return nil, e
	}
	for _, d := range req.GetTableMeta().GetDefinedColumn() {
		if !validName(d.GetName()) {
			return nil, invalidParam("Invalid column name: '%s'.", d.GetName())
		}
		t.defined = append(t.defined, definedColumn{name: d.GetName(), typ: int32(d.GetType())})
	}
	cu := req.GetReservedThroughput().GetCapacityUnit()
	t.reservedRead, t.reservedWrite = cu.GetRead(), cu.GetWrite()
	if t.reservedRead < 0 || t.reservedWrite < 0 || t.reservedRead > 100000 || t.reservedWrite > 100000 {
		return nil, invalidParam("The reserved capacity unit must be in range [0, 100000].")
	}
	return t, nil
}

// newTable validates a schema.
func newTable(meta Table) (*table, *otsError) {
	if !validName(meta.Name) {
		return nil, invalidParam("Invalid table name: '%s'.", meta.Name)
	}
	if n := len(meta.PrimaryKey); n < 1 || n > maxKeyColumns {
		return nil, invalidParam("The number of primary key columns must be in range: [1, %d].", maxKeyColumns)
	}
	seen := map[string]bool{}
	for i, k := range meta.PrimaryKey {
		if !validName(k.Name) {
			return nil, invalidParam("Invalid primary key name: '%s'.", k.Name)
		}
		if seen[k.Name] {
			return nil, invalidParam("Duplicated primary key name: '%s'.", k.Name)
		}
		seen[k.Name] = true
		switch k.Type {
		case KeyInteger, KeyString, KeyBinary:
		default:
			return nil, invalidParam("%d is an invalid type for the primary key.", k.Type)
		}
		if k.AutoIncrement && (k.Type != KeyInteger || i == 0) {
			return nil, invalidParam("The auto-increment primary key column must be an INTEGER column other than the first: '%s'.", k.Name)
		}
	}
	if meta.MaxVersions == 0 {
		meta.MaxVersions = 1
	}
	if meta.TimeToLive == 0 {
		meta.TimeToLive = -1
	}
	if meta.MaxVersions < 0 {
		return nil, invalidParam("max_versions must be greater than 0.")
	}
	meta.PrimaryKey = slices.Clone(meta.PrimaryKey)
	return &table{meta: meta}, nil
}

func (s *Server) addTable(t *table, now time.Time) *otsError {
	if s.tables[t.meta.Name] != nil {
		return errTableExists
	}
	if len(s.tables) >= maxTables {
		return errTooManyTables
	}
	t.created = now
	s.tables[t.meta.Name] = t
	return nil
}

func (s *Server) lookup(name string) (*table, *otsError) {
	if t := s.tables[name]; t != nil {
		return t, nil
	}
	return nil, errTableNotExist
}

func decodeDescribeTable(body []byte) (*operation, *otsError) {
	var req otsprotocol.DescribeTableRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	return &operation{key: req.GetTableName(), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		t, e := s.lookup(req.GetTableName())
		if e != nil {
			return nil, e
		}
		return t.describe(), nil
	}}, nil
}

func (t *table) describe() *otsprotocol.DescribeTableResponse {
	meta := &otsprotocol.TableMeta{TableName: proto.String(t.meta.Name)}
	for _, k := range t.meta.PrimaryKey {
		pk := &otsprotocol.PrimaryKeySchema{Name: proto.String(k.Name), Type: otsprotocol.PrimaryKeyType(k.Type).Enum()}
		if k.AutoIncrement {
			pk.Option = otsprotocol.PrimaryKeyOption_AUTO_INCREMENT.Enum()
		}
		meta.PrimaryKey = append(meta.PrimaryKey, pk)
	}
	for _, d := range t.defined {
		meta.DefinedColumn = append(meta.DefinedColumn, &otsprotocol.DefinedColumnSchema{
			Name: proto.String(d.name), Type: otsprotocol.DefinedColumnType(d.typ).Enum()})
	}
	return &otsprotocol.DescribeTableResponse{
		TableMeta: meta,
		ReservedThroughputDetails: &otsprotocol.ReservedThroughputDetails{
			CapacityUnit:     &otsprotocol.CapacityUnit{Read: proto.Int32(t.reservedRead), Write: proto.Int32(t.reservedWrite)},
			LastIncreaseTime: proto.Int64(t.created.Unix()),
		},
		TableOptions: &otsprotocol.TableOptions{
			TimeToLive:                proto.Int32(int32(t.meta.TimeToLive)),
			MaxVersions:               proto.Int32(int32(t.meta.MaxVersions)),
			DeviationCellVersionInSec: proto.Int64(defaultDeviationSec),
			AllowUpdate:               proto.Bool(true),
			UpdateFullRow:             proto.Bool(false),
		},
		TableStatus:   otsprotocol.TableStatus_ACTIVE.Enum(),
		StreamDetails: &otsprotocol.StreamDetails{EnableStream: proto.Bool(false)},
	}
}

func decodeListTable(body []byte) (*operation, *otsError) {
	var req otsprotocol.ListTableRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	return &operation{run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		return &otsprotocol.ListTableResponse{TableNames: slices.Sorted(maps.Keys(s.tables))}, nil
	}}, nil
}

func decodeDeleteTable(body []byte) (*operation, *otsError) {
	var req otsprotocol.DeleteTableRequest
	if e := unmarshal(body, &req); e != nil {
		return nil, e
	}
	return &operation{key: req.GetTableName(), run: func(s *Server, _ time.Time) (proto.Message, *otsError) {
		if _, e := s.lookup(req.GetTableName()); e != nil {
			return nil, e
		}
		delete(s.tables, req.GetTableName())
		return &otsprotocol.DeleteTableResponse{}, nil
	}}, nil
}

// CreateTable creates a table directly, as a test's setup would with the
// SDK. The error, if any, is the one the CreateTable call would answer.
func (s *Server) CreateTable(meta Table) error {
	t, e := newTable(meta)
	if e == nil {
		s.mu.Lock()
		e = s.addTable(t, s.clock.Now())
		s.mu.Unlock()
	}
	if e != nil {
		return e
	}
	return nil
}
