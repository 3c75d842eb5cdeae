package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// The fixed attributes of the events this function publishes.
const (
	CloudEventsVersion = "1.0"
	ContentTypeJSON    = "application/json"
	OutcomeTypePrefix  = "sag.upgrade."              // + the outcome, e.g. sag.upgrade.requested
	RunCompletedType   = "sag.upgrade.run.completed" // one per run, after the outcomes
)

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode, the body
// of each message published to the outcome topic.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"` // the function, e.g. acs:fc:cn-shanghai:1234:functions/sag-upgrade
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"` // the SmartAGId of an outcome event
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// RunInfo identifies the run an event belongs to.
type RunInfo struct {
	RunID         string
	Trigger       Trigger
	CorrelationID string
}

// OutcomeData is the data of an outcome event: the report entry plus the run.
type OutcomeData struct {
	upgrade.Result
	RunID         string  `json:"runId"`
	Trigger       Trigger `json:"trigger"`
	CorrelationID string  `json:"correlationId"`
}

// RunCompletedData is the data of the run.completed event.
type RunCompletedData struct {
	RunID         string         `json:"runId"`
	Trigger       Trigger        `json:"trigger"`
	CorrelationID string         `json:"correlationId"`
	Counts        upgrade.Counts `json:"counts"`
	// Events says what became of the run's other events before this one:
	// published, kept for a later run, or failed. A consumer that sees
	// kept > 0 gets those events later, with their ids.
	Events Publishing `json:"events"`
}

// OutcomeEvent is the event for one result, of type sag.upgrade.<outcome>.
// Its id depends only on the run, the gateway, the version type and the
// outcome, so publishing the same outcome again (a retry after an ambiguous
// failure) gives the same id and consumers can drop the duplicate. A
// rejected message names no gateway: its id comes from the run and the MNS
// message id, or a hash of the raw message when it has no id.
func OutcomeEvent(source string, run RunInfo, r upgrade.Result, at time.Time) CloudEvent {
	id := eventID(run.RunID, r.SmartAGID, string(r.VersionType), string(r.Outcome))
	if r.Outcome == upgrade.OutcomeRejected {
		msg := r.MessageID
		if msg == "" {
			sum := sha256.Sum256([]byte(r.Message))
			msg = "sha256:" + hex.EncodeToString(sum[:])
		}
		id = eventID(run.RunID, string(r.Outcome), msg)
	}
	data := OutcomeData{Result: r, RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID}
	return newEvent(source, OutcomeTypePrefix+string(r.Outcome), r.SmartAGID, id, at, data)
}

// RunCompletedEvent is the last event of a run, with its counts and what
// became of its other events.
func RunCompletedEvent(source string, run RunInfo, c upgrade.Counts, p Publishing, at time.Time) CloudEvent {
	p.Errors = nil // in the report and the log; not for every subscriber
	data := RunCompletedData{RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID, Counts: c, Events: p}
	return newEvent(source, RunCompletedType, "", eventID(run.RunID, RunCompletedType), at, data)
}

// PlannedType is the event of a planner: how much it sent to the workers.
const PlannedType = "sag.upgrade.run.planned"

// PlannedData is the data of a sag.upgrade.run.planned event.
type PlannedData struct {
	RunID         string  `json:"runId"`
	Trigger       Trigger `json:"trigger"`
	CorrelationID string  `json:"correlationId"`
	Fanout
	Scanned int `json:"scanned"`
	Skipped int `json:"skipped"` // ineligible from the listing alone: reported by the planner
}

// PlannedEvent reports what a planner sent to the work queue.
func PlannedEvent(source string, run RunInfo, f Fanout, scanned, skipped int, at time.Time) CloudEvent {
	data := PlannedData{RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID, Fanout: f, Scanned: scanned, Skipped: skipped}
	return newEvent(source, PlannedType, "", eventID(run.RunID, PlannedType), at, data)
}

// RolloutData is the data of a sag.upgrade.rollout.* event.
type RolloutData struct {
	upgrade.Rollout
	Transition    string  `json:"transition"`
	RunID         string  `json:"runId"`
	Trigger       Trigger `json:"trigger"`
	CorrelationID string  `json:"correlationId"`
}

// Rollout transitions, the last part of the event type. Each fits an MNS
// message tag ("rollout." + transition, 16 characters at most).
const (
	RolloutStarted  = "started"  // the canary began
	RolloutWave     = "wave"     // a new wave began
	RolloutVerified = "verified" // a wave's upgrades were all verified
	RolloutBreaker  = "breaker"  // the breaker opened: the rollout stops
	RolloutReset    = "reset"    // an operator closed the breaker
	RolloutDone     = "done"     // every gateway of the model runs the version
	RolloutPaused   = "paused"   // an operator paused it: no update call for its gateways
	RolloutUnpaused = "unpaused" // an operator let it go on
	// Its next wave has soaked and waits for an operator's approval
	// (ROLLOUT_APPROVAL=manual).
	RolloutAwaiting = "awaiting"
	RolloutApproved = "approved" // an operator approved its next wave
)

// RolloutEvent reports a rollout's transition. Its id depends on the
// rollout, the transition and the wave, so a transition re-published (by a
// retried run) keeps its id.
func RolloutEvent(source string, run RunInfo, r upgrade.Rollout, transition string, at time.Time) CloudEvent {
	id := eventID(r.ID, transition, strconv.Itoa(r.Wave), run.RunID)
	data := RolloutData{Rollout: r, Transition: transition, RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID}
	return newEvent(source, OutcomeTypePrefix+"rollout."+transition, r.ID, id, at, data)
}

func newEvent(source, typ, subject, id string, at time.Time, data any) CloudEvent {
	body, _ := json.Marshal(data) // cannot fail: only strings, numbers and booleans
	return CloudEvent{
		SpecVersion:     CloudEventsVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            at.UTC(),
		DataContentType: ContentTypeJSON,
		Data:            body,
	}
}

// eventID hashes its parts; their JSON encoding keeps them apart, so
// ("a", "bc") and ("ab", "c") give different ids.
func eventID(parts ...string) string {
	key, _ := json.Marshal(parts) // cannot fail for strings
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:16])
}
