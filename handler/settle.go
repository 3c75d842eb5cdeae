package handler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// settler is the first stage of a gateway with a ledger record: it settles
// what earlier runs started before anything else is decided for the
// gateway. An upgrade waiting to be confirmed is verified, still in
// progress, or unverified; a failure this run reported already stands; the
// penalty box holds back a gateway that keeps failing; a device that never
// came back is counted once more. Settling writes the ledger (through the
// book) and queues verify requests; it makes no update call.
type settler struct {
	book     *book
	reads    *sagReader
	verifies *verifications
	now      func() time.Time
	cfg      Config // UpgradeTime, VerifyTimeout
}

// stillDownAfter spaces the nights a device that never came back is counted
// again: a second run the same night does not count.
const stillDownAfter = 20 * time.Hour

// settle returns the gateway's result for this run (done), or the record the
// plan goes on from: rec itself, or the next revision of an expired claim
// given back. rec is nil for a gateway without a record.
func (s settler) settle(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, rec *Record) (next *Record, res upgrade.Result, done bool) {
	if rec == nil {
		return nil, res, false
	}
	if rec.pending() {
		res, settled, done := s.resolve(ctx, j, g, vt, *rec)
		if done {
			return nil, res, true
		}
		rec = &settled
	}
	switch {
	case rec.RunID == j.info.RunID && (rec.State == StateFailed || rec.State == StateUnverified):
		// A run delivered again keeps its refusals: no second call.
		res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, SerialNumber: rec.Serial,
			FromVersion: rec.From, ToVersion: rec.Target, Outcome: upgrade.OutcomeFailed, Reason: upgrade.ReasonAttempted, Error: rec.LastError}
		if rec.State == StateUnverified {
			res.Outcome = upgrade.OutcomeUnverified
		}
		return nil, res, true
	case j.when(s.now).Before(rec.PenaltyUntil) && !j.retryFailedOnly:
		res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, FromVersion: rec.From, ToVersion: rec.Target,
			Error: rec.LastError}
		return nil, skipped(res, upgrade.ReasonPenalty), true
	case rec.State == StateUnverified && !strings.EqualFold(g.Status, "active") && s.now().Sub(rec.UpdatedAt) >= stillDownAfter:
		return nil, s.stillDown(ctx, j, g, *rec), true
	}
	return rec, res, false
}

// resolve settles a record that waits for an upgrade to be confirmed: its
// outcome is the gateway's result for this run (done true), unless an
// expired claim turns out never to have been used, which is released so the
// gateway can be claimed again (done false, with the released record).
func (s settler) resolve(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, rec Record) (res upgrade.Result, next Record, done bool) {
	res = upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, SerialNumber: rec.Serial,
		FromVersion: rec.From, ToVersion: rec.Target, RequestID: rec.APIRequestID}
	now := s.now()
	switch {
	case rec.State == StateClaimed && now.Before(rec.LeaseUntil):
		return skipped(res, upgrade.ReasonInProgress), rec, true
	case rec.State == StateRequested && now.Before(rec.RequestedAt.Add(s.cfg.UpgradeTime)):
		return skipped(res, upgrade.ReasonInProgress), rec, true // not even rebooted yet: no need to look
	}

	d, err := s.reads.detail(ctx, g)
	if err != nil {
		return readFailure(res, err), rec, true
	}
	if reached(d, rec, vt) {
		next = s.book.follow(rec, j, StateVerified)
		next.VerifiedAt, next.Attempts, next.PenaltyUntil, next.LastError = now, 0, time.Time{}, ""
		res.Outcome = upgrade.OutcomeVerified
		if behind := peersBehind(d, rec, vt); behind != "" {
			// The gateway is on the target only when its other device is too:
			// say so, rather than let "verified" speak for the pair.
			res.Reason = upgrade.ReasonHAPeerPending
			res.Error = fmt.Sprintf("device %s runs %s; its peer %s does not yet and is upgraded in a later run", rec.Serial, rec.Target, behind)
		}
		return s.book.write(ctx, j, &rec, next, res), next, true
	}
	upgrading := vt == upgrade.VersionDevice && strings.EqualFold(d.Status, "offline")
	switch {
	case rec.State == StateRequested && now.Before(rec.VerifyBy):
		s.verifies.later(rec, rec.VerifyBy)
		return skipped(res, upgrade.ReasonInProgress), rec, true
	case rec.State == StateRequested:
		next = s.book.fail(rec, j, StateUnverified, fmt.Sprintf("the device does not report %s %v after the upgrade (status %s, versions %s)",
			rec.Target, rec.VerifyBy.Sub(rec.RequestedAt).Round(time.Minute), d.Status, versionsOf(d, vt)))
		res.Outcome, res.Reason, res.Error = upgrade.OutcomeUnverified, upgrade.ReasonVersionDiff, next.LastError
		if !strings.EqualFold(d.Status, "active") {
			res.Reason = upgrade.ReasonOffline
		}
		return s.book.write(ctx, j, &rec, next, res), next, true
	case upgrading:
		// The claimed call was made before its run ended: the device reboots.
		next = s.book.follow(rec, j, StateRequested)
		next.RequestedAt, next.VerifyBy = now, now.Add(s.cfg.UpgradeTime+s.cfg.VerifyTimeout)
		next.LeaseUntil = next.VerifyBy
		if err := s.book.put(ctx, j, &rec, next); err != nil {
			return ledgerFailure(res, err), rec, true
		}
		s.verifies.later(next, now.Add(s.cfg.UpgradeTime))
		return skipped(res, upgrade.ReasonInProgress), next, true
	}
	// An expired claim and a device that shows no upgrade. A single device
	// goes Offline the moment an upgrade starts, so its run died before the
	// call. An HA pair stays Active while its standby reboots on the old
	// version, and a DPI update shows nothing until it is done: until the
	// upgrade the claim may have started would show, keep the claim, or a
	// second call could follow the first.
	if g.HA() || vt == upgrade.VersionDpi {
		if shows := rec.ClaimedAt.Add(upgradeTime(s.cfg, vt) + s.cfg.VerifyTimeout); now.Before(shows) {
			s.verifies.later(rec, shows)
			res.Error = fmt.Sprintf("the claim's call may have started an upgrade the API shows only when it is done; held until %s",
				shows.UTC().Format(time.RFC3339))
			return skipped(res, upgrade.ReasonInProgress), rec, true
		}
	}
	// The run that claimed it died before its call. Give it back; this run
	// may claim it.
	next = s.book.follow(rec, j, StateReleased)
	next.LastError = "claim expired without an upgrade"
	if err := s.book.put(ctx, j, &rec, next); err != nil {
		return ledgerFailure(res, err), rec, true
	}
	return res, next, false
}

// stillDown reports a device that has not come back since an upgrade left it
// unverified, once more, and counts the night as another unverified attempt:
// MaxAttempts of them put it in the penalty box, where an operator sees it,
// rather than it being skipped as merely offline night after night.
func (s settler) stillDown(ctx context.Context, j job, g Gateway, rec Record) upgrade.Result {
	res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: rec.VersionType, SerialNumber: rec.Serial,
		FromVersion: rec.From, ToVersion: rec.Target, RequestID: rec.APIRequestID}
	next := s.book.fail(rec, j, StateUnverified, fmt.Sprintf("still %s since the upgrade to %s requested %s", g.Status, rec.Target,
		rec.RequestedAt.UTC().Format(time.RFC3339)))
	res.Outcome, res.Reason, res.Error = upgrade.OutcomeUnverified, upgrade.ReasonOffline, next.LastError
	return s.book.write(ctx, j, &rec, next, res)
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
