package simulation

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// UpdateAction is the SAG call that starts an upgrade.
const UpdateAction = "UpdateSmartAccessGatewayVersion"

// TimerEvent is the nightly timer trigger's event at a time, as s.yaml
// configures the trigger; its trigger time makes each night a run of its own.
func TimerEvent(at time.Time) []byte {
	b, _ := json.Marshal(map[string]string{
		"triggerTime": at.UTC().Format(time.RFC3339), "triggerName": "nightly-sweep",
		"payload": `{"kind":"sweep","correlationId":"nightly"}`,
	})
	return b
}

// ReportOf decodes the report an invocation answered.
func ReportOf(res fcsim.Result) (events.Report, error) {
	var r events.Report
	if res.Failed {
		return r, errors.New("the invocation failed: " + string(res.Body))
	}
	if err := json.Unmarshal(res.Body, &r); err != nil {
		return r, errors.New("the response is not a report: " + err.Error() + "\n" + string(res.Body))
	}
	return r, nil
}

// Invocation is one invocation of a night and its report (nil when the
// invocation failed).
type Invocation struct {
	cloudsim.Delivery
	Report *events.Report
}

// Night is what a night did.
type Night struct {
	Invocations []Invocation
	Trigger     cloudsim.TriggerStats
	Wall        time.Duration // the first invocation's start to the last answer
}

// RunNight invokes kickoff (the timer event; nil for none) on the first
// runtime and drains the work queue through the queue trigger over every
// runtime deployed (tr.Runtimes, when set, instead). tr sets the trigger's
// Attempts, RetryDelay, Until and OnDispatch; onDelivery, when set, sees
// each invocation as it ends.
func (w *World) RunNight(ctx context.Context, kickoff []byte, tr cloudsim.Trigger, onDelivery func(Invocation)) (Night, error) {
	var n Night
	if tr.Runtimes == nil {
		tr.Runtimes = w.Runtimes()
	}
	tr.Cloud, tr.Kickoff = w.Cloud, kickoff
	tr.OnDelivery = func(d cloudsim.Delivery) {
		inv := Invocation{Delivery: d}
		if r, err := ReportOf(d.Result); d.Err == nil && err == nil {
			inv.Report = &r
		}
		n.Invocations = append(n.Invocations, inv)
		if onDelivery != nil {
			onDelivery(inv)
		}
	}
	began := time.Now()
	st, err := tr.Run(ctx)
	n.Trigger, n.Wall = st, time.Since(began)
	return n, err
}

// Reports returns the reports of the answered invocations.
func (n Night) Reports() []events.Report {
	var out []events.Report
	for _, inv := range n.Invocations {
		if inv.Report != nil {
			out = append(out, *inv.Report)
		}
	}
	return out
}

// Reached reports whether a SAG call reached the service: not refused by
// flow control, and not lost to a fault in front of it (a lost reply or a
// slow answer was served).
func Reached(c sagsim.Call) bool {
	return !strings.HasPrefix(c.Code, "Throttling") && (c.Fault == "" || c.Fault == sagsim.LostReply || c.Fault == sagsim.Slow)
}

// UpdatesReached counts the update calls for a gateway that reached the
// service.
func UpdatesReached(cloud *cloudsim.Cloud, id string) int {
	n := 0
	for _, c := range cloud.SAG.Calls() {
		if c.Action == UpdateAction && c.SmartAGID == id && Reached(c) {
			n++
		}
	}
	return n
}

// Calls sums up the SAG API calls so far.
type Calls struct {
	Total     int
	Throttled int            // answered Throttling*
	ByAction  map[string]int // every call, throttled ones included
	Faults    int            // calls with an injected fault
	// Answered by action: the calls the service did not refuse with
	// Throttling, which its per-action limit paces.
	Answered map[string]int
}

// Busiest is the action with the most answered calls (by name on a tie), the
// one a per-action limit binds first.
func (c Calls) Busiest() (action string, answered int) {
	for a, n := range c.Answered {
		if n > answered || n == answered && a < action {
			action, answered = a, n
		}
	}
	return action, answered
}

// CountCalls reads the SAG emulator's call log.
func CountCalls(cloud *cloudsim.Cloud) Calls {
	c := Calls{ByAction: map[string]int{}, Answered: map[string]int{}}
	for _, call := range cloud.SAG.Calls() {
		c.Total++
		c.ByAction[call.Action]++
		if strings.HasPrefix(call.Code, "Throttling") {
			c.Throttled++
		} else {
			c.Answered[call.Action]++
		}
		if call.Fault != "" {
			c.Faults++
		}
	}
	return c
}

// Published decodes every event published to the outcome topic so far, in
// order.
func Published(cloud *cloudsim.Cloud) ([]events.CloudEvent, error) {
	var out []events.CloudEvent
	for _, p := range cloud.MNS.Published(cloudsim.OutcomeTopic) {
		var ev events.CloudEvent
		if err := json.Unmarshal([]byte(p.Body), &ev); err != nil {
			return out, errors.New("a published message is not a CloudEvent: " + err.Error())
		}
		out = append(out, ev)
	}
	return out, nil
}
