package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// execute makes the call for an admitted candidate: it claims the gateway in
// the ledger, reads the kill switch right before the call, calls, and records
// what the call did.
func (r *run) execute(ctx context.Context, j job, c *candidate) upgrade.Result {
	res := c.res
	// Claim before the call: no other run or worker calls for this gateway
	// while the claim lives, and a crash leaves a trace the next run settles.
	var claim Record
	if r.ledger != nil {
		var err error
		if claim, err = r.claim(ctx, j, c.g, c.vt, c.rec, c.dev, c.target.Code); err != nil {
			r.upgrades.Add(-1)
			return r.ledgerFailure(res, err)
		}
		c.claimed = true
		// Another run may have claimed the other version type since this
		// run read it. Read it after this claim: of two runs that claim
		// both types at once, the later reader sees the other's claim, so
		// at most one calls (both may wait, which is safe).
		if busy, err := r.otherInFlight(ctx, c); busy || err != nil {
			r.upgrades.Add(-1)
			if err != nil {
				res = r.ledgerFailure(res, err)
			} else {
				res = deferred(res, upgrade.ReasonTypeInFlight)
				res.Error = fmt.Sprintf("its %s upgrade was claimed meanwhile by another run", otherType(c.vt))
			}
			r.settle(ctx, j, claim, res)
			return res
		}
	}
	requestID, err := r.api.updateSAG(ctx, func(ctx context.Context) (string, error) {
		// Here, after the pacing wait and before each try: a stop written
		// while this worker waited holds the call back.
		if on, err := r.kill.check(ctx); on {
			return "", heldBack{ledger: err}
		}
		return r.sag.Update(ctx, c.g, c.serial, c.vt, c.target.Code)
	})
	var held heldBack
	switch {
	case err == nil:
		c.accepted.Store(&requestID)
		res.Outcome, res.RequestID = upgrade.OutcomeRequested, requestID
	case errors.As(err, &held) && held.ledger != nil:
		res = r.ledgerFailure(res, held.ledger) // no call without knowing the switch
	case errors.As(err, &held):
		res.Error = held.Error()
		res = deferred(res, upgrade.ReasonKillSwitch)
	default:
		res = r.updateFailure(ctx, c.g, c.dev, c.vt, c.target.Code, res, err)
	}
	if res.Outcome != upgrade.OutcomeRequested {
		r.upgrades.Add(-1)
	}
	if r.ledger != nil {
		r.settle(ctx, j, claim, res)
	}
	return res
}

// otherInFlight reads the gateway's record of the other version type and
// reports whether its upgrade is in flight.
func (r *run) otherInFlight(ctx context.Context, c *candidate) (bool, error) {
	recs, err := retrying(ctx, r.lcall, func(ctx context.Context) (map[string]Record, error) {
		return r.ledger.Get(ctx, otherType(c.vt), []string{c.g.ID})
	})
	if err != nil {
		return false, err
	}
	rec, ok := recs[c.g.ID]
	return ok && rec.inFlight(r.now()), nil
}

// heldBack is the kill switch holding an update call back: on, or (ledger
// set) unreadable. No call was made, so the claim is released.
type heldBack struct{ ledger error }

func (h heldBack) Error() string {
	if h.ledger != nil {
		return h.ledger.Error()
	}
	return "the kill switch is on"
}

// updateFailure turns a failed update call into an outcome. When the call may
// have reached the service, the device is read again: an upgrade that started
// is reported as requested, and no second update call is ever made.
func (r *run) updateFailure(ctx context.Context, g Gateway, dev Device, vt upgrade.VersionType, target string, res upgrade.Result, err error) upgrade.Result {
	applyError(&res, err)
	var ae *APIError
	errors.As(err, &ae)
	code := ""
	if ae != nil {
		code = ae.Code
	}
	switch {
	case errors.Is(err, errDeadline):
		return deferred(res, upgrade.ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, upgrade.ReasonThrottled)
	case code == "SmartAccessGatewayNotOnline":
		return skipped(res, upgrade.ReasonOffline)
	case classify(err) == laterRun:
		return deferred(res, upgrade.ReasonTryLater)
	case code == "VersionTooOld":
		return skipped(res, upgrade.ReasonUpToDate)
	case code == "SmartAccessGatewayNotActivated":
		return skipped(res, upgrade.ReasonNotActivated)
	case code == "SmartAccessGatewayInArrears":
		return skipped(res, upgrade.ReasonExpired)
	case code == "NotBoundCCN":
		return skipped(res, upgrade.ReasonNotBoundCCN)
	case classify(err) == transient:
		d, rerr := readSAG(ctx, r.api, readDevices, func(ctx context.Context) (Detail, error) { return r.sag.Devices(ctx, g) })
		if rerr == nil && upgradeStarted(d, dev.SerialNumber, vt, target) {
			res.Outcome, res.Reason = upgrade.OutcomeRequested, upgrade.ReasonConfirmed
			return res
		}
		res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonUnconfirmed
		return res
	}
	res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonAPIError
	return res
}

// upgradeStarted reports whether a gateway read after an ambiguous update
// shows that upgrade under way or done: the device runs the target, or a
// firmware upgrade has taken the gateway offline.
func upgradeStarted(d Detail, serial string, vt upgrade.VersionType, target string) bool {
	for _, dev := range d.Devices {
		if dev.SerialNumber == serial && compareVersions(dev.Version(vt), target) >= 0 {
			return true
		}
	}
	return vt == upgrade.VersionDevice && strings.EqualFold(d.Status, "offline")
}

func (r *run) reserveUpgrade() bool {
	if r.upgrades.Add(1) > int64(r.cfg.MaxUpgradesPerRun) {
		r.upgrades.Add(-1)
		return false
	}
	return true
}

// upgradeTime is how long an upgrade keeps a device busy: firmware reboots
// the box; a DPI signature update does not.
func (r *run) upgradeTime(vt upgrade.VersionType) time.Duration {
	if vt == upgrade.VersionDpi {
		return 0
	}
	return r.cfg.UpgradeTime
}
