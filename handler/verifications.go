package handler

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// verifications are the verify requests a run queues for the upgrades it
// started or found under way, sent to the work queue at its end, delayed
// until the devices should be back. Without a work queue the next sweep
// verifies them.
type verifications struct {
	mu      sync.Mutex
	batches map[verifyKey]*verifyBatch
}

type verifyKey struct {
	vt          upgrade.VersionType
	correlation string
}

type verifyBatch struct {
	ids []string
	due time.Time
}

// later queues a verify request for the record's gateway, due at when.
func (v *verifications) later(rec Record, when time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := verifyKey{vt: rec.VersionType, correlation: rec.Correlation}
	if v.batches == nil {
		v.batches = map[verifyKey]*verifyBatch{}
	}
	b := v.batches[key]
	if b == nil {
		b = &verifyBatch{}
		v.batches[key] = b
	}
	if !slices.Contains(b.ids, rec.Gateway) {
		b.ids = append(b.ids, rec.Gateway)
	}
	if when.After(b.due) {
		b.due = when
	}
}

// send puts the queued verify requests on the work queue, PageSize gateways
// a message, each delayed until its upgrades should be done.
func (v *verifications) send(ctx context.Context, work WorkQueue, lcall *caller, now time.Time, log zerolog.Logger) {
	v.mu.Lock()
	batches := v.batches
	v.batches = nil
	v.mu.Unlock()
	if work == nil || len(batches) == 0 {
		return
	}
	var msgs []QueueMessage
	for key, b := range batches {
		delay := max(b.due.Sub(now), 0)
		for chunk := range slices.Chunk(b.ids, PageSize) {
			req := events.Request{Kind: upgrade.KindVerify, GatewayIDs: chunk, VersionTypes: []upgrade.VersionType{key.vt}, CorrelationID: key.correlation}
			body, _ := json.Marshal(req)
			msgs = append(msgs, QueueMessage{Body: string(body), Delay: delay})
		}
	}
	if _, err := retrying(ctx, lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, work.Send(ctx, msgs) }); err != nil {
		log.Warn().Err(err).Int("messages", len(msgs)).Msg("verify requests not queued; the next sweep verifies these upgrades")
		return
	}
	log.Info().Int("messages", len(msgs)).Msg("verify requests queued")
}
