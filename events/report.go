package events

import (
	"encoding/json"
	"time"
)

// Report is the response of an invocation: what the run did to each gateway.
type Report struct {
	RunID      string    `json:"runId"`
	Trigger    Trigger   `json:"trigger"`
	DryRun     bool      `json:"dryRun"`
	StartedAt  time.Time `json:"startedAt"` // RFC 3339 on the wire
	FinishedAt time.Time `json:"finishedAt"`
	Counts     Counts    `json:"counts"`
	Results    []Result  `json:"results"` // never null on the wire
	// Continuation is set when the run left work for a follow-up invocation.
	Continuation *Continuation `json:"continuation,omitempty"`
	Publishing   Publishing    `json:"publishing"`
	// Rollouts is the state of every rollout the run touched.
	Rollouts []Rollout `json:"rollouts,omitempty"`
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
	// Control is what a control request (stop, resume, reset) changed.
	Control []Control `json:"control,omitempty"`
}

// Fanout says what a planner sent to the work queue.
type Fanout struct {
	Gateways int `json:"gateways"` // gateways sent, each in exactly one batch
	Batches  int `json:"batches"`
	Failed   int `json:"failed,omitempty"` // gateways whose batch could not be sent (each also has a deferred result)
}

// Rollout is where a staged rollout of one version to one hardware model
// stands, and the numbers behind its last decision.
type Rollout struct {
	ID          string      `json:"id"` // rollout#<versionType>#<model>#<targetVersion>
	VersionType VersionType `json:"versionType"`
	Model       string      `json:"model"`
	Target      string      `json:"targetVersion"`
	Wave        int         `json:"wave"` // 0 is the canary
	WaveLimit   int         `json:"waveLimit"`
	Population  int         `json:"population"` // gateways that started or would take this version
	LetIn       int         `json:"letIn"`      // gateways the waves have let in so far
	Started     int         `json:"started"`    // gateways with an upgrade to this version in the ledger (before the run)
	InFlight    int         `json:"inFlight"`
	Verified    int         `json:"verified"`
	Failed      int         `json:"failed"` // failed and unverified
	FailureRate float64     `json:"failureRate"`
	Breaker     string      `json:"breaker"` // "closed" or "open"
	Done        bool        `json:"done"`
	// Reason says why the rollout is where it is, with the numbers.
	Reason string `json:"reason,omitempty"`
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

// MarshalJSON writes an empty results array rather than null, so that
// `jq '.results[]'` works on a run that touched nothing.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Results == nil {
		r.Results = []Result{}
	}
	return json.Marshal(plain(r))
}
