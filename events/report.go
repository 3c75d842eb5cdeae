package events

import (
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Report is the response of an invocation: what the run did to each gateway.
type Report struct {
	RunID      string           `json:"runId"`
	Trigger    Trigger          `json:"trigger"`
	DryRun     bool             `json:"dryRun"`
	StartedAt  time.Time        `json:"startedAt"` // RFC 3339 on the wire
	FinishedAt time.Time        `json:"finishedAt"`
	Counts     upgrade.Counts   `json:"counts"`
	Results    []upgrade.Result `json:"results"` // never nil in a report the handler returns: [] on the wire, not null
	// Continuation is set when the run left work for a follow-up invocation.
	Continuation *Continuation `json:"continuation,omitempty"`
	Publishing   Publishing    `json:"publishing"`
	// Rollouts is the state of every rollout the run touched.
	Rollouts []upgrade.Rollout `json:"rollouts,omitempty"`
	// KillSwitch is set when the kill switch held back update calls.
	KillSwitch bool `json:"killSwitch,omitempty"`
	// Ledger says whether the run had the ledger. Without it there are no
	// claims, rollout waves, breaker, penalty box nor follow-up verification.
	Ledger bool `json:"ledger"`
	// Warnings are what an operator should know about the run's setup (the
	// ledger off, outcome events not published, a short lease).
	Warnings []string `json:"warnings,omitempty"`
	// Fanout is set when the run was a planner: it sent the fleet to the
	// work queue in batches, for workers to sweep.
	Fanout *Fanout `json:"fanout,omitempty"`
	// Control is what a control request (stop, resume, reset, pause,
	// unpause, approve) changed.
	Control []upgrade.Control `json:"control,omitempty"`
	// Status answers a status request; History a history request.
	Status  *Status  `json:"status,omitempty"`
	History *History `json:"history,omitempty"`
	// Plan says how a plan request was evaluated.
	Plan *Plan `json:"plan,omitempty"`
	// RegionsClosed are the regions a sweep did not list, each with the
	// next opening of its own window (MAINTENANCE_WINDOWS).
	RegionsClosed map[string]time.Time `json:"regionsClosed,omitempty"`
}

// Status is how the fleet's upgrades stand, from the ledger alone.
type Status struct {
	Rollouts   []upgrade.Rollout    `json:"rollouts"`
	KillSwitch upgrade.State        `json:"killSwitch"`
	Runs       []upgrade.RunSummary `json:"runs"` // the last runs, newest first
	// KeptEvents counts the events kept for later publication (at least
	// so many when KeptAtLeast).
	KeptEvents  int            `json:"keptEvents"`
	KeptAtLeast bool           `json:"keptEventsAtLeast,omitempty"`
	Fleet       *upgrade.Fleet `json:"fleet,omitempty"` // as the last full sweep saw it
	NightUsed   int            `json:"nightUsed"`       // upgrades taken from MAX_UPGRADES_PER_NIGHT tonight
	NightLimit  int            `json:"nightLimit"`
}

// History is one gateway's ledger records and its audit trail, oldest first.
type History struct {
	SmartAGID string                  `json:"smartAGId"`
	Records   []upgrade.GatewayRecord `json:"records"`
	Trail     []upgrade.AuditEntry    `json:"trail"`
}

// Plan says when a plan was evaluated: as at each region's next window
// opening, without fan-out.
type Plan struct {
	At       map[string]time.Time `json:"at"` // by region
	NoFanout bool                 `json:"noFanout"`
}

// Fanout says what a planner sent to the work queue.
type Fanout struct {
	Gateways int `json:"gateways"` // gateways sent, each in exactly one batch
	Batches  int `json:"batches"`
	Failed   int `json:"failed,omitempty"` // gateways whose batch could not be sent (each also has a deferred result)
	// Kept: gateways of batches the planner swept itself while it listed
	// (not sent; their results are in its report).
	Kept int `json:"kept,omitempty"`
}

// Continuation says whether the rest of the work was put on the work queue.
type Continuation struct {
	Enqueued  bool `json:"enqueued"`
	Remaining int  `json:"remaining"`
}

// Publishing says what became of a run's events: published to the topic,
// kept in the ledger for a later run to publish (the topic failed), or failed
// (neither: the event is whole in a log line). Republished counts events that
// earlier runs kept and this run published.
type Publishing struct {
	Published   int      `json:"published"`
	Failed      int      `json:"failed"`
	Kept        int      `json:"kept"`
	Republished int      `json:"republished,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}
