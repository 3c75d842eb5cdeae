package otssim

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"
)

// Column conditions of writes and filters of reads share one wire form, a
// protobuf Filter holding a SingleColumnValueFilter, a
// CompositeColumnValueFilter (AND, OR, NOT over sub-filters) or, for reads
// only, a ColumnPaginationFilter.
//
// Semantics (SingleColumnValueFilter reference and the SDKs' tests):
//   - A missing column fails the condition when filter_if_missing is set
//     (the Go SDK's FilterIfMissing; Java's and Python's pass_if_missing is
//     its negation) and passes it otherwise.
//   - latest_version_only compares the newest version only; otherwise any
//     version that satisfies the comparison passes.
//   - Values of different types never compare equal and have no order, so
//     only NOT_EQUAL passes between them (unverified).
//   - A read filter sees only the columns the read returns: a filter on a
//     column outside columns_to_get finds it missing.
//   - At most 10 conditions (documented); NOT takes exactly one sub-filter
//     and AND/OR at least two (unverified).

const (
	maxConditions  = 10
	maxFilterDepth = 10
)

type filter struct {
	typ otsprotocol.FilterType

	// FT_SINGLE_COLUMN_VALUE
	column          string
	comparator      otsprotocol.ComparatorType
	operand         value
	filterIfMissing bool
	latestOnly      bool

	// FT_COMPOSITE_COLUMN_VALUE
	combinator otsprotocol.LogicalOperator
	subs       []*filter

	// FT_COLUMN_PAGINATION
	offset, limit int
}

// parseFilter decodes a serialized Filter. Pagination is only allowed at
// the top of a read filter.
func parseFilter(b []byte, read bool) (*filter, *otsError) {
	var pb otsprotocol.Filter
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, invalidParam("Invalid filter: %v.", err)
	}
	conditions := 0
	return parseFilterParts(pb.GetType(), pb.GetFilter(), read, 0, &conditions)
}

// parseFilterParts decodes a filter of type typ serialized in payload.
func parseFilterParts(typ otsprotocol.FilterType, payload []byte, read bool, depth int, conditions *int) (*filter, *otsError) {
	if depth > maxFilterDepth {
		return nil, invalidParam("The filter is nested too deeply.")
	}
	f := &filter{typ: typ}
	switch typ {
	case otsprotocol.FilterType_FT_SINGLE_COLUMN_VALUE:
		*conditions++
		if *conditions > maxConditions {
			return nil, invalidParam("The number of conditions in a filter exceeds %d.", maxConditions)
		}
		var s otsprotocol.SingleColumnValueFilter
		if err := proto.Unmarshal(payload, &s); err != nil {
			return nil, invalidParam("Invalid SingleColumnValueFilter: %v.", err)
		}
		if s.ValueTransRule != nil {
			return nil, notEmulated("value_trans_rule")
		}
		v, err := decodeValue(s.GetColumnValue())
		if err != nil || !isAttributeType(v.vt) {
			return nil, invalidParam("Invalid column value in the condition on %q.", s.GetColumnName())
		}
		if _, ok := otsprotocol.ComparatorType_name[int32(s.GetComparator())]; !ok {
			return nil, invalidParam("Invalid comparator: %d.", s.GetComparator())
		}
		f.column, f.comparator, f.operand = s.GetColumnName(), s.GetComparator(), v
		f.filterIfMissing, f.latestOnly = s.GetFilterIfMissing(), s.GetLatestVersionOnly()
	case otsprotocol.FilterType_FT_COMPOSITE_COLUMN_VALUE:
		var c otsprotocol.CompositeColumnValueFilter
		if err := proto.Unmarshal(payload, &c); err != nil {
			return nil, invalidParam("Invalid CompositeColumnValueFilter: %v.", err)
		}
		f.combinator = c.GetCombinator()
		n := len(c.GetSubFilters())
		switch f.combinator {
		case otsprotocol.LogicalOperator_LO_NOT:
			if n != 1 {
				return nil, invalidParam("LO_NOT takes exactly one sub filter, got %d.", n)
			}
		case otsprotocol.LogicalOperator_LO_AND, otsprotocol.LogicalOperator_LO_OR:
			if n < 2 {
				return nil, invalidParam("%s takes at least two sub filters, got %d.", f.combinator, n)
			}
		default:
			return nil, invalidParam("Invalid logical operator: %d.", f.combinator)
		}
		for _, sub := range c.GetSubFilters() {
			sf, err := parseFilterParts(sub.GetType(), sub.GetFilter(), false, depth+1, conditions)
			if err != nil {
				return nil, err
			}
			f.subs = append(f.subs, sf)
		}
	case otsprotocol.FilterType_FT_COLUMN_PAGINATION:
		if !read || depth > 0 {
			return nil, invalidParam("ColumnPaginationFilter is only allowed as the filter of a read.")
		}
		var p otsprotocol.ColumnPaginationFilter
		if err := proto.Unmarshal(payload, &p); err != nil {
			return nil, invalidParam("Invalid ColumnPaginationFilter: %v.", err)
		}
		if p.GetOffset() < 0 || p.GetLimit() < 0 {
			return nil, invalidParam("The offset and limit of ColumnPaginationFilter must not be negative.")
		}
		f.offset, f.limit = int(p.GetOffset()), int(p.GetLimit())
	default:
		return nil, invalidParam("Invalid filter type: %d.", f.typ)
	}
	return f, nil
}

