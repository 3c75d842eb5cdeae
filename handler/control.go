package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Why a control request or a query is refused: each is rejected with its
// reason, the error naming what was wrong.
var (
	errNoLedger      = errors.New("no ledger")       // the request needs the ledger, which is not configured
	errNoSuchRollout = errors.New("no such rollout") // it names a rollout the ledger does not hold
	errNotFound      = errors.New("not found")       // it names a gateway the ledger holds nothing of
	errInvalid       = errors.New("invalid request") // it asks what cannot be answered as asked
	errNotNextWave   = errors.New("not the next wave")
)

// refusal is the rejection reason of an error a control request or a query
// ended with, or "" when the error is a failure to carry it out.
func refusal(err error) string {
	switch {
	case errors.Is(err, errNoLedger):
		return upgrade.ReasonNoLedger
	case errors.Is(err, errNoSuchRollout), errors.Is(err, errNotFound):
		return upgrade.ReasonNotFound
	case errors.Is(err, errInvalid):
		return upgrade.ReasonInvalidRequest
	case errors.Is(err, errNotNextWave):
		return upgrade.ReasonNotNextWave
	}
	return ""
}

// steer serves a control request: the kill switch (stop, resume) or the
// rollouts it names (reset, pause, unpause, approve).
func (r *run) steer(ctx context.Context, m events.Message, j job) (rejected string) {
	var ctls []upgrade.Control
	var err error
	switch j.kind {
	case upgrade.KindStop, upgrade.KindResume:
		var ctl upgrade.Control
		ctl, err = r.kill.set(ctx, j, j.kind == upgrade.KindStop)
		ctls = []upgrade.Control{ctl}
	default:
		if r.ledger == nil {
			err = fmt.Errorf("%w: a %s acts on a rollout the ledger keeps", errNoLedger, j.kind)
			break
		}
		ctls, err = r.rollouts.steer(ctx, j)
	}
	return r.controlled(ctx, m, j, ctls, err)
}

// controlled answers a control request: what it changed goes in the report,
// out as an event and into the audit trail. A request that names nothing
// there is to act on, or that its subject's state refuses, is rejected (the
// problem is returned); a write that could not be made fails the invocation.
func (r *run) controlled(ctx context.Context, m events.Message, j job, ctls []upgrade.Control, err error) (rejected string) {
	for _, c := range ctls {
		if c.Subject == "" {
			continue
		}
		r.mu.Lock()
		r.controls = append(r.controls, c)
		r.mu.Unlock()
		r.out.add(events.ControlEvent(r.out.source, j.info, c, r.now()))
		if c.Changed {
			if aerr := r.audit(ctx, j, c); aerr != nil {
				err = errors.Join(err, fmt.Errorf("%s changed, but its audit entry could not be written: %w", c.Subject, aerr))
			}
		}
	}
	return r.ended(m, j, err, "control request failed", &r.controlErrs)
}

// ended reports how a control request or a query ended: refused, it is
// rejected (and the problem returned); otherwise err, if any, is logged
// (as failed) and added to failures, which fail the invocation.
func (r *run) ended(m events.Message, j job, err error, failed string, failures *[]string) (rejected string) {
	if err == nil {
		return ""
	}
	if reason := refusal(err); reason != "" {
		m.Err = err
		r.report(j, rejection(m, reason), 0)
		return err.Error()
	}
	r.log.Error().Err(err).Str("kind", string(j.kind)).Str("correlationId", j.info.CorrelationID).Msg(failed)
	r.mu.Lock()
	*failures = append(*failures, fmt.Sprintf("%s: %v", j.kind, err))
	r.mu.Unlock()
	return ""
}

// audit writes a change a control request made into its subject's audit
// trail, with the operator as the request declares them (ActionTrail holds
// who invoked the function). A request that changed nothing writes none.
func (r *run) audit(ctx context.Context, j job, c upgrade.Control) error {
	e := upgrade.AuditEntry{Gateway: c.Subject, Time: r.now(), Event: string(j.kind), RunID: r.info.RunID, RequestID: r.requestID,
		Trigger: string(r.info.Trigger), Correlation: j.info.CorrelationID, Operator: j.operator, Rev: c.Revision}
	if ro := c.After.Rollout; ro != nil {
		e.VersionType, e.Target = ro.VersionType, ro.Target
	}
	_, err := retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.ledger.Audit(ctx, e) })
	return err
}

// answer serves a query (status, history): the answer goes in the report.
// A query the ledger cannot answer as asked is rejected; one it could not be
// read for fails the invocation (services unreachable).
func (r *run) answer(ctx context.Context, m events.Message, j job) (rejected string) {
	var err error
	switch j.kind {
	case upgrade.KindStatus:
		var st *events.Status
		if st, err = r.status(ctx); err == nil {
			r.mu.Lock()
			r.answers.status = st
			r.mu.Unlock()
		}
	case upgrade.KindHistory:
		var h *events.History
		if h, err = r.history(ctx, j); err == nil {
			r.mu.Lock()
			r.answers.history = h
			r.mu.Unlock()
		}
	}
	return r.ended(m, j, err, "query not answered", &r.unanswered)
}
