package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// records reads the ledger records of the gateways, by version type and id.
func (r *run) records(ctx context.Context, fleet []Gateway, types []upgrade.VersionType) (map[upgrade.VersionType]map[string]Record, error) {
	out := map[upgrade.VersionType]map[string]Record{}
	if r.ledger == nil {
		return out, nil
	}
	ids := make([]string, len(fleet))
	for i, g := range fleet {
		ids[i] = g.ID
	}
	for _, vt := range types {
		out[vt] = map[string]Record{}
		for chunk := range slices.Chunk(ids, 100) {
			recs, err := retrying(ctx, r.lcall, func(ctx context.Context) (map[string]Record, error) { return r.ledger.Get(ctx, vt, chunk) })
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

// resolve settles a record that waits for an upgrade to be confirmed, before
// anything else is done for the gateway: its outcome is the gateway's result
// for this run (done true), unless an expired claim turns out never to have
// been used, which is released so the gateway can be claimed again (done
// false, with the released record).
func (r *run) resolve(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, rec Record) (res upgrade.Result, next Record, done bool) {
	res = upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, SerialNumber: rec.Serial,
		FromVersion: rec.From, ToVersion: rec.Target, RequestID: rec.APIRequestID}
	now := r.now()
	switch {
	case rec.State == StateClaimed && now.Before(rec.LeaseUntil):
		return skipped(res, upgrade.ReasonInProgress), rec, true
	case rec.State == StateRequested && now.Before(rec.RequestedAt.Add(r.cfg.UpgradeTime)):
		return skipped(res, upgrade.ReasonInProgress), rec, true // not even rebooted yet: no need to look
	}

	d, err := readSAG(ctx, r.api, readDevices, func(ctx context.Context) (Detail, error) { return r.sag.Devices(ctx, g) })
	if err != nil {
		return readFailure(res, err), rec, true
	}
	if reached(d, rec, vt) {
		next = r.follow(rec, j, StateVerified)
		next.VerifiedAt, next.Attempts, next.PenaltyUntil, next.LastError = now, 0, time.Time{}, ""
		res.Outcome = upgrade.OutcomeVerified
		if behind := peersBehind(d, rec, vt); behind != "" {
			// The gateway is on the target only when its other device is too:
			// say so, rather than let "verified" speak for the pair.
			res.Reason = upgrade.ReasonHAPeerPending
			res.Error = fmt.Sprintf("device %s runs %s; its peer %s does not yet and is upgraded in a later run", rec.Serial, rec.Target, behind)
		}
		return r.write(ctx, j, &rec, next, res), next, true
	}
	upgrading := vt == upgrade.VersionDevice && strings.EqualFold(d.Status, "offline")
	switch {
	case rec.State == StateRequested && now.Before(rec.VerifyBy):
		r.verifyLater(rec, rec.VerifyBy)
		return skipped(res, upgrade.ReasonInProgress), rec, true
	case rec.State == StateRequested:
		next = r.fail(rec, j, StateUnverified, fmt.Sprintf("the device does not report %s %v after the upgrade (status %s, versions %s)",
			rec.Target, rec.VerifyBy.Sub(rec.RequestedAt).Round(time.Minute), d.Status, versions(d, vt)))
		res.Outcome, res.Reason, res.Error = upgrade.OutcomeUnverified, upgrade.ReasonVersionDiff, next.LastError
		if !strings.EqualFold(d.Status, "active") {
			res.Reason = upgrade.ReasonOffline
		}
		return r.write(ctx, j, &rec, next, res), next, true
	case upgrading:
		// The claimed call was made before its run ended: the device reboots.
		next = r.follow(rec, j, StateRequested)
		next.RequestedAt, next.VerifyBy = now, now.Add(r.cfg.UpgradeTime+r.cfg.VerifyTimeout)
		next.LeaseUntil = next.VerifyBy
		if err := r.put(ctx, j, &rec, next); err != nil {
			return r.ledgerFailure(res, err), rec, true
		}
		r.verifyLater(next, now.Add(r.cfg.UpgradeTime))
		return skipped(res, upgrade.ReasonInProgress), next, true
	}
	// An expired claim and a device that shows no upgrade. A single device
	// goes Offline the moment an upgrade starts, so its run died before the
	// call. An HA pair stays Active while its standby reboots on the old
	// version, and a DPI update shows nothing until it is done: until the
	// upgrade the claim may have started would show, keep the claim, or a
	// second call could follow the first.
	if g.HA() || vt == upgrade.VersionDpi {
		if shows := rec.ClaimedAt.Add(r.upgradeTime(vt) + r.cfg.VerifyTimeout); now.Before(shows) {
			r.verifyLater(rec, shows)
			res.Error = fmt.Sprintf("the claim's call may have started an upgrade the API shows only when it is done; held until %s",
				shows.UTC().Format(time.RFC3339))
			return skipped(res, upgrade.ReasonInProgress), rec, true
		}
	}
	// The run that claimed it died before its call. Give it back; this run
	// may claim it.
	next = r.follow(rec, j, StateReleased)
	next.LastError = "claim expired without an upgrade"
	if err := r.put(ctx, j, &rec, next); err != nil {
		return r.ledgerFailure(res, err), rec, true
	}
	return res, next, false
}

// reached reports whether the device acted on (every device, when the record
// names none) runs the target and the gateway is Active.
func reached(d Detail, rec Record, vt upgrade.VersionType) bool {
	if !strings.EqualFold(d.Status, "active") || len(d.Devices) == 0 {
		return false
	}
	for _, dev := range d.Devices {
		if (rec.Serial == "" || dev.SerialNumber == rec.Serial) && compareVersions(dev.Version(vt), rec.Target) < 0 {
			return false
		}
	}
	return true
}

// peersBehind lists the other devices of a pair that do not run the target
// yet (serial=version), or "" when there are none.
func peersBehind(d Detail, rec Record, vt upgrade.VersionType) string {
	var behind []string
	for _, dev := range d.Devices {
		if rec.Serial != "" && dev.SerialNumber != rec.Serial && compareVersions(dev.Version(vt), rec.Target) < 0 {
			behind = append(behind, dev.SerialNumber+"="+dev.Version(vt))
		}
	}
	return strings.Join(behind, ",")
}

func versions(d Detail, vt upgrade.VersionType) string {
	var vs []string
	for _, dev := range d.Devices {
		vs = append(vs, dev.SerialNumber+"="+dev.Version(vt))
	}
	return strings.Join(vs, ",")
}

// claim records, before the update call, that this run is about to make it.
// Only one writer can move a record from one revision to the next.
func (r *run) claim(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, prev *Record, dev Device, target string) (Record, error) {
	now := r.now()
	next := Record{Gateway: g.ID, Region: g.Region, VersionType: vt, Rev: 1}
	if prev != nil {
		next = *prev
		next.Rev++
	}
	next.Model = g.Model
	next.State, next.Target, next.From, next.Serial = StateClaimed, target, dev.Version(vt), dev.SerialNumber
	next.ClaimID, next.ClaimedAt, next.LeaseUntil = newClaimID(), now, now.Add(r.cfg.LedgerLease)
	next.RequestedAt, next.VerifyBy, next.VerifiedAt, next.APIRequestID, next.LastError = time.Time{}, time.Time{}, time.Time{}, "", ""
	r.stamp(&next, j)
	return next, r.put(ctx, j, prev, next)
}

// settle records what the update call did.
func (r *run) settle(ctx context.Context, j job, claim Record, res upgrade.Result) {
	now := r.now()
	var next Record
	switch {
	case res.Outcome == upgrade.OutcomeRequested:
		next = r.follow(claim, j, StateRequested)
		next.APIRequestID, next.RequestedAt = res.RequestID, now
		next.VerifyBy = now.Add(r.upgradeTime(claim.VersionType) + r.cfg.VerifyTimeout)
		next.LeaseUntil = next.VerifyBy
		r.verifyLater(next, now.Add(r.upgradeTime(claim.VersionType)+time.Minute))
	case res.Reason == upgrade.ReasonUnconfirmed:
		// The call may have started an upgrade the device does not show yet:
		// keep the claim; when it expires the device is read again.
		return
	case res.Outcome == upgrade.OutcomeFailed:
		next = r.fail(claim, j, StateFailed, res.Error)
	default: // skipped or deferred: nothing was started
		next = r.follow(claim, j, StateReleased)
		next.LastError = res.Error
	}
	if err := r.put(ctx, j, &claim, next); err != nil {
		// The claim stays until its lease ends; the next run reads the
		// device and settles it. Nothing is lost, nothing is called twice.
		r.log.Warn().Str("smartAGId", claim.Gateway).Err(err).Msg("ledger: could not record the update's result; the claim will be settled by a later run")
	}
}

// stillDownAfter spaces the nights a device that never came back is counted
// again: a second run the same night does not count.
const stillDownAfter = 20 * time.Hour

// stillDown reports a device that has not come back since an upgrade left it
// unverified, once more, and counts the night as another unverified attempt:
// MaxAttempts of them put it in the penalty box, where an operator sees it,
// rather than it being skipped as merely offline night after night.
func (r *run) stillDown(ctx context.Context, j job, g Gateway, rec Record) upgrade.Result {
	res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: rec.VersionType, SerialNumber: rec.Serial,
		FromVersion: rec.From, ToVersion: rec.Target, RequestID: rec.APIRequestID}
	next := r.fail(rec, j, StateUnverified, fmt.Sprintf("still %s since the upgrade to %s requested %s", g.Status, rec.Target,
		rec.RequestedAt.UTC().Format(time.RFC3339)))
	res.Outcome, res.Reason, res.Error = upgrade.OutcomeUnverified, upgrade.ReasonOffline, next.LastError
	return r.write(ctx, j, &rec, next, res)
}

// fail moves a record to a failed state and counts the attempt; the
// MaxAttempts-th consecutive one starts the penalty box.
func (r *run) fail(rec Record, j job, state State, cause string) Record {
	next := r.follow(rec, j, state)
	next.Attempts++
	next.LastError = cause
	if next.Attempts >= r.cfg.MaxAttempts {
		next.PenaltyUntil = r.now().Add(r.cfg.PenaltyCooldown)
		next.LastError = fmt.Sprintf("%s; %d failed attempts in a row: held back until %s",
			cause, next.Attempts, next.PenaltyUntil.UTC().Format(time.RFC3339))
	}
	return next
}

// follow returns the next revision of rec in a new state, written by this run.
func (r *run) follow(rec Record, j job, state State) Record {
	next := rec
	next.Rev++
	next.State = state
	r.stamp(&next, j)
	return next
}

func (r *run) stamp(rec *Record, j job) {
	rec.RunID, rec.RequestID, rec.Trigger, rec.Correlation = j.info.RunID, r.requestID, j.info.Trigger, j.info.CorrelationID
	rec.UpdatedAt = r.now()
}

// write puts a resolved record and returns res, or the ledger failure when
// another run resolved it first or the ledger is down.
func (r *run) write(ctx context.Context, j job, prev *Record, rec Record, res upgrade.Result) upgrade.Result {
	if err := r.put(ctx, j, prev, rec); err != nil {
		return r.ledgerFailure(res, err)
	}
	return res
}

// put writes a record (following prev, nil for a first one) and its audit
// entry, and tallies the move for the rollouts.
func (r *run) put(ctx context.Context, j job, prev *Record, rec Record) error {
	if _, err := retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.ledger.Put(ctx, rec) }); err != nil {
		return err
	}
	r.rollouts.moved(prev, rec)
	entry := AuditEntry{Gateway: rec.Gateway, VersionType: rec.VersionType, Time: r.now(), Event: rec.State,
		Target: rec.Target, From: rec.From, Serial: rec.Serial, RunID: rec.RunID, RequestID: rec.RequestID,
		APIRequestID: rec.APIRequestID, Trigger: rec.Trigger, Correlation: rec.Correlation, Force: j.force, Error: rec.LastError, Rev: rec.Rev}
	if _, err := retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.ledger.Audit(ctx, entry) }); err != nil {
		r.log.Warn().Str("smartAGId", rec.Gateway).Err(err).Msg("ledger: audit entry not written")
	}
	return nil
}