func isAttributeType(vt byte) bool {
	switch vt {
	case vtInteger, vtDouble, vtBoolean, vtString, vtBlob:
		return true
	}
	return false
}

// pass evaluates a condition or filter against a row's columns (nil when
// the row does not exist). Pagination does not select rows: it passes.
func (f *filter) pass(cols map[string][]cell) bool {
	switch f.typ {
	case otsprotocol.FilterType_FT_SINGLE_COLUMN_VALUE:
		versions := cols[f.column]
		if len(versions) == 0 {
			return !f.filterIfMissing
		}
		if f.latestOnly {
			versions = versions[:1]
		}
		return slices.ContainsFunc(versions, func(c cell) bool { return compareOK(c.v, f.operand, f.comparator) })
	case otsprotocol.FilterType_FT_COMPOSITE_COLUMN_VALUE:
		switch f.combinator {
		case otsprotocol.LogicalOperator_LO_NOT:
			return !f.subs[0].pass(cols)
		case otsprotocol.LogicalOperator_LO_AND:
			for _, s := range f.subs {
				if !s.pass(cols) {
					return false
				}
			}
			return true
		default: // LO_OR
			for _, s := range f.subs {
				if s.pass(cols) {
					return true
				}
			}
			return false
		}
	}
	return true
}

// compareOK reports whether "column comparator operand" holds.
func compareOK(column, operand value, comparator otsprotocol.ComparatorType) bool {
	if column.vt != operand.vt {
		return comparator == otsprotocol.ComparatorType_CT_NOT_EQUAL
	}
	var c int
	switch column.vt {
	case vtInteger, vtBoolean:
		c = cmp.Compare(column.num, operand.num)
	case vtDouble:
		c = cmp.Compare(column.goValue().(float64), operand.goValue().(float64))
	default:
		c = bytes.Compare(column.buf, operand.buf)
	}
	switch comparator {
	case otsprotocol.ComparatorType_CT_EQUAL:
		return c == 0
	case otsprotocol.ComparatorType_CT_NOT_EQUAL:
		return c != 0
	case otsprotocol.ComparatorType_CT_GREATER_THAN:
		return c > 0
	case otsprotocol.ComparatorType_CT_GREATER_EQUAL:
		return c >= 0
	case otsprotocol.ComparatorType_CT_LESS_THAN:
		return c < 0
	}
	return c <= 0 // CT_LESS_EQUAL
}
