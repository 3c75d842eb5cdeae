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
	"github.com/rs/zerolog"

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

// killSwitch reads and sets the switch for one run.
type killSwitch struct {
	env    bool   // KILL_SWITCH=true
	ledger Ledger // nil: the environment's switch alone
	lcall  *caller
	now    func() time.Time
	log    zerolog.Logger
	stopAt time.Time // a write that races others is tried again until then

	mu      sync.Mutex
	stopped bool // the switch held back at least one call (for the report)
}

// on reports whether update calls must stop. A ledger that cannot be read
// stops them too: no call without knowing.
func (k *killSwitch) on(ctx context.Context) (bool, error) {
	if k.env {
		return k.saw(true), nil
	}
	if k.ledger == nil {
		return false, nil
	}
	// No cache: a switch read even a second ago lets a run make a second's
	// worth of calls after the stop.
	c, _, err := k.read(ctx)
	if err != nil {
		return true, err
	}
	return k.saw(c.KillSwitch), nil
}

// saw notes what the switch said: on, it held a call back.
func (k *killSwitch) saw(on bool) bool {
	if on {
		k.mu.Lock()
		k.stopped = true
		k.mu.Unlock()
	}
	return on
}

func (k *killSwitch) read(ctx context.Context) (control, int64, error) {
	d, found, err := getDoc(ctx, k.ledger, k.lcall, controlDoc)
	if err != nil || !found {
		return control{}, 0, err
	}
	c, err := decodeControl(d.Body)
	return c, d.Rev, err
}

// set turns the ledger's switch on (stop) or off (resume), and answers with
// its state before and after. A write that cannot be made is an error: an
// operator who asked for a stop must not believe the fleet stopped.
func (k *killSwitch) set(ctx context.Context, j job, on bool) (upgrade.Control, error) {
	kind := upgrade.KindResume
	if on {
		kind = upgrade.KindStop
	}
	ctl := upgrade.Control{Kind: kind, Subject: "killSwitch"}
	if k.ledger == nil {
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
		after := control{KillSwitch: on, By: setBy(j), At: k.now()}
		ctl.Before, ctl.After = before.state(), after.state()
		ctl.Changed, ctl.Revision = before.KillSwitch != on, rev
		if !ctl.Changed {
			ctl.After = ctl.Before // already so: nothing written
			k.log.Info().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch already so")
			return ctl, nil
		}
		body, _ := json.Marshal(after)
		err = putDoc(ctx, k.ledger, k.lcall, Doc{ID: controlDoc, Rev: rev + 1, Body: body})
		if err == nil {
			ctl.Revision = rev + 1
			k.log.Warn().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch set")
			return ctl, nil
		}
		wait := b.NextBackOff()
		if !errors.Is(err, ErrConflict) || time.Now().Add(wait).After(k.stopAt) {
			return ctl, fmt.Errorf("writing the kill switch: %w", err)
		}
		k.log.Info().Err(err).Msg("kill switch written by another request meanwhile; reading it again")
		time.Sleep(wait)
	}
}

// setBy says who made a control request: the operator as declared, the run
// and the correlation id.
func setBy(j job) string {
	by := strings.TrimSpace(j.info.RunID + " " + j.info.CorrelationID)
	if j.operator != "" {
		by = j.operator + " (" + by + ")"
	}
	return by
}

func (c control) state() upgrade.State {
	on := c.KillSwitch
	return upgrade.State{KillSwitch: &on, SetBy: c.By, SetAt: c.At}
}

// decodeControl reads the kill switch's document.
func decodeControl(body []byte) (control, error) {
	var c control
	if err := json.Unmarshal(body, &c); err != nil {
		return control{}, fmt.Errorf("control document: %w", err)
	}
	return c, nil
}
