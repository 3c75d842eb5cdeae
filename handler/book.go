package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// book keeps the gateways' ledger records for a run: it reads them, claims a
// gateway before its update call, and writes every move of a record with its
// audit entry, telling the rollouts of each move. Only the settle and execute
// stages write through it.
type book struct {
	ledger    Ledger
	lcall     *caller
	now       func() time.Time
	requestID string // the FC request id, in every record and audit entry
	cfg       Config // LedgerLease, UpgradeTime, VerifyTimeout, MaxAttempts, PenaltyCooldown
	log       zerolog.Logger
	moved     func(prev *Record, next Record)
}

// read returns the records of the gateways, by version type and id.
func (b *book) read(ctx context.Context, fleet []Gateway, types []upgrade.VersionType) (map[upgrade.VersionType]map[string]Record, error) {
	out := map[upgrade.VersionType]map[string]Record{}
	if b == nil {
		return out, nil
	}
	ids := make([]string, len(fleet))
	for i, g := range fleet {
		ids[i] = g.ID
	}
	for _, vt := range types {
		out[vt] = map[string]Record{}
		for chunk := range slices.Chunk(ids, 100) {
			recs, err := retrying(ctx, b.lcall, func(ctx context.Context) (map[string]Record, error) { return b.ledger.Get(ctx, vt, chunk) })
			if err != nil {
				return nil, err
			}
			for id, rec := range recs {
				out[vt][id] = rec
			}
		}
	}
	return out, nil
}

// claim records, before the update call, that this run is about to make it.
// Only one writer can move a record from one revision to the next.
func (b *book) claim(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, prev *Record, dev Device, target string) (Record, error) {
	now := b.now()
	next := Record{Gateway: g.ID, Region: g.Region, VersionType: vt, Rev: 1}
	if prev != nil {
		next = *prev
		next.Rev++
	}
	next.Model = g.Model
	next.State, next.Target, next.From, next.Serial = StateClaimed, target, dev.Version(vt), dev.SerialNumber
	next.ClaimID, next.ClaimedAt, next.LeaseUntil = newToken(), now, now.Add(b.cfg.LedgerLease)
	next.RequestedAt, next.VerifyBy, next.VerifiedAt, next.APIRequestID, next.LastError = time.Time{}, time.Time{}, time.Time{}, "", ""
	b.stamp(&next, j)
	return next, b.put(ctx, j, prev, next)
}

// recordCall records what the update call of a claim did, and returns the
// record as written (requested: to verify later). A call that may have
// started an upgrade the device does not show yet keeps its claim: when it
// expires the device is read again.
func (b *book) recordCall(ctx context.Context, j job, claim Record, res upgrade.Result) (next Record, written bool) {
	now := b.now()
	switch {
	case res.Outcome == upgrade.OutcomeRequested:
		next = b.follow(claim, j, StateRequested)
		next.APIRequestID, next.RequestedAt = res.RequestID, now
		next.VerifyBy = now.Add(upgradeTime(b.cfg, claim.VersionType) + b.cfg.VerifyTimeout)
		next.LeaseUntil = next.VerifyBy
	case res.Reason == upgrade.ReasonUnconfirmed:
		return claim, false
	case res.Outcome == upgrade.OutcomeFailed:
		next = b.fail(claim, j, StateFailed, res.Error)
	default: // skipped or deferred: nothing was started
		next = b.follow(claim, j, StateReleased)
		next.LastError = res.Error
	}
	if err := b.put(ctx, j, &claim, next); err != nil {
		// The claim stays until its lease ends; the next run reads the
		// device and settles it. Nothing is lost, nothing is called twice.
		b.log.Warn().Str("smartAGId", claim.Gateway).Err(err).Msg("ledger: could not record the update's result; the claim will be settled by a later run")
		return claim, false
	}
	return next, true
}

