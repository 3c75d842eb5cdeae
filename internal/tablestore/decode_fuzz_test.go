package tablestore

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	ots "github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// knownColumns are every column a state, audit or document row has.
func knownColumns() []string {
	var names []string
	for _, cols := range [][]ots.AttributeColumn{encode(handler.Record{}), encodeAudit(upgrade.AuditEntry{}), encodeDoc(handler.Doc{})} {
		for _, c := range cols {
			if !slices.Contains(names, c.ColumnName) {
				names = append(names, c.ColumnName)
			}
		}
	}
	return names
}

// value makes a column value of one of the five types the SDK decodes
// (and nil, a column that is absent).
func value(typ uint8, s string, n int64) any {
	switch typ % 6 {
	case 0:
		return s
	case 1:
		return n
	case 2:
		return math.Float64frombits(uint64(n))
	case 3:
		return n&1 == 1
	case 4:
		return []byte(s)
	}
	return nil
}

// edit sets column name of cols to v (nil removes it), or adds it.
func edit(cols []*ots.AttributeColumn, name string, v any) []*ots.AttributeColumn {
	cols = slices.DeleteFunc(slices.Clone(cols), func(c *ots.AttributeColumn) bool { return c.ColumnName == name })
	if v != nil {
		cols = append(cols, &ots.AttributeColumn{ColumnName: name, Value: v})
	}
	return cols
}

func pointers(cols []ots.AttributeColumn) []*ots.AttributeColumn {
	out := make([]*ots.AttributeColumn, len(cols))
	for i := range cols {
		out[i] = &cols[i]
	}
	return out
}

