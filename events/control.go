package events

import (
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// ControlTypePrefix starts the type of a control event, followed by the
// kind: sag.upgrade.control.stop. Each fits an MNS message tag
// ("control." + kind, 16 characters at most).
const ControlTypePrefix = OutcomeTypePrefix + "control."

// ControlData is the data of a sag.upgrade.control.* event.
type ControlData struct {
	upgrade.Control
	RunID         string  `json:"runId"`
	Trigger       Trigger `json:"trigger"`
	CorrelationID string  `json:"correlationId"`
}

// ControlEvent reports what a control request did to one subject. Its id
// depends on the run and the subject, so a retried run re-publishes it with
// the same id.
func ControlEvent(source string, run RunInfo, c upgrade.Control, at time.Time) CloudEvent {
	data := ControlData{Control: c, RunID: run.RunID, Trigger: run.Trigger, CorrelationID: run.CorrelationID}
	return newEvent(source, ControlTypePrefix+string(c.Kind), c.Subject, eventID(run.RunID, string(c.Kind), c.Subject), at, data)
}