// fail moves a record to a failed state and counts the attempt; the
// MaxAttempts-th consecutive one starts the penalty box.
func (b *book) fail(rec Record, j job, state State, cause string) Record {
	next := b.follow(rec, j, state)
	next.Attempts++
	next.LastError = cause
	if next.Attempts >= b.cfg.MaxAttempts {
		next.PenaltyUntil = b.now().Add(b.cfg.PenaltyCooldown)
		next.LastError = fmt.Sprintf("%s; %d failed attempts in a row: held back until %s",
			cause, next.Attempts, next.PenaltyUntil.UTC().Format(time.RFC3339))
	}
	return next
}

// follow returns the next revision of rec in a new state, written by this run.
func (b *book) follow(rec Record, j job, state State) Record {
	next := rec
	next.Rev++
	next.State = state
	b.stamp(&next, j)
	return next
}

func (b *book) stamp(rec *Record, j job) {
	rec.RunID, rec.RequestID, rec.Trigger, rec.Correlation = j.info.RunID, b.requestID, j.info.Trigger, j.info.CorrelationID
	rec.UpdatedAt = b.now()
}

// write puts a settled record and returns res, or the ledger failure when
// another run settled it first or the ledger is down.
func (b *book) write(ctx context.Context, j job, prev *Record, rec Record, res upgrade.Result) upgrade.Result {
	if err := b.put(ctx, j, prev, rec); err != nil {
		return ledgerFailure(res, err)
	}
	return res
}

// put writes a record (following prev, nil for a first one) and its audit
// entry, and tells the rollouts of the move.
func (b *book) put(ctx context.Context, j job, prev *Record, rec Record) error {
	if _, err := retrying(ctx, b.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, b.ledger.Put(ctx, rec) }); err != nil {
		return err
	}
	b.moved(prev, rec)
	entry := upgrade.AuditEntry{Gateway: rec.Gateway, VersionType: rec.VersionType, Time: b.now(), Event: string(rec.State),
		Target: rec.Target, From: rec.From, Serial: rec.Serial, RunID: rec.RunID, RequestID: rec.RequestID,
		APIRequestID: rec.APIRequestID, Trigger: string(rec.Trigger), Correlation: rec.Correlation, Operator: j.operator,
		Force: j.force, Error: rec.LastError, Rev: rec.Rev}
	if _, err := retrying(ctx, b.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, b.ledger.Audit(ctx, entry) }); err != nil {
		b.log.Warn().Str("smartAGId", rec.Gateway).Err(err).Msg("ledger: audit entry not written")
	}
	return nil
}

// otherInFlight reads a gateway's record of the other version type and
// reports whether its upgrade is in flight.
func (b *book) otherInFlight(ctx context.Context, g Gateway, vt upgrade.VersionType) (bool, error) {
	recs, err := retrying(ctx, b.lcall, func(ctx context.Context) (map[string]Record, error) {
		return b.ledger.Get(ctx, otherType(vt), []string{g.ID})
	})
	if err != nil {
		return false, err
	}
	rec, ok := recs[g.ID]
	return ok && rec.inFlight(b.now()), nil
}

// ledgerFailure is the outcome when the ledger refuses a write: another run
// holds the gateway (in progress), or the ledger is down (no call is made).
func ledgerFailure(res upgrade.Result, err error) upgrade.Result {
	if errors.Is(err, ErrConflict) {
		return skipped(res, upgrade.ReasonInProgress)
	}
	if errors.Is(err, errDeadline) {
		return deferred(res, upgrade.ReasonDeadline)
	}
	res.Error = err.Error()
	return deferred(res, upgrade.ReasonLedgerDown)
}

// upgradeTime is how long an upgrade keeps a device busy: firmware reboots
// the box; a DPI signature update does not.
func upgradeTime(cfg Config, vt upgrade.VersionType) time.Duration {
	if vt == upgrade.VersionDpi {
		return 0
	}
	return cfg.UpgradeTime
}

// otherType is the version type that is not vt: a gateway upgrades one at a
// time.
func otherType(vt upgrade.VersionType) upgrade.VersionType {
	if vt == upgrade.VersionDevice {
		return upgrade.VersionDpi
	}
	return upgrade.VersionDevice
}