// The attribute columns of a row, as any version of the function or a hand
// at the console may have left them: every decoder returns a value within its
// ranges that encodes back to the same columns it read, or an error naming
// the row and a column it knows. A column it does not know changes nothing.
func FuzzDecodeRow(f *testing.F) {
	known := knownColumns()
	f.Add("sag-0ovhf732a9j", "state#Device", "claimed", int64(1), uint8(0), "", uint8(0), int64(0), "", uint8(0), "", int64(0))
	f.Add("sag-0ovhf732a9j", "state#Dpi", "requested", int64(4), uint8(1), "rev", uint8(0), int64(0), "wave", uint8(1), "", int64(3))
	f.Add("sag-a", "state#Device", "verified", int64(2), uint8(1), "attempts", uint8(1), int64(-1), "paused_by", uint8(0), "ops", int64(0))
	f.Add("sag-a", "state#Device", "paused", int64(2), uint8(1), "lease_until", uint8(0), int64(0), "weight", uint8(2), "", int64(4602678819172646912))
	f.Add("sag-a", "state#Device", "failed", int64(1), uint8(1), "version_type", uint8(0), int64(0), "blob", uint8(4), "\x00\x01", int64(0))
	f.Add("sag-a", "audit#2026-11-22T18:00:00.000000000Z#Device#000000000001#claimed", "claimed", int64(1), uint8(2), "at", uint8(0), int64(0), "force", uint8(3), "", int64(1))
	f.Add("rollout#Device#sag-1000#2.3.1", "doc", "", int64(1), uint8(3), "body", uint8(4), int64(0), "kind", uint8(0), "doc", int64(0))
	f.Add("control", "doc", "", int64(9), uint8(3), "rev", uint8(2), int64(0), "", uint8(5), "", int64(0))

	f.Fuzz(func(t *testing.T, pk, sk, state string, rev int64, which uint8, name1 string, typ1 uint8, n1 int64,
		name2 string, typ2 uint8, s2 string, n2 int64) {
		keys := []*ots.PrimaryKeyColumn{{ColumnName: "pk", Value: pk}, {ColumnName: "sk", Value: sk}}
		vt := upgrade.VersionType(strings.TrimPrefix(sk, statePrefix))
		at := time.UnixMilli(1795370400000 + n1%1e12)
		var base []*ots.AttributeColumn
		switch which % 4 {
		case 0, 1:
			base = pointers(encode(handler.Record{Gateway: pk, VersionType: vt, Rev: rev, State: handler.State(state),
				Target: "2.3.1", LeaseUntil: at, Attempts: int(n1 % 5), UpdatedAt: at}))
		case 2:
			base = pointers(encodeAudit(upgrade.AuditEntry{Gateway: pk, VersionType: upgrade.VersionDevice, Time: at,
				Event: state, Rev: rev, Force: n1&1 == 1}))
		case 3:
			base = pointers(encodeDoc(handler.Doc{ID: pk, Rev: rev, Body: []byte(state)}))
		}
		// One column of any name set to any type, and another of any name.
		cols := edit(base, name1, value(typ1, state, n1))
		cols = edit(cols, name2, value(typ2, s2, n2))

		check := func(what string, cols []*ots.AttributeColumn) (results []any) {
			rec, recErr := decode("Test", keys, cols)
			entry, auditErr := decodeAudit("Test", keys, cols)
			doc, docErr := decodeDoc("Test", keys, cols)
			for _, err := range []error{recErr, auditErr, docErr} {
				if err == nil {
					continue
				}
				var re *RowError
				if !errors.As(err, &re) || re.Key != pk || re.Sort != sk || !slices.Contains(known, re.Column) ||
					!strings.Contains(err.Error(), pk) || !strings.Contains(err.Error(), "column "+re.Column+" ") {
					t.Fatalf("%s: %v: the error does not name the row %q and a column it knows", what, err, pk)
				}
			}
			if recErr == nil {
				if rec.Gateway != pk || rec.Rev < 1 || rec.Attempts < 0 || !rec.VersionType.Known() || sk != statePrefix+string(rec.VersionType) ||
					!slices.Contains(states, rec.State) {
					t.Fatalf("%s: decoded out of range: %+v", what, rec)
				}
				for _, tm := range []time.Time{rec.LeaseUntil, rec.VerifyBy, rec.ClaimedAt, rec.RequestedAt, rec.VerifiedAt, rec.PenaltyUntil, rec.UpdatedAt} {
					if !tm.IsZero() && (tm.UnixMilli() <= 0 || tm.Year() > 9999) {
						t.Fatalf("%s: a time out of range: %v", what, tm)
					}
				}
				if again, err := decode("Test", keys, pointers(encode(rec))); err != nil || !reflect.DeepEqual(again, rec) {
					t.Fatalf("%s: %+v encoded and decoded is %+v, %v", what, rec, again, err)
				}
			}
			if auditErr == nil {
				if entry.Gateway != pk || entry.Rev < 0 || !entry.VersionType.Known() {
					t.Fatalf("%s: decoded out of range: %+v", what, entry)
				}
				if again, err := decodeAudit("Test", keys, pointers(encodeAudit(entry))); err != nil || !reflect.DeepEqual(again, entry) {
					t.Fatalf("%s: %+v encoded and decoded is %+v, %v", what, entry, again, err)
				}
			}
			if docErr == nil {
				if doc.ID != pk || doc.Rev < 1 {
					t.Fatalf("%s: decoded out of range: %+v", what, doc)
				}
				if again, err := decodeDoc("Test", keys, pointers(encodeDoc(doc))); err != nil || !reflect.DeepEqual(again, doc) {
					t.Fatalf("%s: %+v encoded and decoded is %+v, %v", what, doc, again, err)
				}
			}
			return []any{rec, recErr, entry, auditErr, doc, docErr}
		}
		got := check("fuzzed columns", cols)
		// Without the columns this version does not know, nothing changes.
		kept := slices.DeleteFunc(slices.Clone(cols), func(c *ots.AttributeColumn) bool { return !slices.Contains(known, c.ColumnName) })
		if len(kept) < len(cols) {
			if without := check("known columns only", kept); !reflect.DeepEqual(got, without) {
				t.Fatalf("a column this version does not know changed what it read:\nwith    %+v\nwithout %+v", got, without)
			}
		}
	})
}
