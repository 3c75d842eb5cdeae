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
	night    *nightCap
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
// Before it holds a candidate back at a cap (the run's, the night's, a
// wave's) it drains: it waits for the earlier chunks' calls still in flight
// to give back what they did not use (drain reports whether there were
// any), and asks again.
func (gt *gate) pass(ctx context.Context, j job, cands []*candidate, drain func() bool) (calls, admitted []*candidate) {
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
		if w := gt.cfg.WindowOf(c.g.Region); !j.force && !w.Allows(j.when(gt.now), upgradeTime(gt.cfg, c.vt)) {
			gt.wait(j, c, upgrade.ReasonOutsideWindow, fmt.Sprintf("the upgrade would not end inside %s", w))
			continue
		}
		open = append(open, c)
	}
	open = gt.oneAtATime(j, open)

	switch {
	case gt.rollouts == nil:
		admitted = open // no rollout state to keep
	case j.force:
		admitted = gt.forced(ctx, j, open) // force is recorded in every result
	default:
		admitted = gt.admit(ctx, j, cands, open, drain)
	}

	// The run limit comes before the dry run: planned means "would be
	// requested", so a dry run counts its planned gateways against the cap
	// (and keeps the place, as an accepted call would) without calling.
	var within []*candidate
	for _, c := range admitted {
		if !gt.limit.take() && (!drain() || !gt.limit.take()) {
			gt.wait(j, c, upgrade.ReasonRunLimit, fmt.Sprintf("MAX_UPGRADES_PER_RUN is %d", gt.limit.max))
			continue
		}
		within = append(within, c)
	}
	// Then the night's cap, taken in the ledger for the chunk at once.
	granted, err := gt.night.take(ctx, len(within), j.dryRun)
	if err == nil && granted < len(within) && drain() {
		// Asking again may fail: what the first ask granted still goes.
		if more, again := gt.night.take(ctx, len(within)-granted, j.dryRun); again == nil {
			granted += more
		}
	}
	for i, c := range within {
		switch {
		case err != nil:
			gt.limit.giveBack()
			gt.wait(j, c, upgrade.ReasonLedgerDown, err.Error())
		case i >= granted:
			gt.limit.giveBack()
			gt.wait(j, c, upgrade.ReasonNightLimit, fmt.Sprintf("MAX_UPGRADES_PER_NIGHT is %d, all taken tonight (the night of %s in %s)",
				gt.night.limit, gt.night.night(gt.now()), gt.night.loc))
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
func (gt *gate) admit(ctx context.Context, j job, cands, open []*candidate, drain func() bool) (admitted []*candidate) {
	byKey := map[shareKey][]*candidate{}
	var keys []shareKey
	for _, c := range open {
		sk := gt.shareOf(c)
		if _, ok := byKey[sk]; !ok {
			keys = append(keys, sk)
		}
		byKey[sk] = append(byKey[sk], c)
	}
	for _, c := range cands {
		if c.fresh {
			gt.rollouts.sawFresh(c.key(), c.g.Region) // the population counts them, held back or not
		}
	}
	for _, sk := range keys {
		var fresh, retries []*candidate
		for _, c := range byKey[sk] {
			if c.fresh {
				fresh = append(fresh, c)
			} else {
				retries = append(retries, c)
			}
		}
		d, err := gt.rollouts.admit(ctx, j, sk.k, sk.region, len(fresh), len(retries))
		if err == nil && d.reason == upgrade.ReasonWave && d.allow < len(fresh) && drain() {
			// A full wave may have room again once the calls in flight
			// give back the places of gateways they did not start.
			// If that fails, or the rollout now holds all back, the first
			// answer stands (the places it reserved are used or given back).
			if more, err := gt.rollouts.admit(ctx, j, sk.k, sk.region, len(fresh)-d.allow, 0); err == nil && !more.holdsAll() {
				more.allow += d.allow
				d = more
			}
		}
		if err != nil {
			for _, c := range byKey[sk] {
				gt.wait(j, c, upgrade.ReasonLedgerDown, err.Error())
			}
			continue
		}
		if d.holdsAll() {
			for _, c := range byKey[sk] {
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

// shareKey is what a rollout's allowance is taken for: the rollout, and the
// region when regions share a wave (MAINTENANCE_WINDOWS).
type shareKey struct {
	k      rolloutKey
	region string
}

func (gt *gate) shareOf(c *candidate) shareKey {
	if !gt.rollouts.shared() {
		return shareKey{k: c.key()}
	}
	return shareKey{c.key(), c.g.Region}
}

// forced decides forced candidates: force passes the window, the waves and
// the breaker, never a pause nor an approval gate. It reads each rollout and
// writes nothing: a forced upgrade takes no place of a wave.
func (gt *gate) forced(ctx context.Context, j job, open []*candidate) (admitted []*candidate) {
	held := map[rolloutKey]decision{}
	for _, c := range open {
		d, ok := held[c.key()]
		if !ok {
			var err error
			if d, err = gt.rollouts.gated(ctx, c.key()); err != nil {
				d = decision{reason: upgrade.ReasonLedgerDown, detail: err.Error()}
			}
			held[c.key()] = d
		}
		switch {
		case d.reason == "", d.reason == upgrade.ReasonAwaitingApproval && !c.fresh:
			admitted = append(admitted, c)
		default:
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
func (gt *gate) giveBack(ctx context.Context, j job, admitted, calls []*candidate) {
	if j.dryRun {
		return
	}
	unstarted := 0
	for _, c := range calls {
		if c.accepted.Load() == nil {
			unstarted++
		}
	}
	if err := gt.night.giveBack(ctx, unstarted); err != nil {
		gt.rep.log.Warn().Err(err).Int("upgrades", unstarted).Msg("upgrades not started stay taken from the night's count")
	}
	if gt.rollouts == nil {
		return
	}
	type tally struct{ admitted, unused int }
	byKey := map[shareKey]*tally{}
	var keys []shareKey
	for _, c := range admitted {
		if !c.viaRollout {
			continue
		}
		sk := gt.shareOf(c)
		t := byKey[sk]
		if t == nil {
			t = &tally{}
			byKey[sk] = t
			keys = append(keys, sk)
		}
		t.admitted++
		if c.fresh && !c.claimed {
			t.unused++
		}
	}
	for _, sk := range keys {
		gt.rollouts.release(ctx, j, sk.k, sk.region, byKey[sk].admitted, byKey[sk].unused)
	}
}
