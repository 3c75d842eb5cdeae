package handler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// gate is the stage that decides which of a chunk's candidates this run
// calls for, together: the kill switch stops all; outside the maintenance
// window none starts (unless forced); one update call per gateway and run,
// one version type at a time; a rollout lets in only its wave, and nothing
// while its breaker is open (unless forced); the run limit caps the rest,
// dry run or not. The candidates it holds back wait, and it reports them.
type gate struct {
	rep      *reporter
	kill     *killSwitch
	rollouts *rollouts // nil without a ledger: no rollout state to keep
	limit    *runLimit
	cfg      Config // Window, UpgradeTime
	now      func() time.Time

	mu    sync.Mutex
	taken map[string]upgrade.VersionType // gateways this run calls for (or plans to), and for which type
}

// runLimit is MAX_UPGRADES_PER_RUN: the upgrades a run may request.
type runLimit struct {
	max  int
	used atomic.Int64
}

// take reserves one upgrade, or reports that the run has none left.
func (l *runLimit) take() bool {
	if l.used.Add(1) > int64(l.max) {
		l.used.Add(-1)
		return false
	}
	return true
}

// giveBack returns an upgrade the run reserved and did not start.
func (l *runLimit) giveBack() { l.used.Add(-1) }

// stopped reports whether the kill switch is on, and if so defers the
// chunk's gateways without another API call: a stopped run winds down at
// once. A dry run makes no update call, so the switch does not stop it.
func (gt *gate) stopped(ctx context.Context, j job, chunk []Gateway) bool {
	if j.dryRun {
		return false
	}
	if on, err := gt.kill.on(ctx); !on || err != nil {
		return false // a ledger error is reported by the gate, per candidate
	}
	gt.rep.reportAll(j, chunk, upgrade.OutcomeDeferred, upgrade.ReasonKillSwitch, "the kill switch is on")
	return true
}

// wait reports a candidate the gate holds back.
func (gt *gate) wait(j job, c *candidate, reason, detail string) {
	res := deferred(c.res, reason)
	if detail != "" {
		res.Error = detail
	}
	gt.rep.report(j, res, time.Since(c.start))
}

// pass decides a chunk's candidates: those this run calls for, and those
// its rollouts let in (to give back what the calls do not use). A dry run
// reports the admitted ones within the cap as planned and calls nothing.
func (gt *gate) pass(ctx context.Context, j job, cands []*candidate) (calls, admitted []*candidate) {
	if len(cands) == 0 {
		return nil, nil
	}
	if !j.dryRun {
		if on, err := gt.kill.on(ctx); on {
			reason, detail := upgrade.ReasonKillSwitch, "the kill switch is on"
			if err != nil {
				reason, detail = upgrade.ReasonLedgerDown, err.Error()
			}
			for _, c := range cands {
				gt.wait(j, c, reason, detail)
			}
			return nil, nil
		}
	}
	var open []*candidate
	for _, c := range cands {
		if !j.force && !gt.cfg.Window.Allows(gt.now(), upgradeTime(gt.cfg, c.vt)) {
			gt.wait(j, c, upgrade.ReasonOutsideWindow, fmt.Sprintf("the upgrade would not end inside %s", gt.cfg.Window))
			continue
		}
		open = append(open, c)
	}
	open = gt.oneAtATime(j, open)

	if gt.rollouts == nil || j.force {
		admitted = open // no rollout state to keep; force is recorded in every result
	} else {
		admitted = gt.admit(ctx, j, cands, open)
	}

	// The run limit comes before the dry run: planned means "would be
	// requested", so a dry run counts its planned gateways against the cap
	// (and keeps the place, as an accepted call would) without calling.
	for _, c := range admitted {
		switch {
		case !gt.limit.take():
			gt.wait(j, c, upgrade.ReasonRunLimit, fmt.Sprintf("MAX_UPGRADES_PER_RUN is %d", gt.limit.max))
		case j.dryRun:
			res := c.res
			res.Outcome = upgrade.OutcomePlanned
			gt.rep.report(j, res, time.Since(c.start))
		default:
			calls = append(calls, c)
		}
	}
	return calls, admitted
}

// admit asks each rollout of the open candidates for its allowance: retries
// of gateways already in it need none, fresh gateways take a place of the
// wave, and while the breaker is open none goes.
func (gt *gate) admit(ctx context.Context, j job, cands, open []*candidate) (admitted []*candidate) {
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
			gt.rollouts.sawFresh(c.key()) // the population counts them, held back or not
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
		d, err := gt.rollouts.admit(ctx, j, k, len(fresh), len(retries))
		if err != nil {
			for _, c := range byKey[k] {
				gt.wait(j, c, upgrade.ReasonLedgerDown, err.Error())
			}
			continue
		}
		if d.reason == upgrade.ReasonBreakerOpen {
			for _, c := range byKey[k] {
				gt.wait(j, c, d.reason, d.detail)
			}
			continue
		}
		for _, c := range append(retries, fresh[:d.allow]...) {
			c.viaRollout = true // its rollout reserved a place: given back after the calls
			admitted = append(admitted, c)
		}
		for _, c := range fresh[d.allow:] {
			gt.wait(j, c, d.reason, d.detail)
		}
	}
	return admitted
}

// oneAtATime keeps to one update call per gateway and run, whatever the
// messages repeat, and one version type at a time per gateway: firmware
// first, its signature database in a later run once the firmware upgrade is
// verified, unverified or failed (and the reverse when the signature database was first). A dry
// run plans as a real run would call.
func (gt *gate) oneAtATime(j job, cands []*candidate) []*candidate {
	byType := slices.Clone(cands)
	slices.SortStableFunc(byType, func(a, b *candidate) int { // firmware first
		return boolInt(a.vt != upgrade.VersionDevice) - boolInt(b.vt != upgrade.VersionDevice)
	})
	refused := map[*candidate]bool{}
	for _, c := range byType {
		if c.other != nil && c.other.inFlight(gt.now()) {
			refused[c] = true
			gt.wait(j, c, upgrade.ReasonTypeInFlight, fmt.Sprintf("its %s upgrade to %s is in flight (%s)", c.other.VersionType, c.other.Target, c.other.State))
			continue
		}
		gt.mu.Lock()
		taken, ok := gt.taken[c.g.ID]
		if !ok {
			if gt.taken == nil {
				gt.taken = map[string]upgrade.VersionType{}
			}
			gt.taken[c.g.ID] = c.vt
		}
		gt.mu.Unlock()
		switch {
		case !ok:
		case taken == c.vt:
			// Named twice (two messages, a batch and its redelivery in one
			// invocation): the first holds it.
			refused[c] = true
			res := skipped(c.res, upgrade.ReasonInProgress)
			res.Error = "this run calls for it already: it was named more than once"
			gt.rep.report(j, res, time.Since(c.start))
		default:
			refused[c] = true
			gt.wait(j, c, upgrade.ReasonTypeInFlight, fmt.Sprintf("this run upgrades its %s first; %s waits for a later run", taken, c.vt))
		}
	}
	return slices.DeleteFunc(cands, func(c *candidate) bool { return refused[c] })
}

// giveBack returns to each rollout what a chunk let in: the places reserved
// for its calls, and the allowance of fresh gateways it did not start (a
// claim lost to another run, the run limit, a refused call).
func (gt *gate) giveBack(ctx context.Context, j job, admitted []*candidate) {
	if j.dryRun || gt.rollouts == nil {
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
		gt.rollouts.release(ctx, j, k, byKey[k].admitted, byKey[k].unused)
	}
}
