package handler

import (
	"context"
	"fmt"
	"strings"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// An operator steers one rollout, or every model's rollout of a version:
// reset closes its breaker, pause and unpause hold its gateways back and let
// them go, approve lets its next wave start. Each answers with the rollout's
// state before and after, and a request that names no rollout the ledger
// holds is rejected.

// steer applies a control request to the rollouts it names.
func (ro *rollouts) steer(ctx context.Context, j job) ([]upgrade.Control, error) {
	keys, err := ro.named(ctx, j)
	if err != nil {
		return nil, err
	}
	if j.kind == upgrade.KindApprove && len(keys) > 1 {
		return nil, fmt.Errorf("%w: an approval lets one rollout's wave start, and %d match (name versionTypes)", errInvalid, len(keys))
	}
	var out []upgrade.Control
	for _, k := range keys {
		ctl := upgrade.Control{Kind: j.kind, Subject: k.id()}
		var refused error
		doc, err := ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
			before := ro.status(k, *doc, doc.BreakerReason)
			ctl.Before, ctl.After, ctl.Changed, refused = upgrade.State{Rollout: &before}, upgrade.State{Rollout: &before}, false, nil
			var transitions []transition
			transitions, refused = ro.change(j, doc)
			if len(transitions) == 0 || refused != nil {
				return nil
			}
			after := ro.status(k, *doc, doc.BreakerReason)
			ctl.After, ctl.Changed = upgrade.State{Rollout: &after}, true
			ro.report(k, *doc, doc.BreakerReason)
			return transitions
		})
		if err != nil {
			return out, fmt.Errorf("%s of %s: %w", j.kind, k.id(), err)
		}
		if refused != nil {
			return out, refused
		}
		ctl.Revision = doc.rev
		if ctl.Changed {
			ro.log.Warn().Str("rollout", k.id()).Str("kind", string(j.kind)).Str("operator", j.operator).
				Str("correlationId", j.info.CorrelationID).Msg("rollout steered")
		}
		out = append(out, ctl)
	}
	return out, nil
}

// change makes a control request's change to a rollout's document, and
// returns the transitions to announce (none when the rollout already is as
// asked), or why the request is refused.
func (ro *rollouts) change(j job, doc *rolloutDoc) (transitions []transition, refused error) {
	now := ro.now()
	switch j.kind {
	case upgrade.KindReset:
		if doc.Breaker != "open" {
			return nil, nil
		}
		st := doc.stats()
		doc.Breaker, doc.BaseFinished, doc.BaseFailed, doc.ResetAt = "closed", st.finished(), st.failed, now
		doc.BreakerReason = fmt.Sprintf("reset by %s acknowledging %d failed of %d finished", setBy(j), st.failed, st.finished())
		return []transition{transitionOf(events.RolloutReset, doc)}, nil
	case upgrade.KindPause:
		if doc.Paused {
			return nil, nil
		}
		doc.Paused, doc.PausedBy, doc.PausedAt = true, setBy(j), now
		return []transition{transitionOf(events.RolloutPaused, doc)}, nil
	case upgrade.KindUnpause:
		if !doc.Paused {
			return nil, nil
		}
		doc.Paused, doc.PausedBy, doc.PausedAt = false, "", now
		// What waited while it was paused may move now.
		return append([]transition{transitionOf(events.RolloutUnpaused, doc)}, ro.review(doc)...), nil
	case upgrade.KindApprove:
		return ro.approve(j, doc)
	}
	return nil, fmt.Errorf("%w: %s does not steer a rollout", errInvalid, j.kind)
}

// approve lets exactly the next wave of a rollout start once it has soaked
// and is healthy (ROLLOUT_APPROVAL=manual); an approval of any other wave is
// refused, naming the next one.
func (ro *rollouts) approve(j job, doc *rolloutDoc) ([]transition, error) {
	if ro.cfg.RolloutApproval != ApprovalManual {
		return nil, fmt.Errorf("%w: ROLLOUT_APPROVAL is %s: each wave starts by itself once the one before has soaked", errNotNextWave, ro.cfg.RolloutApproval)
	}
	next := doc.Wave + 1
	switch {
	case doc.Done || doc.Wave >= ro.lastWave():
		return nil, fmt.Errorf("%w: rollout %s has no wave after wave %d", errNotNextWave, doc.Target, doc.Wave)
	case j.wave == doc.ApprovedWave && j.wave == next:
		return nil, nil // approved already
	case j.wave != next:
		return nil, fmt.Errorf("%w: wave %d of %s %s to %s is not the next one: the rollout is in wave %d, so only wave %d can be approved",
			errNotNextWave, j.wave, doc.VersionType, doc.Model, doc.Target, doc.Wave, next)
	}
	doc.ApprovedWave, doc.ApprovedBy = next, setBy(j)
	// A wave that has soaked starts at once; one still soaking, when its
	// soak ends.
	return append([]transition{transitionOf(events.RolloutApproved, doc)}, ro.review(doc)...), nil
}

// named returns the rollouts a control request names: those of its
// version types to its targetVersion, of its model if it names one.
func (ro *rollouts) named(ctx context.Context, j job) ([]rolloutKey, error) {
	var keys []rolloutKey
	for _, vt := range j.types {
		docs, err := retrying(ctx, ro.lcall, func(ctx context.Context) ([]Doc, error) {
			return ro.ledger.ListDocs(ctx, fmt.Sprintf("rollout#%s#", vt))
		})
		if err != nil {
			return nil, fmt.Errorf("listing the rollouts: %w", err)
		}
		for _, d := range docs {
			var found rolloutDoc
			if err := decodeRollout(d.ID, d.Body, &found); err != nil {
				ro.log.Warn().Err(err).Msg("an unreadable rollout document is not steered")
				continue
			}
			if compareVersions(found.Target, j.target) == 0 && (j.model == "" || found.Model == j.model) {
				keys = append(keys, rolloutKey{found.VersionType, found.Model, found.Target})
			}
		}
	}
	if len(keys) == 0 {
		what := fmt.Sprintf("%s rollout to version %s", joinTypes(j.types), j.target)
		if j.model != "" {
			what = fmt.Sprintf("%s rollout of model %s to version %s", joinTypes(j.types), j.model, j.target)
		}
		return nil, fmt.Errorf("%w: no %s in the ledger", errNoSuchRollout, what)
	}
	return keys, nil
}

func joinTypes(types []upgrade.VersionType) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, " or ")
}
