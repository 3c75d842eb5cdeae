package events

import "time"

// Control is what one control request did to one thing it acts on (the kill
// switch, a rollout): its state before and after. A control request answers
// with these in the report, not with result entries, and publishes each as a
// sag.upgrade.control.<kind> event.
type Control struct {
	Kind    Kind   `json:"kind"`
	Subject string `json:"subject"` // "killSwitch", or a rollout id (rollout#Device#sag-1000#2.3.1)
	Changed bool   `json:"changed"` // false: it was already in the state asked for
	Before  State  `json:"before"`
	After   State  `json:"after"`
}

// State is the state of a control request's subject.
type State struct {
	// KillSwitch is set for the kill switch: on stops every update call.
	KillSwitch *bool `json:"killSwitch,omitempty"`
	// SetBy and SetAt say which run (and correlation id) last wrote it.
	SetBy string    `json:"setBy,omitempty"`
	SetAt time.Time `json:"setAt,omitzero"`
	// Rollout is set for a rollout.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// ControlTypePrefix starts the type of a control event, followed by the
// kind: sag.upgrade.control.stop. Each fits an MNS message tag
// ("control." + kind, 16 characters at most).
const ControlTypePrefix = OutcomeTypePrefix + "control."

// ControlData is the data of a sag.upgrade.control.* event.
type ControlData struct {
	Control
	RunID         string  `json:"runId"`
	Trigger       Trigger `json:"trigger"`
	CorrelationID string  `json:"correlationId"`
}

// ControlEvent reports what a control request did to one subject. Its id
// depends on the run and the subject, so a retried run re-publishes it with
// the same id.
func ControlEvent(source string, run RunInfo, c Control, at time.Time) CloudEvent {
	data := ControlData{Control: c, RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID}
	return newEvent(source, ControlTypePrefix+string(c.Kind), c.Subject, eventID(run.RunID, string(c.Kind), c.Subject), at, data)
}
