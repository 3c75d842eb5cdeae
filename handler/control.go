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
// sets the switch in the ledger, which every run reads again before each
// update call (at most switchTTL old), so runs already under way stop too.

const (
	controlDoc = "control"
	switchTTL  = time.Second
)

type control struct {
	KillSwitch bool      `json:"killSwitch"`
	By         string    `json:"by,omitempty"` // the run and correlation id that set it
	At         time.Time `json:"at,omitzero"`
}

// killSwitch caches the ledger's switch for one run.
type killSwitch struct {
	r       *run
	mu      sync.Mutex
	on      bool
	readAt  time.Time
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
	k.mu.Lock()
	fresh := time.Since(k.readAt) < switchTTL
	on := k.on
	k.mu.Unlock()
	if fresh {
		return k.hold(on), nil
	}
	c, _, err := k.read(ctx)
	if err != nil {
		return true, err
	}
	k.mu.Lock()
	k.on, k.readAt = c.KillSwitch, time.Now()
	k.mu.Unlock()
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
			k.mu.Lock()
			k.on, k.readAt = on, time.Now()
			k.mu.Unlock()
			r.log.Warn().Bool("killSwitch", on).Str("correlationId", j.info.CorrelationID).Msg("kill switch set")
			return
		}
		if err != ErrConflict {
			r.record(j, events.Result{Outcome: events.OutcomeFailed, Reason: ReasonLedgerDown, Error: err.Error()}, 0)
			return
		}
	}
}
