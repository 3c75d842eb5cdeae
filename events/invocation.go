package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Trigger names how an invocation reached the function.
type Trigger string

const (
	TriggerDirect   Trigger = "direct"    // s invoke, or any caller that sends the request itself
	TriggerTimer    Trigger = "timer"     // FC timer trigger
	TriggerMNSTopic Trigger = "mns-topic" // MNS topic subscription, JSON or STREAM format
	TriggerMNSQueue Trigger = "mns-queue" // MNS queue through an EventBridge event stream
)

// Message is one request carried by an invocation.
type Message struct {
	// ID is the MNS MessageId (topic) or data.messageId (queue); "" for
	// direct and timer invocations.
	ID string
	// Raw is the request text as it arrived, after envelope and base64
	// unwrapping, so a rejected message can be reported with its content.
	// When the envelope itself is unreadable, Raw is the envelope's text.
	Raw []byte
	// Request is valid when Err is nil.
	Request Request
	// Err says why the message cannot be processed.
	Err error
}

// Invocation is what one FC invocation asks for.
type Invocation struct {
	Trigger Trigger
	// Source is the timer name, the topic name or the queue (the CloudEvent
	// subject, e.g. "acs:mns:cn-shanghai:1234:queues/sag-upgrade-work").
	Source string
	// Messages holds at least one message.
	Messages []Message
}

// Decode recognises the envelope around payload and extracts its requests.
// It never fails: a payload it cannot read becomes a Message with Err set.
//
// The payload carries nothing that names the trigger, so Decode goes by
// shape, in this order:
//
//   - empty or whitespace: direct, {} (s invoke without -e);
//   - a JSON array: an EventBridge batch from an MNS queue (event-streaming
//     mode); each element is a CloudEvent object or a JSON string holding
//     one, and becomes its own Message, so one bad element spoils nothing else;
//   - a JSON object with triggerTime and triggerName: timer; the payload
//     string holds the request;
//   - a JSON object with TopicOwner and Message: MNS topic, JSON format;
//     other top-level keys are message attributes;
//   - a JSON object whose only keys are body and attrs, body present: MNS
//     topic, STREAM format with attributes;
//   - a JSON object with specversion: one EventBridge CloudEvent
//     (event-driven mode), which must be of type mns:Queue:SendMessage and
//     carry data.messageBody;
//   - any other JSON object: the direct request itself;
//   - anything else (text that is not JSON, or a JSON string, number, boolean
//     or null): the raw body of an MNS topic message in STREAM format, which
//     must then parse as a request. A STREAM body that is a request object is
//     byte for byte a direct invocation and is reported as direct.
//
// MNS message bodies (topic and queue) that are not a JSON object but are
// standard base64 of one are decoded first: the Java and Python SDKs encode
// by default, and a queue trigger with IsBase64Decode off passes base64 on.
//
// A payload over MaxPayloadBytes is rejected unread, as one message; so is
// each request text over MaxMessageBytes (see ParseRequest).
func Decode(payload []byte) Invocation {
	text := trimJSONSpace(payload)
	if len(text) == 0 {
		return direct(payload)
	}
	if len(payload) > MaxPayloadBytes {
		return oversized(payload, text[0])
	}
	switch {
	case text[0] == '[' && json.Valid(text):
		return decodeBatch(text)
	case text[0] == '{' && json.Valid(text):
		return decodeObject(payload, text)
	}
	return Invocation{Trigger: TriggerMNSTopic, Messages: []Message{mnsBody("", payload)}}
}

// MaxPayloadBytes is the largest payload Decode reads: room for a request
// of MaxMessageBytes in any envelope, where escaping can double it (a quote
// or a newline takes two bytes in a JSON string) and base64 adds a third.
const MaxPayloadBytes = 4 * MaxMessageBytes

