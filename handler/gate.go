package handler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
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
	r.recordAll(j, chunk, upgrade.OutcomeDeferred, upgrade.ReasonKillSwitch, "the kill switch is on")
	return true
}

// gate decides which candidates this run calls for, together: the kill
// switch stops all; outside the maintenance window none starts (unless
// forced); a rollout lets in only its wave, and nothing while its breaker is
// open (unless forced); the run limit caps the rest, dry run or not. A dry
// run reports the admitted ones within the cap as planned and calls nothing.
func (r *run) gate(ctx context.Context, j job, cands []*candidate) (calls, admitted []*candidate) {
	hold := func(c *candidate, reason, detail string) {
		res := deferred(c.res, reason)
		if detail != "" {
			res.Error = detail
		}
		r.record(j, res, time.Since(c.start))
	}
	if len(cands) == 0 {
		return nil, nil
	}
	if !j.dryRun {
		if on, err := r.kill.check(ctx); on {
			reason, detail := upgrade.ReasonKillSwitch, "the kill switch is on"
			if err != nil {
				reason, detail = upgrade.ReasonLedgerDown, err.Error()
			}
			for _, c := range cands {
				hold(c, reason, detail)
			}
			return nil, nil
		}
	}
	var open []*candidate
	for _, c := range cands {
		if !j.force && !r.cfg.Window.Allows(r.now(), r.upgradeTime(c.vt)) {
			hold(c, upgrade.ReasonOutsideWindow, fmt.Sprintf("the upgrade would not end inside %s", r.cfg.Window))
			continue
		}
		open = append(open, c)
	}
	open = r.oneAtATime(j, open, hold)

	if r.ledger == nil || j.force {
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
			d, err := r.rollouts.admit(ctx, j, k, len(fresh), len(retries))
			if err != nil {
				for _, c := range byKey[k] {
					hold(c, upgrade.ReasonLedgerDown, err.Error())
				}
				continue
			}
			if d.reason == upgrade.ReasonBreakerOpen {
				for _, c := range byKey[k] {
					hold(c, d.reason, d.detail)
				}
				continue
			}
			for _, c := range append(retries, fresh[:d.allow]...) {
				c.viaRollout = true // its rollout reserved a place: settled after the calls
				admitted = append(admitted, c)
			}
			for _, c := range fresh[d.allow:] {
				hold(c, d.reason, d.detail)
			}
		}
	}

	// The run limit comes before the dry run: planned means "would be
	// requested", so a dry run counts its planned gateways against the cap
	// (and keeps the place, as an accepted call would) without calling.
	for _, c := range admitted {
		switch {
		case !r.reserveUpgrade():
			hold(c, upgrade.ReasonRunLimit, fmt.Sprintf("MAX_UPGRADES_PER_RUN is %d", r.cfg.MaxUpgradesPerRun))
		case j.dryRun:
			res := c.res
			res.Outcome = upgrade.OutcomePlanned
			r.record(j, res, time.Since(c.start))
		default:
			calls = append(calls, c)
		}
	}
	return calls, admitted
}

// oneAtATime keeps to one update call per gateway and run, whatever the
// messages repeat, and one version type at a time per gateway: firmware
// first, its signature database in a later run once the firmware upgrade is
// settled (and the reverse when the signature database was first). A dry
// run plans as a real run would call.
func (r *run) oneAtATime(j job, cands []*candidate, hold func(c *candidate, reason, detail string)) []*candidate {
	byType := slices.Clone(cands)
	slices.SortStableFunc(byType, func(a, b *candidate) int { // firmware first
		return boolInt(a.vt != upgrade.VersionDevice) - boolInt(b.vt != upgrade.VersionDevice)
	})
	refused := map[*candidate]bool{}
	for _, c := range byType {
		if c.other != nil && c.other.inFlight(r.now()) {
			refused[c] = true
			hold(c, upgrade.ReasonTypeInFlight, fmt.Sprintf("its %s upgrade to %s is in flight (%s)", c.other.VersionType, c.other.Target, c.other.State))
			continue
		}
		r.mu.Lock()
		taken, ok := r.taken[c.g.ID]
		if !ok {
			if r.taken == nil {
				r.taken = map[string]upgrade.VersionType{}
			}
			r.taken[c.g.ID] = c.vt
		}
		r.mu.Unlock()
		switch {
		case !ok:
		case taken == c.vt:
			// Named twice (two messages, a batch and its redelivery in one
			// invocation): the first holds it.
			refused[c] = true
			res := skipped(c.res, upgrade.ReasonInProgress)
			res.Error = "this run calls for it already: it was named more than once"
			r.record(j, res, time.Since(c.start))
		default:
			refused[c] = true
			hold(c, upgrade.ReasonTypeInFlight, fmt.Sprintf("this run upgrades its %s first; %s waits for a later run", taken, c.vt))
		}
	}
	return slices.DeleteFunc(cands, func(c *candidate) bool { return refused[c] })
}

// settleRollouts gives each rollout back what a chunk let in: the places
// reserved for its calls, and the allowance of fresh gateways it did not
// start (a claim lost to another run, the run limit, a refused call).
func (r *run) settleRollouts(ctx context.Context, j job, admitted []*candidate) {
	if j.dryRun {
		return
	}
	type tally struct{ admitted, unused int }
	byKey := map[rolloutKey]*tally{}
	var keys []rolloutKey
	for _, c := range admitted {
		if !c.viaRollout {
			continue
		}
		t := byKey[c.key()]
		if t == nil {
			t = &tally{}
			byKey[c.key()] = t
			keys = append(keys, c.key())
		}
		t.admitted++
		if c.fresh && !c.claimed {
			t.unused++
		}
	}
	for _, k := range keys {
		r.rollouts.settle(ctx, j, k, byKey[k].admitted, byKey[k].unused)
	}
}
