package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

const functionARN = "acs:fc:cn-shanghai:1186202104331798:functions/sag-upgrade"

var (
	fixtureRun    = RunInfo{RunID: "20260302T180000Z-4f9c2a", Trigger: TriggerMNSTopic, CorrelationID: "cmdb-change-88213"}
	fixtureResult = upgrade.Result{SmartAGID: "sag-0ovhf732a9j", RegionID: "cn-shanghai", SerialNumber: "sagecw73h0qjqh",
		VersionType: upgrade.VersionDevice, FromVersion: "2.0.8", ToVersion: "2.3.1", Outcome: upgrade.OutcomeRequested,
		RequestID: "6C2F9E0A-3B1D-4E8A-9C57-2D4F8A1B6E30", MessageID: "2F5B3C082B923D4EAC694B76D9281A0C"}
	fixtureRejected = upgrade.Result{Outcome: upgrade.OutcomeRejected, Reason: upgrade.ReasonInvalidRequest,
		Error:     `gatewayIds[2]: "SAG-1" is not a gateway id (want "sag-" followed by lowercase letters and digits)`,
		Message:   `{"gatewayIds":["sag-0ovhf732a9j","sag-3kq8d2m1xw7","SAG-1"]}`,
		MessageID: "C6DB60D1574661357FA227277445AB02"}
	fixtureAt = time.Date(2026, 3, 2, 18, 0, 4, 318e6, time.UTC)
)

// The builders produce exactly the fixtures, and the fixtures round-trip.
func TestEventFixtures(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		fixture string
		event   CloudEvent
	}{
		{"outcome-event.json", OutcomeEvent(functionARN, fixtureRun, fixtureResult, fixtureAt.In(shanghai))},
		{"outcome-rejected-event.json", OutcomeEvent(functionARN,
			RunInfo{RunID: "20260302T180003Z-b71e05", Trigger: TriggerMNSQueue}, fixtureRejected, fixtureAt)},
		{"run-completed-event.json", RunCompletedEvent(functionARN, fixtureRun,
			upgrade.Counts{Scanned: 3, Requested: 1, Skipped: 1, Failed: 1}, Publishing{Published: 2, Kept: 1, Errors: []string{"x"}},
			time.Date(2026, 3, 2, 18, 0, 5, 126e6, time.UTC))},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			roundTrip[CloudEvent](t, tt.fixture)
			b, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEqual(t, readFixture(t, tt.fixture), b)
		})
	}
}

// A consumer gets the result and the run back out of the data.
func TestOutcomeEventData(t *testing.T) {
	ev := OutcomeEvent(functionARN, fixtureRun, fixtureResult, fixtureAt)
	if ev.Type != "sag.upgrade.requested" || ev.Subject != fixtureResult.SmartAGID || ev.SpecVersion != "1.0" ||
		ev.DataContentType != "application/json" || !ev.Time.Equal(fixtureAt) {
		t.Errorf("attributes %+v", ev)
	}
	var data OutcomeData
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	want := OutcomeData{Result: fixtureResult, RunID: fixtureRun.RunID, Trigger: fixtureRun.Trigger, CorrelationID: fixtureRun.CorrelationID}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("data %+v, want %+v", data, want)
	}
	done := RunCompletedEvent(functionARN, fixtureRun, upgrade.Counts{Scanned: 7, Verified: 7}, Publishing{Published: 7}, fixtureAt)
	var completed RunCompletedData
	if err := json.Unmarshal(done.Data, &completed); err != nil {
		t.Fatal(err)
	}
	if completed.Counts.Verified != 7 || completed.RunID != fixtureRun.RunID || done.Subject != "" || done.Type != RunCompletedType {
		t.Errorf("run.completed %+v with %+v", done, completed)
	}
}

// The same outcome published again gets the same id; any other outcome,
// gateway, version type or run gets another.
func TestEventIDs(t *testing.T) {
	id := func(run RunInfo, r upgrade.Result) string { return OutcomeEvent(functionARN, run, r, fixtureAt).ID }
	base := id(fixtureRun, fixtureResult)

	again := fixtureResult
	again.RequestID, again.Reason = "another request", "another reason"
	otherRun := fixtureRun
	otherRun.CorrelationID, otherRun.Trigger = "other", TriggerTimer
	if got := OutcomeEvent(functionARN, otherRun, again, fixtureAt.Add(time.Hour)).ID; got != base {
		t.Errorf("re-published outcome: id %s, want %s", got, base)
	}

	seen := map[string]string{base: "base"}
	differ := func(name, got string) {
		if prev, dup := seen[got]; dup {
			t.Errorf("%s has the id of %s", name, prev)
		}
		seen[got] = name
	}
	r := fixtureResult
	r.SmartAGID = "sag-3kq8d2m1xw7"
	differ("other gateway", id(fixtureRun, r))
	r = fixtureResult
	r.VersionType = upgrade.VersionDpi
	differ("other version type", id(fixtureRun, r))
	r = fixtureResult
	r.Outcome = upgrade.OutcomeFailed
	differ("other outcome", id(fixtureRun, r))
	run := fixtureRun
	run.RunID = "20260303T180000Z-000000"
	differ("other run", id(run, fixtureResult))
	differ("run completed", RunCompletedEvent(functionARN, fixtureRun, upgrade.Counts{}, Publishing{}, fixtureAt).ID)

	// Rejected messages: keyed by message id, or by the raw text without one.
	rej := fixtureRejected
	rejID := id(fixtureRun, rej)
	differ("rejected", rejID)
	rej.Error = "another wording"
	if got := id(fixtureRun, rej); got != rejID {
		t.Error("a rejected message's id depends on the error text")
	}
	rej.MessageID = "C6DB60D1574661357FA227277445AB03"
	differ("other rejected message", id(fixtureRun, rej))
	rej.MessageID = ""
	noID := id(fixtureRun, rej)
	differ("rejected without id", noID)
	if got := id(fixtureRun, rej); got != noID {
		t.Errorf("same raw message: id %s, want %s", got, noID)
	}
	rej.Message = `{"gatewayIds":["SAG-2"]}`
	differ("other raw message", id(fixtureRun, rej))
}
