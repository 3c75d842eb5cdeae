package events

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestMNSTopicEventMarshaling(t *testing.T) {
	ev := roundTrip[MNSTopicEvent](t, "mns-topic-json.json")
	if ev.TopicName != "sag-upgrade-requests" || ev.MessageID != "2F5B3C082B923D4EAC694B76D9281A0C" || ev.Attributes != nil {
		t.Errorf("got %+v", ev)
	}
	// PublishTime is epoch milliseconds, the field the SDK's own type cannot read.
	if got, want := ev.Published(), time.Date(2026, 3, 2, 18, 0, 0, 40e6, time.UTC); !got.Equal(want) {
		t.Errorf("Published() = %v, want %v", got, want)
	}
}

// Message attributes arrive as extra top-level keys; they are kept, and
// written back in place.
func TestMNSTopicEventAttributes(t *testing.T) {
	ev := roundTrip[MNSTopicEvent](t, "mns-topic-json-attributes.json")
	if got := slices.Sorted(maps.Keys(ev.Attributes)); !slices.Equal(got, []string{"priority", "source"}) {
		t.Errorf("attributes %q", got)
	}
	if string(ev.Attributes["source"]) != `"cmdb"` || ev.MessageTag != "verify" {
		t.Errorf("got %+v", ev)
	}
	// An attribute never overwrites a fixed field.
	ev.Attributes["TopicName"] = json.RawMessage(`"spoofed"`)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back MNSTopicEvent
	if err := json.Unmarshal(b, &back); err != nil || back.TopicName != "sag-upgrade-requests" {
		t.Errorf("TopicName %q, err %v", back.TopicName, err)
	}
}

func TestMNSTopicStreamEventMarshaling(t *testing.T) {
	ev := roundTrip[MNSTopicStreamEvent](t, "mns-topic-stream.json")
	if ev.Body != `{"regions":["ap-southeast-1"],"dryRun":true,"correlationId":"noc-1207"}` {
		t.Errorf("body %q", ev.Body)
	}
	if string(ev.Attrs["Extend"]) != `"{\"key\":\"value\"}"` {
		t.Errorf("attrs %q", ev.Attrs)
	}
}
