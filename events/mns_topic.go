package events

import (
	"encoding/json"
	"time"
)

// MNSTopicEvent is what an MNS topic subscription sends in JSON format
// (notifyContentFormat JSON):
//
//	{"TopicOwner":"1234567890123456","TopicName":"sag-upgrade-requests","Subscriber":"1234567890123456",
//	 "SubscriptionName":"fc-sag-upgrade","MessageId":"2F5B3C082B923D4EAC694B76D9281A0C",
//	 "MessageMD5":"BA4BA9B48AC81F0F9C66F6C909C35F21","Message":"{\"dryRun\":true}","PublishTime":1772474400040}
//
// Message holds the request. The message's attributes, if any, appear as
// extra keys at the top level. The SDK's own type cannot read these events:
// PublishTime is epoch milliseconds, not a time string.
type MNSTopicEvent struct {
	TopicOwner       string `json:"TopicOwner"`
	TopicName        string `json:"TopicName"`
	Subscriber       string `json:"Subscriber"`
	SubscriptionName string `json:"SubscriptionName"`
	MessageID        string `json:"MessageId"`
	MessageMD5       string `json:"MessageMD5"`
	MessageTag       string `json:"MessageTag,omitempty"`
	Message          string `json:"Message"`
	PublishTime      int64  `json:"PublishTime"` // epoch milliseconds

	// Attributes are the top-level keys that are none of the above.
	Attributes map[string]json.RawMessage `json:"-"`
}

// topicKeys are the JSON names of the fixed fields of MNSTopicEvent.
var topicKeys = []string{"TopicOwner", "TopicName", "Subscriber", "SubscriptionName", "MessageId", "MessageMD5", "MessageTag", "Message", "PublishTime"}

// Published returns PublishTime as a time.
func (e MNSTopicEvent) Published() time.Time { return time.UnixMilli(e.PublishTime) }

// topicFields is MNSTopicEvent without its JSON methods.
type topicFields MNSTopicEvent

// UnmarshalJSON reads the fixed fields and keeps every other key as an attribute.
func (e *MNSTopicEvent) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*topicFields)(e)); err != nil {
		return err
	}
	for _, k := range topicKeys {
		delete(all, k)
	}
	e.Attributes = nil
	if len(all) > 0 {
		e.Attributes = all
	}
	return nil
}

// MarshalJSON writes the attributes back at the top level.
func (e MNSTopicEvent) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(topicFields(e))
	if err != nil || len(e.Attributes) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range e.Attributes {
		if _, fixed := all[k]; !fixed {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// MNSTopicStreamEvent is what an MNS topic subscription in STREAM format
// (the default) sends for a message with attributes:
//
//	{"body":"{\"dryRun\":true}","attrs":{"Extend":"{\"key\":\"value\"}"}}
//
// Without attributes STREAM sends the bare body, which Decode reads directly.
type MNSTopicStreamEvent struct {
	Body string `json:"body"`
	// Attrs are kept as raw JSON: they are not ours to interpret, and an
	// unexpected value type must not cost us the message.
	Attrs map[string]json.RawMessage `json:"attrs,omitempty"`
}
