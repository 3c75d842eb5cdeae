package events

// TimerEvent is what an FC timer trigger sends:
//
//	{"triggerTime":"2026-03-02T18:00:00Z","triggerName":"nightly-sweep","payload":"{\"dryRun\":true}"}
//
// Payload is the trigger's payload setting verbatim, so a request arrives
// as a JSON string inside the event; an empty payload means {}.
type TimerEvent struct {
	// TriggerTime is kept as text: it is only logged, and an odd format
	// must not cost the run.
	TriggerTime string `json:"triggerTime"`
	TriggerName string `json:"triggerName"`
	Payload     string `json:"payload"`
}
