package upgrade

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
	// Revision is the subject's ledger revision after the request: each
	// change takes the next one, so it orders the changes of a subject.
	Revision int64 `json:"revision,omitempty"`
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