// ledgerFailure is the outcome when the ledger refuses a write: another run
// holds the gateway (in progress), or the ledger is down (no call is made).
func (r *run) ledgerFailure(res upgrade.Result, err error) upgrade.Result {
	if errors.Is(err, ErrConflict) {
		return skipped(res, upgrade.ReasonInProgress)
	}
	if errors.Is(err, errDeadline) {
		return deferred(res, upgrade.ReasonDeadline)
	}
	res.Error = err.Error()
	return deferred(res, upgrade.ReasonLedgerDown)
}

// verifyLater queues a verify request for the record's gateway, due at when.
func (r *run) verifyLater(rec Record, when time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := verifyKey{vt: rec.VersionType, correlation: rec.Correlation}
	if r.verifies == nil {
		r.verifies = map[verifyKey]*verifyBatch{}
	}
	b := r.verifies[key]
	if b == nil {
		b = &verifyBatch{}
		r.verifies[key] = b
	}
	if !slices.Contains(b.ids, rec.Gateway) {
		b.ids = append(b.ids, rec.Gateway)
	}
	if when.After(b.due) {
		b.due = when
	}
}

type verifyKey struct {
	vt          upgrade.VersionType
	correlation string
}

type verifyBatch struct {
	ids []string
	due time.Time
}