// oversized rejects a payload too large to be one message, without reading
// it. Its trigger goes by the first character alone: only EventBridge sends
// arrays, and an object is taken for direct as an unrecognised one would be.
func oversized(payload []byte, first byte) Invocation {
	inv := Invocation{Trigger: TriggerMNSTopic}
	switch first {
	case '[':
		inv.Trigger = TriggerMNSQueue
	case '{':
		inv.Trigger = TriggerDirect
	}
	err := fmt.Errorf("the payload is %d bytes (at most %d: one MNS message of %d bytes in its envelope)", len(payload), MaxPayloadBytes, MaxMessageBytes)
	inv.Messages = []Message{{Raw: payload, Err: err}}
	return inv
}

func direct(payload []byte) Invocation {
	return Invocation{Trigger: TriggerDirect, Messages: []Message{request("", payload)}}
}

// decodeObject sorts a valid JSON object by its keys (see Decode).
func decodeObject(payload, text []byte) Invocation {
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(text, &keys) // cannot fail: text is a valid object
	has := func(k string) bool { _, ok := keys[k]; return ok }
	switch {
	case has("triggerTime") && has("triggerName"):
		return decodeTimer(text)
	case has("TopicOwner") && has("Message"):
		return decodeTopicJSON(text)
	case has("body") && (len(keys) == 1 || len(keys) == 2 && has("attrs")):
		return decodeTopicStream(text)
	case has("specversion"):
		msg, source := queueMessage(text)
		return Invocation{Trigger: TriggerMNSQueue, Source: source, Messages: []Message{msg}}
	}
	return direct(payload)
}

func decodeTimer(text []byte) Invocation {
	inv := Invocation{Trigger: TriggerTimer}
	var ev TimerEvent
	if err := json.Unmarshal(text, &ev); err != nil {
		inv.Messages = []Message{{Raw: text, Err: envelopeError("timer event", err)}}
		return inv
	}
	inv.Source = ev.TriggerName
	inv.Messages = []Message{request("", []byte(ev.Payload))}
	return inv
}

func decodeTopicJSON(text []byte) Invocation {
	inv := Invocation{Trigger: TriggerMNSTopic}
	var ev MNSTopicEvent
	if err := json.Unmarshal(text, &ev); err != nil {
		inv.Messages = []Message{{Raw: text, Err: envelopeError("MNS topic event", err)}}
		return inv
	}
	inv.Source = ev.TopicName
	inv.Messages = []Message{mnsBody(ev.MessageID, []byte(ev.Message))}
	return inv
}

func decodeTopicStream(text []byte) Invocation {
	inv := Invocation{Trigger: TriggerMNSTopic}
	var ev MNSTopicStreamEvent
	if err := json.Unmarshal(text, &ev); err != nil {
		inv.Messages = []Message{{Raw: text, Err: envelopeError("MNS topic STREAM event", err)}}
		return inv
	}
	inv.Messages = []Message{mnsBody("", []byte(ev.Body))}
	return inv
}

// decodeBatch gives one Message per element. The Source is that of the
// first element that names one: a stream reads a single queue.
func decodeBatch(text []byte) Invocation {
	inv := Invocation{Trigger: TriggerMNSQueue}
	var elems []json.RawMessage
	_ = json.Unmarshal(text, &elems) // cannot fail: text is a valid array
	if len(elems) == 0 {
		// EventBridge sends no empty batches; say so rather than do nothing.
		inv.Messages = []Message{{Raw: text, Err: errors.New("EventBridge batch: no events in it")}}
		return inv
	}
	for i, elem := range elems {
		msg, source := batchElement(elem)
		if msg.Err != nil {
			msg.Err = fmt.Errorf("batch event %d: %w", i, msg.Err)
		}
		if inv.Source == "" {
			inv.Source = source
		}
		inv.Messages = append(inv.Messages, msg)
	}
	return inv
}

