package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// errNoLedger: the request needs the ledger, which is not configured.
var errNoLedger = errors.New("no ledger")

// resetRollouts serves a reset request.
func (r *run) resetRollouts(ctx context.Context, j job) ([]upgrade.Control, error) {
	if r.book == nil {
		return nil, fmt.Errorf("%w: a reset needs it", errNoLedger)
	}
	return r.rollouts.reset(ctx, j)
}

// controlled answers a control request: what it changed goes in the report
// and out as an event. A request that names nothing there is to act on, or
// needs the ledger this deployment lacks, is rejected (the problem is
// returned); a write that could not be made fails the invocation.
func (r *run) controlled(m events.Message, j job, ctls []upgrade.Control, err error) (rejected string) {
	for _, c := range ctls {
		if c.Subject == "" {
			continue
		}
		r.mu.Lock()
		r.controls = append(r.controls, c)
		r.mu.Unlock()
		r.out.add(events.ControlEvent(r.out.source, j.info, c, r.now()))
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errNoLedger), errors.Is(err, errNoSuchRollout):
		m.Err = err
		reason := upgrade.ReasonNoLedger
		if errors.Is(err, errNoSuchRollout) {
			reason = upgrade.ReasonNotFound
		}
		r.report(j, rejection(m, reason), 0)
		return err.Error()
	}
	r.log.Error().Err(err).Str("kind", string(j.kind)).Str("correlationId", j.info.CorrelationID).Msg("control request failed")
	r.mu.Lock()
	r.controlErrs = append(r.controlErrs, fmt.Sprintf("%s: %v", j.kind, err))
	r.mu.Unlock()
	return ""
}
