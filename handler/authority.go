package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Who may steer the fleet. A message from another system is a request, never
// a command: anyone who may publish to the requests topic, or send to the
// work queue, can make the function sweep, but only an operator may stop,
// resume, reset, pause, unpause or approve, or force an upgrade past the
// window and the breaker.
//
// The payload cannot tell an operator from a topic: a STREAM-format topic
// message is byte for byte a direct invocation. What can tell is where the
// invocation arrives. The control endpoint (CONTROL_ENDPOINT=true) is a
// second function from the same code package that no trigger points at, so
// only callers RAM allows fc:InvokeFunction on it reach it; FC's
// authorisation is the operator's. It serves control only in a direct
// invocation, so a trigger attached to it by mistake still commands nothing.
// The query endpoint (QUERY_ENDPOINT=true), a third such function, answers
// status, history and plan and nothing else: RAM may let an engineer look
// without letting them start anything.

// authorise says why this run must not serve req, or nil.
func (r *run) authorise(ctx context.Context, trigger events.Trigger, req events.Request) error {
	operator := r.control && trigger == events.TriggerDirect
	switch {
	case r.query:
		if trigger == events.TriggerDirect && req.Kind.Looks() && !req.Force {
			return nil
		}
		return fmt.Errorf("the query function (QUERY_ENDPOINT=true) answers only status, history and plan, invoked directly; "+
			"this was %s from %s", req.Kind, r.where(trigger))
	case operator:
		return nil
	case req.Kind.Steers():
		return fmt.Errorf("kind %q is a control request, served only by the control function (CONTROL_ENDPOINT=true), "+
			"which no trigger reaches; this invocation came from %s", req.Kind, r.where(trigger))
	case req.Force:
		if r.boundForce(ctx, trigger, req) {
			return nil
		}
		return fmt.Errorf("force is an operator's decision, accepted only by the control function (CONTROL_ENDPOINT=true) "+
			"or on a batch that function recorded in the ledger; this invocation came from %s", r.where(trigger))
	}
	return nil
}

func (r *run) where(trigger events.Trigger) string {
	if trigger == events.TriggerDirect {
		return "a direct invocation of a function that triggers reach (a STREAM-format topic message looks the same)"
	}
	return "the " + string(trigger) + " trigger"
}

// boundForce reports whether a forced batch from the work queue is one an
// authorised run handed itself. Run ids are public in events, so the batch
// carries an id of its own and the ledger holds the digest of exactly the
// request that run sent under it: a message someone else puts on the queue
// cannot borrow it for other gateways, another version or a later run.
func (r *run) boundForce(ctx context.Context, trigger events.Trigger, req events.Request) bool {
	if trigger != events.TriggerMNSQueue || req.BatchID == "" || r.ledger == nil {
		return false
	}
	d, found, err := getDoc(ctx, r.ledger, r.lcall, batchDoc(req.BatchID))
	if err != nil || !found {
		if err != nil {
			r.log.Warn().Err(err).Str("batchId", req.BatchID).Msg("the batch's record cannot be read: its force is refused")
		}
		return false
	}
	rec, err := decodeBatch(req.BatchID, d.Body)
	if err != nil {
		r.log.Warn().Err(err).Msg("the batch's record is unreadable: its force is refused")
		return false
	}
	return rec.Force && rec.Digest == digest(req)
}

// forcedBatch is what a run that may force writes in the ledger of each
// forced batch it hands itself through the work queue.
type forcedBatch struct {
	Digest      string    `json:"digest"` // of the request, as sent
	Force       bool      `json:"force"`
	ParentRunID string    `json:"parentRunId"`
	At          time.Time `json:"at"`
}

func batchDoc(id string) string { return "batch#" + id }

// digest is the SHA-256 of a request's JSON: a parsed request marshals back
// to the bytes it was sent as (fields in their fixed order).
func digest(req events.Request) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// registerForced writes each forced batch in the ledger before it is sent.
// A batch whose record cannot be written is not sent (its error set).
func (r *run) registerForced(ctx context.Context, batches []batch) {
	for i := range batches {
		b := &batches[i]
		if !b.req.Force {
			continue
		}
		body, _ := json.Marshal(forcedBatch{Digest: digest(b.req), Force: true, ParentRunID: b.req.ParentRunID, At: r.now()})
		b.err = putDoc(ctx, r.ledger, r.lcall, Doc{ID: batchDoc(b.req.BatchID), Rev: 1, Body: body})
	}
}

// decodeBatch reads a forced batch's record.
func decodeBatch(id string, body []byte) (forcedBatch, error) {
	var b forcedBatch
	if err := json.Unmarshal(body, &b); err != nil {
		return forcedBatch{}, fmt.Errorf("batch record %s: %w", id, err)
	}
	return b, nil
}