// batchElement reads a CloudEvent object, or a JSON string holding one (as
// EventBridge streams deliver Kafka events).
func batchElement(elem json.RawMessage) (Message, string) {
	event := []byte(elem)
	if len(elem) > 0 && elem[0] == '"' {
		var s string
		if json.Unmarshal(elem, &s) == nil {
			event = []byte(s)
		}
	}
	if !isJSONObject(event) {
		return Message{Raw: elem, Err: errors.New("want a CloudEvent object or a JSON string holding one")}, ""
	}
	return queueMessage(event)
}

// queueMessage reads one EventBridge CloudEvent from an MNS queue. The
// message id is data.messageId (the key to deduplicate redeliveries), or the
// event id when that is missing.
func queueMessage(text []byte) (Message, string) {
	var ev MNSQueueEvent
	if err := json.Unmarshal(text, &ev); err != nil {
		return Message{Raw: text, Err: envelopeError("CloudEvent", err)}, ""
	}
	source := ev.Subject
	if source == "" {
		source = ev.Source
	}
	id := ev.Data.MessageID
	if id == "" {
		id = ev.ID
	}
	// Only an MNS queue message carries a request. Another event read as an
	// empty body would be a default sweep of the whole fleet.
	if ev.Type != MNSQueueMessageType {
		return Message{ID: id, Raw: text, Err: fmt.Errorf("CloudEvent of type %s is not an MNS queue message (want type %q)", quoteShort(ev.Type), MNSQueueMessageType)}, source
	}
	var probe struct {
		Data struct {
			MessageBody *string `json:"messageBody"`
		} `json:"data"`
	}
	if json.Unmarshal(text, &probe) != nil || probe.Data.MessageBody == nil {
		return Message{ID: id, Raw: text, Err: errors.New("CloudEvent: an MNS queue message with no data.messageBody")}, source
	}
	return mnsBody(id, []byte(ev.Data.MessageBody)), source
}

// mnsBody parses an MNS message body, decoding it first when it is base64
// of a JSON object rather than a JSON object itself.
func mnsBody(id string, body []byte) Message {
	if t := trimJSONSpace(body); len(t) > 0 && !isJSONObject(t) {
		if decoded, err := base64.StdEncoding.DecodeString(string(t)); err == nil && isJSONObject(decoded) {
			body = decoded
		}
	}
	return request(id, body)
}

func request(id string, raw []byte) Message {
	req, err := ParseRequest(raw)
	return Message{ID: id, Raw: raw, Request: req, Err: err}
}

// envelopeError names the envelope and, for a type error, the field.
func envelopeError(envelope string, err error) error {
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("%s: %s: want %s, found a JSON %s", envelope, ute.Field, jsonTypeOf(ute.Type), ute.Value)
	}
	return fmt.Errorf("%s: %w", envelope, err)
}

// isJSONObject reports whether text, after whitespace, starts an object.
func isJSONObject(text []byte) bool {
	t := trimJSONSpace(text)
	return len(t) > 0 && t[0] == '{'
}

// jsonTypeOf names the JSON value that decodes into a Go value of type t.
func jsonTypeOf(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a number"
}

// Limits on what a rejection carries, so that its outcome event fits in one
// MNS message (64 KiB) even when every byte needs escaping in JSON (up to
// six bytes each): 6 × 9.1 KiB and the rest of the event stay under 57 KiB.
const (
	MaxRejectedMessage   = 8 << 10 // bytes of the raw message kept
	MaxRejectedError     = 1 << 10 // bytes of the error text kept
	MaxRejectedMessageID = 128     // bytes of the message id kept (MNS ids have 32)
)

// Fitted returns what the report of a rejected m may carry, each part cut
// to the limits above so its event fits one MNS message: the message id, the
// raw text and the error.
func (m Message) Fitted() (id, raw, problem string) {
	if m.Err != nil {
		problem = m.Err.Error()
	}
	// Any envelope may send any id.
	return truncate(m.ID, MaxRejectedMessageID), truncate(string(m.Raw), MaxRejectedMessage), truncate(problem, MaxRejectedError)
}

// truncate cuts s to at most max bytes on a character boundary and says how
// long it was.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes in all)", cut(s, max), len(s))
}
