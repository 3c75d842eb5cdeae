package tablestore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	ots "github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
)

// The outbox: events that could not be published, kept until a later run
// publishes them. Each is a row of its own,
//
//	pk  "outbox#<kept at, UTC nanoseconds, 20 digits>#<index, 4 digits>#<event id>"
//	sk  "event"
//
// so a range over the "outbox#" keys reads them oldest first, and a run's
// run.completed, kept after its outcome events, comes after them again.
const (
	outboxPrefix = "outbox#"
	eventKey     = "event"
	// maxBatchWrite is the most rows one BatchWriteRow takes.
	maxBatchWrite = 200
)

// KeepEvents implements handler.Ledger: BatchWriteRow, 200 rows a call.
// A row the service refused fails the call; rows already written stay, and
// keeping them again makes a second copy with the same event id, which the
// at-least-once promise allows.
func (l *Ledger) KeepEvents(ctx context.Context, evs []events.CloudEvent) error {
	at := keepTime()
	for start := 0; start < len(evs); start += maxBatchWrite {
		req := &ots.BatchWriteRowRequest{}
		for i, ev := range evs[start:min(start+maxBatchWrite, len(evs))] {
			body, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("tablestore: encoding event %s: %w", ev.ID, err)
			}
			change := &ots.PutRowChange{TableName: l.table,
				PrimaryKey: key(fmt.Sprintf("%s%020d#%04d#%s", outboxPrefix, at, start+i, ev.ID), eventKey)}
			change.AddColumn("kind", "event")
			change.AddColumn("body", string(body))
			change.SetCondition(ots.RowExistenceExpectation_IGNORE)
			req.AddRowChange(change)
		}
		if err := l.batchWrite(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// KeptEvents implements handler.Ledger: GetRange over the outbox's keys, at
// most max rows.
func (l *Ledger) KeptEvents(ctx context.Context, max int) ([]handler.KeptEvent, error) {
	start, end := prefixRange(outboxPrefix)
	rows, err := l.rangeRows(ctx, start, end, nil, max)
	if err != nil {
		return nil, err
	}
	out := make([]handler.KeptEvent, 0, len(rows))
	for _, got := range rows {
		r := newRow("GetRange", got.PrimaryKey.PrimaryKeys, got.Columns)
		r.kind("event")
		body := r.string("body", required)
		var ev events.CloudEvent
		if r.err == nil {
			if err := json.Unmarshal([]byte(body), &ev); err != nil {
				r.fail("body", "is not a CloudEvent: %v", err)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, handler.KeptEvent{Key: r.pk, Event: ev})
	}
	return out, nil
}

// DropEvents implements handler.Ledger: BatchWriteRow deletes, 200 a call.
func (l *Ledger) DropEvents(ctx context.Context, keys []string) error {
	for start := 0; start < len(keys); start += maxBatchWrite {
		req := &ots.BatchWriteRowRequest{}
		for _, k := range keys[start:min(start+maxBatchWrite, len(keys))] {
			change := &ots.DeleteRowChange{TableName: l.table, PrimaryKey: key(k, eventKey)}
			change.SetCondition(ots.RowExistenceExpectation_IGNORE)
			req.AddRowChange(change)
		}
		if err := l.batchWrite(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// lastKeep is the newest time a key of the outbox was made of, in this
// process: keys kept one after the other sort in that order even when the
// clock does not move between them.
var lastKeep atomic.Int64

func keepTime() int64 {
	for {
		last, now := lastKeep.Load(), time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if lastKeep.CompareAndSwap(last, now) {
			return now
		}
	}
}

// batchWrite makes one BatchWriteRow and fails when any row failed.
func (l *Ledger) batchWrite(ctx context.Context, req *ots.BatchWriteRowRequest) error {
	var resp *ots.BatchWriteRowResponse
	err := call(ctx, l, "BatchWriteRow", func() error {
		var err error
		resp, err = l.client.BatchWriteRow(req)
		return err
	})
	if err != nil {
		return err
	}
	for _, rows := range resp.TableToRowsResult {
		for _, r := range rows {
			if !r.IsSucceed {
				return &Error{Op: "BatchWriteRow", Code: r.Error.Code, Message: l.scrub.Replace(r.Error.Message),
					temporary: temporaryCodes[r.Error.Code]}
			}
		}
	}
	return nil
}
