package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// executor is the stage that makes the call for an admitted candidate: it
// claims the gateway in the ledger, reads the kill switch and the
// rollout's pause right before the call, calls, reads the device back when the call's fate is unknown, and
// records what the call did.
type executor struct {
	book     *book // nil without a ledger: no claim
	reads    *sagReader
	sag      SAG
	api      *caller
	kill     *killSwitch
	rollouts *rollouts // nil without a ledger
	limit    *runLimit
	verifies *verifications
	cfg      Config // UpgradeTime
	now      func() time.Time
}

// execute calls for one candidate and returns its result.
func (x *executor) execute(ctx context.Context, j job, c *candidate) upgrade.Result {
	res := c.res
	// Claim before the call: no other run or worker calls for this gateway
	// while the claim lives, and a crash leaves a trace the next run settles.
	var claim Record
	if x.book != nil {
		var err error
		if claim, err = x.book.claim(ctx, j, c.g, c.vt, c.rec, c.dev, c.target.Code); err != nil {
			x.limit.giveBack()
			return ledgerFailure(res, err)
		}
		c.claimed = true
		// Another run may have claimed the other version type since this
		// run read it. Read it after this claim: of two runs that claim
		// both types at once, the later reader sees the other's claim, so
		// at most one calls (both may wait, which is safe).
		if busy, err := x.book.otherInFlight(ctx, c.g, c.vt); busy || err != nil {
			x.limit.giveBack()
			if err != nil {
				res = ledgerFailure(res, err)
			} else {
				res = deferred(res, upgrade.ReasonTypeInFlight)
				res.Error = fmt.Sprintf("its %s upgrade was claimed meanwhile by another run", otherType(c.vt))
			}
			x.book.recordCall(ctx, j, claim, res)
			return res
		}
	}
	requestID, err := x.api.updateSAG(ctx, c.g.Region, func(ctx context.Context) (string, error) {
		// Here, after the pacing wait and before each try: a stop or a
		// pause written while this worker waited holds the call back.
		if on, err := x.kill.on(ctx); on {
			return "", heldBack{reason: upgrade.ReasonKillSwitch, detail: "the kill switch is on", ledger: err}
		}
		if x.rollouts != nil {
			if detail, err := x.rollouts.paused(ctx, c.key()); detail != "" || err != nil {
				return "", heldBack{reason: upgrade.ReasonPaused, detail: detail, ledger: err}
			}
		}
		return x.sag.Update(ctx, c.g, c.serial, c.vt, c.target.Code)
	})
	var held heldBack
	switch {
	case err == nil:
		c.accepted.Store(&requestID)
		res.Outcome, res.RequestID = upgrade.OutcomeRequested, requestID
	case errors.As(err, &held) && held.ledger != nil:
		res = ledgerFailure(res, held.ledger) // no call without knowing the switch and the pause
	case errors.As(err, &held):
		res.Error = held.detail
		res = deferred(res, held.reason)
	default:
		res = x.updateFailure(ctx, c.g, c.dev, c.vt, c.target.Code, res, err)
	}
	if res.Outcome != upgrade.OutcomeRequested {
		x.limit.giveBack()
	} else if c.accepted.Load() == nil {
		id := res.RequestID
		c.accepted.Store(&id) // confirmed by a read: an upgrade is under way
	}
	if x.book != nil {
		next, _ := x.book.recordCall(ctx, j, claim, res)
		if res.Outcome == upgrade.OutcomeRequested {
			x.verifies.later(next, x.now().Add(upgradeTime(x.cfg, c.vt)+time.Minute))
		}
	}
	return res
}

// heldBack is the kill switch or a pause holding an update call back: on,
// or (ledger set) unreadable. No call was made, so the claim is released.
type heldBack struct {
	reason, detail string
	ledger         error
}

func (h heldBack) Error() string {
	if h.ledger != nil {
		return h.ledger.Error()
	}
	return h.detail
}

// updateFailure turns a failed update call into an outcome. When the call may
// have reached the service, the device is read again: an upgrade that started
// is reported as requested, and no second update call is ever made.
func (x *executor) updateFailure(ctx context.Context, g Gateway, dev Device, vt upgrade.VersionType, target string, res upgrade.Result, err error) upgrade.Result {
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
		d, rerr := x.reads.detail(ctx, g)
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
