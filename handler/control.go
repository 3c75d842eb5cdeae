package handler

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
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
	g, err := store(ctx, k.r.lcall, func(ctx context.Context) (got, error) {
		d, found, err := k.r.ledger.GetDoc(ctx, controlDoc)
		return got{d, found}, err
	})
	if err != nil || !g.found {
		return control{}, 0, err
	}
	var c control
	err = json.Unmarshal(g.d.Body, &c)
	return c, g.d.Rev, err
}

// set turns the ledger's switch on (stop) or off (resume).
func (k *killSwitch) set(ctx context.Context, j job, on bool) {
	r := k.r
	if r.ledger == nil {
		r.record(j, events.Result{Outcome: events.OutcomeRejected, Reason: ReasonNoLedger,
			Error: "stop and resume need the ledger; without it set KILL_SWITCH=true in the environment"}, 0)
		return
	}
	for attempt := 0; attempt < 5; attempt++ {
		_, rev, err := k.read(ctx)
		if err != nil {
			r.record(j, events.Result{Outcome: events.OutcomeFailed, Reason: ReasonLedgerDown, Error: err.Error()}, 0)
			return
		}
		body, _ := json.Marshal(control{KillSwitch: on, By: j.info.RunID + " " + j.info.CorrelationID, At: r.now()})
		err = r.ledger.PutDoc(ctx, Doc{ID: controlDoc, Rev: rev + 1, Body: body})
		if err == nil {
			r.log.Warn().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch set")
			return
		}
		if err != ErrConflict {
			r.record(j, events.Result{Outcome: events.OutcomeFailed, Reason: ReasonLedgerDown, Error: err.Error()}, 0)
			return
		}
	}
}
