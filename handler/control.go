package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// The kill switch stops every update call. KILL_SWITCH=true in the
// environment stops the runs of instances started with it; a stop request
// sets the switch in the ledger, which every run reads again, uncached, right
// before each update call (after its pacing wait and its claim), so a run
// already under way makes at most one more call per worker: the calls whose
// read came before the stop was written.

const controlDoc = "control"

type control struct {
	KillSwitch bool      `json:"killSwitch"`
	By         string    `json:"by,omitempty"` // the run and correlation id that set it
	At         time.Time `json:"at,omitzero"`
}

// killSwitch reads the switch for one run.
type killSwitch struct {
	r       *run
	mu      sync.Mutex
	stopped bool // the switch held back at least one call (for the report)
}

// check reports whether update calls must stop. A ledger that cannot be
// read stops them too: no call without knowing.
func (k *killSwitch) check(ctx context.Context) (bool, error) {
	if k.r.cfg.KillSwitch {
		return k.hold(true), nil
	}
	if k.r.ledger == nil {
		return false, nil
	}
	// No cache: a switch read even a second ago lets a run make a second's
	// worth of calls after the stop.
	c, _, err := k.read(ctx)
	if err != nil {
		return true, err
	}
	return k.hold(c.KillSwitch), nil
}

func (k *killSwitch) hold(on bool) bool {
	if on {
		k.mu.Lock()
		k.stopped = true
		k.mu.Unlock()
	}
	return on
}

func (k *killSwitch) read(ctx context.Context) (control, int64, error) {
	type got struct {
		d     Doc
		found bool
	}
	g, err := retrying(ctx, k.r.lcall, func(ctx context.Context) (got, error) {
		d, found, err := k.r.ledger.GetDoc(ctx, controlDoc)
		return got{d, found}, err
	})
	if err != nil || !g.found {
		return control{}, 0, err
	}
	c, err := decodeControl(g.d.Body)
	return c, g.d.Rev, err
}

// set turns the ledger's switch on (stop) or off (resume), and answers with
// its state before and after. A write that cannot be made is an error: an
// operator who asked for a stop must not believe the fleet stopped.
func (k *killSwitch) set(ctx context.Context, j job, on bool) (upgrade.Control, error) {
	r := k.r
	kind := upgrade.KindResume
	if on {
		kind = upgrade.KindStop
	}
	ctl := upgrade.Control{Kind: kind, Subject: "killSwitch"}
	if r.ledger == nil {
		return ctl, fmt.Errorf("%w: stop and resume need it; without it set KILL_SWITCH=true in the environment", errNoLedger)
	}
	// Only other control writes race this one: read again and write
	// again until it lands or the run's time to start calls is over.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 20*time.Millisecond, time.Second
	for {
		before, rev, err := k.read(ctx)
		if err != nil {
			return ctl, fmt.Errorf("reading the kill switch: %w", err)
		}
		after := control{KillSwitch: on, By: strings.TrimSpace(j.info.RunID + " " + j.info.CorrelationID), At: r.now()}
		ctl.Before, ctl.After = before.state(), after.state()
		ctl.Changed = before.KillSwitch != on
		if !ctl.Changed {
			ctl.After = ctl.Before // already so: nothing written
			r.log.Info().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch already so")
			return ctl, nil
		}
		body, _ := json.Marshal(after)
		_, err = retrying(ctx, r.lcall, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.ledger.PutDoc(ctx, Doc{ID: controlDoc, Rev: rev + 1, Body: body})
		})
		if err == nil {
			r.log.Warn().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch set")
			return ctl, nil
		}
		wait := b.NextBackOff()
		if !errors.Is(err, ErrConflict) || time.Now().Add(wait).After(r.api.stopAt) {
			return ctl, fmt.Errorf("writing the kill switch: %w", err)
		}
		r.log.Info().Err(err).Msg("kill switch written by another request meanwhile; reading it again")
		time.Sleep(wait)
	}
}

func (c control) state() upgrade.State {
	on := c.KillSwitch
	return upgrade.State{KillSwitch: &on, SetBy: c.By, SetAt: c.At}
}

// errNoLedger: the request needs the ledger, which is not configured.
var errNoLedger = errors.New("no ledger")

// resetRollouts serves a reset request.
func (r *run) resetRollouts(ctx context.Context, j job) ([]upgrade.Control, error) {
	if r.ledger == nil {
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
		r.record(j, rejection(m, reason), 0)
		return err.Error()
	}
	r.log.Error().Err(err).Str("kind", string(j.kind)).Str("correlationId", j.info.CorrelationID).Msg("control request failed")
	r.mu.Lock()
	r.controlErrs = append(r.controlErrs, fmt.Sprintf("%s: %v", j.kind, err))
	r.mu.Unlock()
	return ""
}

// ControlError is returned when a control request could not be carried out:
// the caller must not believe it was.
type ControlError struct{ Problems []string }

func (e *ControlError) Error() string {
	return "control request failed: " + strings.Join(e.Problems, "; ")
}