// sendVerifies puts the queued verify requests on the work queue, PageSize
// gateways a message, delayed until the upgrades should be done. Without a
// work queue the next sweep verifies them.
func (r *run) sendVerifies(ctx context.Context) {
	r.mu.Lock()
	batches := r.verifies
	r.verifies = nil
	r.mu.Unlock()
	if r.work == nil || len(batches) == 0 {
		return
	}
	var msgs []QueueMessage
	for key, b := range batches {
		delay := max(b.due.Sub(r.now()), 0)
		for chunk := range slices.Chunk(b.ids, PageSize) {
			req := events.Request{Kind: upgrade.KindVerify, GatewayIDs: chunk, VersionTypes: []upgrade.VersionType{key.vt}, CorrelationID: key.correlation}
			body, _ := json.Marshal(req)
			msgs = append(msgs, QueueMessage{Body: string(body), Delay: delay})
		}
	}
	if _, err := retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.work.Send(ctx, msgs) }); err != nil {
		r.log.Warn().Err(err).Int("messages", len(msgs)).Msg("verify requests not queued; the next sweep verifies these upgrades")
		return
	}
	r.log.Info().Int("messages", len(msgs)).Msg("verify requests queued")
}

func newClaimID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// retryFailedOnly narrows a sweep to the gateways whose last upgrade failed or
// stayed unverified (in the penalty box or not). It reports false when there
// is nothing to sweep.
func (r *run) retryFailedOnly(ctx context.Context, j *job) bool {
	if r.ledger == nil {
		res := upgrade.Result{Outcome: upgrade.OutcomeRejected, Reason: upgrade.ReasonNoLedger,
			Error: "retryFailedOnly needs the ledger (LEDGER_ENDPOINT, LEDGER_INSTANCE, LEDGER_TABLE)"}
		r.record(*j, res, 0)
		return false
	}
	recs, err := retrying(ctx, r.lcall, func(ctx context.Context) ([]Record, error) {
		return r.ledger.Scan(ctx, StateFailed, StateUnverified)
	})
	if err != nil {
		r.record(*j, upgrade.Result{Outcome: upgrade.OutcomeFailed, Reason: upgrade.ReasonLedgerDown, Error: err.Error()}, 0)
		return false
	}
	var ids []string
	for _, rec := range recs {
		if slices.Contains(j.types, rec.VersionType) && slices.Contains(j.regions, rec.Region) &&
			(len(j.gatewayIDs) == 0 || slices.Contains(j.gatewayIDs, rec.Gateway)) && !slices.Contains(ids, rec.Gateway) {
			ids = append(ids, rec.Gateway)
		}
	}
	slices.Sort(ids)
	r.log.Info().Int("gateways", len(ids)).Strs("gatewayIds", ids).Msg("retryFailedOnly: gateways to retry")
	if len(ids) == 0 {
		return false
	}
	j.gatewayIDs = ids
	return true
}
