package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// stopped reports whether the kill switch is on, and if so defers the
// chunk's gateways without another API call: a stopped run winds down at
// once. A dry run makes no update call, so the switch does not stop it.
func (r *run) stopped(ctx context.Context, j job, chunk []Gateway) bool {
	if j.dryRun {
		return false
	}
	if on, err := r.kill.check(ctx); !on || err != nil {
		return false // a ledger error is reported by the gate, per candidate
	}
	for _, g := range chunk {
		for _, vt := range j.types {
			res := events.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Error: "the kill switch is on"}
			if vt == events.VersionDevice {
				res.FromVersion = g.SoftwareVersion
			}
			r.record(j, deferred(res, ReasonKillSwitch), 0)
		}
	}
	return true
}

// gate decides which candidates this run calls for, together: the kill
// switch stops all; outside the maintenance window none starts (unless
// forced); a rollout lets in only its wave, and nothing while its breaker is
// open (unless forced); the run limit caps the rest. A dry run reports the
// admitted ones as planned and calls nothing.
func (r *run) gate(ctx context.Context, j job, cands []*candidate) []*candidate {
	hold := func(c *candidate, reason, detail string) {
		res := deferred(c.res, reason)
		if detail != "" {
			res.Error = detail
		}
		r.record(j, res, time.Since(c.start))
	}
	if len(cands) == 0 {
		return nil
	}
	if !j.dryRun {
		if on, err := r.kill.check(ctx); on {
			reason, detail := ReasonKillSwitch, "the kill switch is on"
			if err != nil {
				reason, detail = ReasonLedgerDown, err.Error()
			}
			for _, c := range cands {
				hold(c, reason, detail)
			}
			return nil
		}
	}
	var open []*candidate
	for _, c := range cands {
		if !j.req.Force && !r.cfg.Window.Allows(r.now(), r.upgradeTime(c.vt)) {
			hold(c, ReasonOutsideWindow, fmt.Sprintf("the upgrade would not end inside %s", r.cfg.Window))
			continue
		}
		open = append(open, c)
	}

	var admitted []*candidate
	if r.ledger == nil || j.req.Force {
		admitted = open // no rollout state to keep; force is recorded in every result
	} else {
		byKey := map[rolloutKey][]*candidate{}
		var keys []rolloutKey
		for _, c := range open {
			if _, ok := byKey[c.key()]; !ok {
				keys = append(keys, c.key())
			}
			byKey[c.key()] = append(byKey[c.key()], c)
		}
		for _, c := range cands {
			if c.fresh {
				r.rollouts.sawFresh(c.key()) // the population counts them, held back or not
			}
		}
		for _, k := range keys {
			var fresh, retries []*candidate
			for _, c := range byKey[k] {
				if c.fresh {
					fresh = append(fresh, c)
				} else {
					retries = append(retries, c)
				}
			}
			d, err := r.rollouts.admit(ctx, j, k, len(fresh))
			if err != nil {
				for _, c := range byKey[k] {
					hold(c, ReasonLedgerDown, err.Error())
				}
				continue
			}
			if d.reason == ReasonBreakerOpen {
				for _, c := range byKey[k] {
					hold(c, d.reason, d.detail)
				}
				continue
			}
			admitted = append(admitted, retries...)
			admitted = append(admitted, fresh[:d.allow]...)
			r.rollouts.admitted(k, len(retries)+d.allow)
			for _, c := range fresh[d.allow:] {
				hold(c, d.reason, d.detail)
			}
		}
	}

	var out []*candidate
	for _, c := range admitted {
		switch {
		case j.dryRun:
			res := c.res
			res.Outcome = events.OutcomePlanned
			r.record(j, res, time.Since(c.start))
		case !r.reserveUpgrade():
			hold(c, ReasonRunLimit, fmt.Sprintf("MAX_UPGRADES_PER_RUN is %d", r.cfg.MaxUpgradesPerRun))
		default:
			out = append(out, c)
		}
	}
	return out
}
