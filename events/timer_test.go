package events

import "testing"

func TestTimerEventMarshaling(t *testing.T) {
	ev := roundTrip[TimerEvent](t, "timer.json")
	if ev.TriggerName != "nightly-sweep" || ev.TriggerTime != "2026-03-02T18:00:00Z" {
		t.Errorf("got %+v", ev)
	}
	if want := `{"regions":["cn-shanghai","ap-southeast-1"],"versionTypes":["Device","Dpi"]}`; ev.Payload != want {
		t.Errorf("payload %q, want %q", ev.Payload, want)
	}
	if ev := roundTrip[TimerEvent](t, "timer-empty-payload.json"); ev.Payload != "" {
		t.Errorf("payload %q, want empty", ev.Payload)
	}
}
