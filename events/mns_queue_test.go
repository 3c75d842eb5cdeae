package events

import (
	"encoding/json"
	"testing"
)

func TestMNSQueueEventMarshaling(t *testing.T) {
	ev := roundTrip[MNSQueueEvent](t, "eventbridge-single.json")
	if ev.Type != MNSQueueMessageType || ev.Data.MessageID != "C6DB60D1574661357FA227277445AB01" ||
		ev.Subject != "acs:mns:cn-shanghai:1186202104331798:queues/sag-upgrade-work" || ev.AliyunRegionID != "cn-shanghai" {
		t.Errorf("got %+v", ev)
	}
}

func TestMNSQueueBatchMarshaling(t *testing.T) {
	for _, name := range []string{"eventbridge-batch.json", "eventbridge-batch-base64.json", "eventbridge-batch-one-bad.json"} {
		t.Run(name, func(t *testing.T) {
			if evs := roundTrip[[]MNSQueueEvent](t, name); len(evs) < 2 {
				t.Errorf("%d events, want a batch", len(evs))
			}
		})
	}
}

// A batch of JSON strings: each string is a whole CloudEvent.
func TestMNSQueueStringBatchMarshaling(t *testing.T) {
	elems := roundTrip[[]string](t, "eventbridge-batch-strings.json")
	if len(elems) != 2 {
		t.Fatalf("%d elements", len(elems))
	}
	for i, s := range elems {
		var ev MNSQueueEvent
		if err := json.Unmarshal([]byte(s), &ev); err != nil {
			t.Fatalf("element %d: %v", i, err)
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		assertJSONEqual(t, []byte(s), out)
	}
}
