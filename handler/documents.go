package handler

import (
	"encoding/json"
	"fmt"
)

// The ledger's documents (rollouts, the kill switch, the drain lease, forced
// batches) are JSON written by this function, and read back by it and by
// the versions before and after it: a rollback must not break on a field a
// newer version added. So decoding is tolerant of fields it does not know
// (encoding/json skips them) and strict on the ones it does: a value of the
// wrong type or out of range is an error naming the document, never a
// number quietly read as zero.

// decodeRollout reads a rollout document over doc, which holds the
// rollout's key.
func decodeRollout(id string, body []byte, doc *rolloutDoc) error {
	if err := json.Unmarshal(body, doc); err != nil {
		return fmt.Errorf("rollout document %s: %w", id, err)
	}
	bad := func(field string, v any) error {
		return fmt.Errorf("rollout document %s: %s is %v, out of range", id, field, v)
	}
	switch {
	case doc.Breaker != "" && doc.Breaker != "closed" && doc.Breaker != "open":
		return bad("breaker", fmt.Sprintf("%q", doc.Breaker))
	case doc.Wave < 0:
		return bad("wave", doc.Wave)
	case doc.Allocated < 0:
		return bad("allocated", doc.Allocated)
	case doc.Population < 0:
		return bad("population", doc.Population)
	case doc.BaseFinished < 0:
		return bad("baseFinished", doc.BaseFinished)
	case doc.BaseFailed < 0 || doc.BaseFailed > doc.BaseFinished:
		return bad("baseFailed", doc.BaseFailed)
	case doc.Reserved < 0:
		return bad("reserved", doc.Reserved)
	}
	for st, n := range doc.Records {
		if n < 0 {
			return bad("records."+string(st), n)
		}
	}
	return nil
}

// decodeControl reads the kill switch's document.
func decodeControl(body []byte) (control, error) {
	var c control
	if err := json.Unmarshal(body, &c); err != nil {
		return control{}, fmt.Errorf("control document: %w", err)
	}
	return c, nil
}

// decodeLease reads the drain lease.
func decodeLease(body []byte) (drainLease, error) {
	var l drainLease
	if err := json.Unmarshal(body, &l); err != nil {
		return drainLease{}, fmt.Errorf("drain lease: %w", err)
	}
	return l, nil
}

// decodeBatch reads a forced batch's record.
func decodeBatch(id string, body []byte) (forcedBatch, error) {
	var b forcedBatch
	if err := json.Unmarshal(body, &b); err != nil {
		return forcedBatch{}, fmt.Errorf("batch record %s: %w", id, err)
	}
	return b, nil
}
