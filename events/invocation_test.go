package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

const (
	queueSubject = "acs:mns:cn-shanghai:1186202104331798:queues/sag-upgrade-work"
	gw1, gw2     = "sag-0ovhf732a9j", "sag-3kq8d2m1xw7"
)

var (
	batch1 = Request{Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai"}, GatewayIDs: []string{gw1, gw2, "sag-5mt0c7vhe2a"}, CorrelationID: "batch-0001"}
	batch2 = Request{Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai"}, GatewayIDs: []string{"sag-7rj2pw9sk4b", "sag-8hd3ne6zq1y"}, CorrelationID: "batch-0002"}
	batch3 = Request{Kind: upgrade.KindVerify, Regions: []string{"cn-hongkong"}, GatewayIDs: []string{"sag-9x2kd81nq0p"},
		VersionTypes: []upgrade.VersionType{upgrade.VersionDevice}, CorrelationID: "verify-0001"}
)

// Every envelope fixture decodes to its trigger, source, message ids and requests.
func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		trigger Trigger
		source  string
		ids     []string
		reqs    []Request
	}{
		{"direct.json", TriggerDirect, "", []string{""}, []Request{{
			Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai", "cn-hongkong"}, GatewayIDs: []string{gw1, gw2},
			VersionTypes: []upgrade.VersionType{upgrade.VersionDevice}, TargetVersion: "2.3.1", CorrelationID: "ticket-4711"}}},
		{"direct-dry-run.json", TriggerDirect, "", []string{""}, []Request{{
			Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai"}, VersionTypes: []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi},
			DryRun: true, CorrelationID: "ops-dry-run-2026-03-02"}}},
		{"timer.json", TriggerTimer, "nightly-sweep", []string{""}, []Request{{
			Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai", "ap-southeast-1"}, VersionTypes: []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi}}}},
		{"timer-empty-payload.json", TriggerTimer, "nightly-sweep", []string{""}, []Request{{Kind: upgrade.KindSweep}}},
		{"mns-topic-json.json", TriggerMNSTopic, "sag-upgrade-requests", []string{"2F5B3C082B923D4EAC694B76D9281A0C"}, []Request{{
			Kind: upgrade.KindSweep, GatewayIDs: []string{gw1}, VersionTypes: []upgrade.VersionType{upgrade.VersionDpi}, CorrelationID: "cmdb-change-88213"}}},
		{"mns-topic-json-attributes.json", TriggerMNSTopic, "sag-upgrade-requests", []string{"2F5B3C281B283D4EAC694B742528A3E1"}, []Request{{
			Kind: upgrade.KindVerify, Regions: []string{"cn-hongkong"}, GatewayIDs: []string{"sag-9x2kd81nq0p"}, CorrelationID: "cmdb-change-88214"}}},
		{"mns-topic-stream.json", TriggerMNSTopic, "", []string{""}, []Request{{
			Kind: upgrade.KindSweep, Regions: []string{"ap-southeast-1"}, DryRun: true, CorrelationID: "noc-1207"}}},
		// A STREAM body that is a request object cannot be told from a direct call.
		{"mns-topic-stream-raw.txt", TriggerDirect, "", []string{""}, []Request{{
			Kind: upgrade.KindVerify, GatewayIDs: []string{gw1, gw2}, CorrelationID: "rollout-2026-03-02"}}},
		{"eventbridge-single.json", TriggerMNSQueue, queueSubject, []string{"C6DB60D1574661357FA227277445AB01"}, []Request{batch1}},
		{"eventbridge-batch.json", TriggerMNSQueue, queueSubject,
			[]string{"C6DB60D1574661357FA227277445AB01", "C6DB60D1574661357FA227277445AB02", "C6DB60D1574661357FA227277445AB03"},
			[]Request{batch1, batch2, batch3}},
		{"eventbridge-batch-base64.json", TriggerMNSQueue, queueSubject,
			[]string{"C6DB60D1574661357FA227277445AB01", "C6DB60D1574661357FA227277445AB02"}, []Request{batch1, batch2}},
		{"eventbridge-batch-strings.json", TriggerMNSQueue, queueSubject,
			[]string{"C6DB60D1574661357FA227277445AB01", "C6DB60D1574661357FA227277445AB02"}, []Request{batch1, batch2}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			inv := Decode(readFixture(t, tt.fixture))
			if inv.Trigger != tt.trigger || inv.Source != tt.source {
				t.Errorf("trigger %q source %q, want %q %q", inv.Trigger, inv.Source, tt.trigger, tt.source)
			}
			if len(inv.Messages) != len(tt.reqs) {
				t.Fatalf("%d messages, want %d", len(inv.Messages), len(tt.reqs))
			}
			for i, m := range inv.Messages {
				if m.Err != nil {
					t.Errorf("message %d: %v", i, m.Err)
				}
				if m.ID != tt.ids[i] {
					t.Errorf("message %d: id %q, want %q", i, m.ID, tt.ids[i])
				}
				if !reflect.DeepEqual(m.Request, tt.reqs[i]) {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, m.Request, tt.reqs[i])
				}
			}
		})
	}
}

// Raw is the request text itself: the payload of a direct call, the string
// inside an envelope, the decoded text of a base64 body.
func TestDecodeRaw(t *testing.T) {
	direct := readFixture(t, "direct.json")
	if got := Decode(direct).Messages[0].Raw; string(got) != string(direct) {
		t.Errorf("direct: Raw %q", got)
	}
	var timer TimerEvent
	if err := json.Unmarshal(readFixture(t, "timer.json"), &timer); err != nil {
		t.Fatal(err)
	}
	if got := Decode(readFixture(t, "timer.json")).Messages[0].Raw; string(got) != timer.Payload {
		t.Errorf("timer: Raw %q, want %q", got, timer.Payload)
	}
	var plain, encoded []MNSQueueEvent
	if err := json.Unmarshal(readFixture(t, "eventbridge-batch.json"), &plain); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readFixture(t, "eventbridge-batch-base64.json"), &encoded); err != nil {
		t.Fatal(err)
	}
	if encoded[0].Data.MessageBody == plain[0].Data.MessageBody {
		t.Fatal("the base64 fixture is not encoded")
	}
	for i, m := range Decode(readFixture(t, "eventbridge-batch-base64.json")).Messages {
		if string(m.Raw) != plain[i].Data.MessageBody {
			t.Errorf("message %d: Raw %q, want the decoded body %q", i, m.Raw, plain[i].Data.MessageBody)
		}
	}
}

// Malformed requests become one message with an error that names the field.
func TestDecodeMalformedFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		trigger Trigger
		err     string
	}{
		{"malformed-unknown-field.json", TriggerDirect, `gatewayIDs: unknown field (did you mean "gatewayIds"?)`},
		{"malformed-wrong-type.json", TriggerDirect, "dryRun: want true or false, found a JSON string"},
		{"malformed-bad-gateway-id.json", TriggerDirect,
			`gatewayIds[2]: "SAG-1" is not a gateway id (want "sag-" followed by lowercase letters and digits)`},
		{"malformed-bad-region.json", TriggerDirect, `regions[1]: "cn-beijing" is not a SAG region`},
		{"malformed-not-json.txt", TriggerMNSTopic, `the request is not JSON (it starts with "hello topic")`},
		{"malformed-null.json", TriggerDirect, "gatewayIds: null is not allowed (leave the field out for the default)"},
		{"malformed-stop-with-gateways.json", TriggerDirect, `gatewayIds: does not apply to kind "stop" (it applies to sweep, verify, plan, history); dryRun: does not apply to kind "stop" (it applies to sweep)`},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			payload := readFixture(t, tt.fixture)
			inv := Decode(payload)
			if inv.Trigger != tt.trigger || len(inv.Messages) != 1 {
				t.Fatalf("trigger %q with %d messages", inv.Trigger, len(inv.Messages))
			}
			m := inv.Messages[0]
			if m.Err == nil || !strings.Contains(m.Err.Error(), tt.err) {
				t.Errorf("err %v, want %q", m.Err, tt.err)
			}
			if string(m.Raw) != string(payload) {
				t.Errorf("Raw %q, want the payload", m.Raw)
			}
		})
	}
}

// One bad event in a batch is one rejected message; the others go ahead.
func TestDecodeBatchWithOneBadElement(t *testing.T) {
	inv := Decode(readFixture(t, "eventbridge-batch-one-bad.json"))
	if inv.Trigger != TriggerMNSQueue || len(inv.Messages) != 3 {
		t.Fatalf("trigger %q with %d messages", inv.Trigger, len(inv.Messages))
	}
	good, bad := []Message{inv.Messages[0], inv.Messages[2]}, inv.Messages[1]
	for i, want := range []Request{batch1, batch3} {
		if good[i].Err != nil || !reflect.DeepEqual(good[i].Request, want) {
			t.Errorf("good message %d: %+v, %v", i, good[i].Request, good[i].Err)
		}
	}
	if bad.Err == nil || !strings.Contains(bad.Err.Error(), `batch event 1: gatewayIDs: unknown field`) {
		t.Errorf("err %v", bad.Err)
	}
	if _, ok := errors.AsType[*FieldError](bad.Err); !ok {
		t.Errorf("the FieldError is not reachable through %v", bad.Err)
	}
	if bad.ID != "C6DB60D1574661357FA227277445AB02" || !strings.Contains(string(bad.Raw), `"gatewayIDs":["sag-7rj2pw9sk4b"]`) {
		t.Errorf("id %q raw %q", bad.ID, bad.Raw)
	}
}

// Envelope variants and damage: each case lists the error expected for each
// message ("" when it must decode), and whether the request asks for a dry run.
func TestDecodeEnvelopeVariants(t *testing.T) {
	body := `{\"dryRun\":true}`
	b64 := base64.StdEncoding.EncodeToString([]byte(`{"dryRun":true}`))
	event := `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{"messageBody":"` + body + `"}}`
	// An empty body is {}, a default sweep: only an MNS queue message may say so.
	empty := func(typ string) string {
		return `{"specversion":"1.0","id":"e1","type":` + typ + `,"data":{"messageId":"m1","messageBody":""}}`
	}
	tests := []struct {
		name    string
		payload string
		trigger Trigger
		errs    []string
		dryRun  bool // of the decoded requests
	}{
		{"timer payload not a string", `{"triggerTime":"2026-03-02T18:00:00Z","triggerName":"t","payload":{"dryRun":true}}`,
			TriggerTimer, []string{"timer event: payload: want a string, found a JSON object"}, false},
		{"topic PublishTime as a string", `{"TopicOwner":"1","Message":"{}","PublishTime":"1772474400040"}`,
			TriggerMNSTopic, []string{"MNS topic event: PublishTime: want a number, found a JSON string"}, false},
		{"stream body not a string", `{"body":{"dryRun":true}}`, TriggerMNSTopic, []string{"MNS topic STREAM event: body: want a string"}, false},
		{"stream body without attrs", `{"body":"` + body + `"}`, TriggerMNSTopic, []string{""}, true},
		{"stream body base64", `{"body":"` + b64 + `"}`, TriggerMNSTopic, []string{""}, true},
		{"topic message base64", `{"TopicOwner":"1","TopicName":"t","Message":"` + b64 + `","PublishTime":1}`, TriggerMNSTopic, []string{""}, true},
		{"stream raw body base64", b64, TriggerMNSTopic, []string{""}, true},
		{"body with other keys is direct", `{"body":"x","dryRun":true}`, TriggerDirect, []string{"body: unknown field"}, false},
		{"CloudEvent from elsewhere", `{"specversion":"1.0","id":"1","source":"acs:oss","type":"oss:ObjectCreated:PutObject","data":{}}`,
			TriggerMNSQueue, []string{`CloudEvent of type "oss:ObjectCreated:PutObject" is not an MNS queue message (want type "mns:Queue:SendMessage")`}, false},
		{"unknown type with an empty body", empty(`"oss:ObjectCreated:PutObject"`), TriggerMNSQueue,
			[]string{`CloudEvent of type "oss:ObjectCreated:PutObject" is not an MNS queue message`}, false},
		{"no type with an empty body", `{"specversion":"1.0","data":{"messageBody":""}}`, TriggerMNSQueue,
			[]string{`CloudEvent of type "" is not an MNS queue message`}, false},
		{"type in another case", empty(`"mns:queue:sendmessage"`), TriggerMNSQueue,
			[]string{`CloudEvent of type "mns:queue:sendmessage" is not an MNS queue message`}, false},
		{"type not a string", empty(`1`), TriggerMNSQueue, []string{"CloudEvent: type: want a string, found a JSON number"}, false},
		{"type null", empty(`null`), TriggerMNSQueue, []string{`CloudEvent of type "" is not an MNS queue message`}, false},
		{"batch with an unknown type", `[` + event + `,` + empty(`"mns:Topic:PublishMessage"`) + `]`, TriggerMNSQueue,
			[]string{"", `batch event 1: CloudEvent of type "mns:Topic:PublishMessage" is not an MNS queue message`}, true},
		{"MNS queue message without a body", `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{}}`,
			TriggerMNSQueue, []string{"CloudEvent: an MNS queue message with no data.messageBody"}, false},
		{"CloudEvent data not an object", `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":"x"}`,
			TriggerMNSQueue, []string{"CloudEvent: data: want an object, found a JSON string"}, false},
		{"queue body neither JSON nor base64", `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{"messageBody":"TEST"}}`,
			TriggerMNSQueue, []string{`the request is not JSON (it starts with "TEST")`}, false},
		{"queue body base64 of text stays as it is", `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{"messageBody":"bWVlc2FnZSBmcm9tIE1OUyBjb25zb2xl"}}`,
			TriggerMNSQueue, []string{`it starts with "bWVlc2FnZSBmcm9tIE1OUyBj"…`}, false},
		{"empty queue body is {}", empty(`"mns:Queue:SendMessage"`), TriggerMNSQueue, []string{""}, false},
		{"empty batch", `[]`, TriggerMNSQueue, []string{"EventBridge batch: no events in it"}, false},
		{"batch with a number", `[1,` + event + `]`, TriggerMNSQueue,
			[]string{"batch event 0: want a CloudEvent object or a JSON string holding one", ""}, true},
		{"batch with a string that is no event", `[` + event + `, "hello"]`, TriggerMNSQueue,
			[]string{"", "batch event 1: want a CloudEvent object or a JSON string holding one"}, true},
		{"array that is not JSON", `[WARN] disk full`, TriggerMNSTopic, []string{"the request is not JSON"}, false},
		{"object that is not JSON", `{"dryRun":true`, TriggerMNSTopic, []string{"the request is not valid JSON: it ends too early"}, false},
		{"JSON string", `"{}"`, TriggerMNSTopic, []string{"must be a JSON object, got a string"}, false},
		{"empty", ``, TriggerDirect, []string{""}, false},
		{"whitespace", " \r\n", TriggerDirect, []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Decode([]byte(tt.payload))
			if inv.Trigger != tt.trigger || len(inv.Messages) != len(tt.errs) {
				t.Fatalf("trigger %q with %d messages, want %q with %d", inv.Trigger, len(inv.Messages), tt.trigger, len(tt.errs))
			}
			for i, m := range inv.Messages {
				switch want := tt.errs[i]; {
				case want == "" && m.Err != nil:
					t.Errorf("message %d: unexpected error %v", i, m.Err)
				case want != "" && (m.Err == nil || !strings.Contains(m.Err.Error(), want)):
					t.Errorf("message %d: err %v, want %q", i, m.Err, want)
				case want == "" && m.Request.DryRun != tt.dryRun:
					t.Errorf("message %d: request %+v, want dryRun %v", i, m.Request, tt.dryRun)
				}
			}
		})
	}
}

// A CloudEvent of another type is rejected whole, even with an empty
// messageBody (which an MNS queue message would read as a default sweep),
// and keeps its id and text for the rejected event.
func TestDecodeUnknownCloudEventType(t *testing.T) {
	payload := `{"specversion":"1.0","id":"e1","source":"acs:oss","subject":"` + queueSubject + `","type":"oss:ObjectCreated:PutObject",` +
		`"data":{"messageId":"m1","messageBody":""}}`
	inv := Decode([]byte(payload))
	if inv.Trigger != TriggerMNSQueue || inv.Source != queueSubject || len(inv.Messages) != 1 {
		t.Fatalf("trigger %q source %q with %d messages", inv.Trigger, inv.Source, len(inv.Messages))
	}
	m := inv.Messages[0]
	if m.Err == nil || m.ID != "m1" || string(m.Raw) != payload || !reflect.DeepEqual(m.Request, Request{}) {
		t.Errorf("got %+v", m)
	}
	// The type is quoted only in part: the error stays short.
	huge := `{"specversion":"1.0","type":"` + strings.Repeat("<", 60<<10) + `","data":{"messageBody":""}}`
	if err := Decode([]byte(huge)).Messages[0].Err; err == nil || len(err.Error()) > 512 {
		t.Errorf("%d bytes of error: %.300v", len(err.Error()), err)
	}
}

// envelopes wraps a request body in every envelope that carries one, with
// the message id each gives ("" where it has none).
func envelopes(t *testing.T, body string) map[string]struct{ payload, id string } {
	t.Helper()
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	event := func(body string) string {
		return js(map[string]any{"specversion": "1.0", "id": "e1", "source": "acs:mns", "type": MNSQueueMessageType,
			"subject": queueSubject, "data": map[string]any{"messageId": "m1", "messageBody": body}})
	}
	return map[string]struct{ payload, id string }{
		"direct":       {body, ""},
		"timer":        {js(map[string]any{"triggerTime": "2026-03-02T18:00:00Z", "triggerName": "t", "payload": body}), ""},
		"topic JSON":   {js(map[string]any{"TopicOwner": "1", "TopicName": "t", "MessageId": "m1", "Message": body, "PublishTime": 1}), "m1"},
		"topic STREAM": {js(map[string]any{"body": body, "attrs": map[string]string{"k": "v"}}), ""},
		"queue":        {event(body), "m1"},
		"queue base64": {event(base64.StdEncoding.EncodeToString([]byte(body))), "m1"},
		"queue batch":  {"[" + event(body) + "," + event(body) + "]", "m1"},
	}
}

// Every request an MNS message can carry is read in every envelope: the
// payload limit leaves room for the envelope, its escaping and base64. One
// byte more in the request and it is rejected, with its message id.
func TestDecodeSizeLimits(t *testing.T) {
	var ids strings.Builder
	for i := range MaxGatewayIDs {
		fmt.Fprintf(&ids, `%s"sag-%044d"`, map[bool]string{true: "", false: ","}[i == 0], i)
	}
	text := `{"gatewayIds":[` + ids.String() + `]}`
	full := text + strings.Repeat("\n", MaxMessageBytes-len(text)) // newlines: two bytes each in a JSON string
	if len(full) != MaxMessageBytes {
		t.Fatalf("body of %d bytes", len(full))
	}
	for name, env := range envelopes(t, full) {
		inv := Decode([]byte(env.payload))
		for i, m := range inv.Messages {
			if m.Err != nil || len(m.Request.GatewayIDs) != MaxGatewayIDs {
				t.Errorf("%s (%d bytes), message %d: %.200v", name, len(env.payload), i, m.Err)
			}
		}
	}
	for name, env := range envelopes(t, full+" ") {
		inv := Decode([]byte(env.payload))
		for i, m := range inv.Messages {
			want := "the request is 65537 bytes (at most 65536"
			if m.Err == nil || !strings.Contains(m.Err.Error(), want) || m.ID != env.id || len(m.Raw) != MaxMessageBytes+1 {
				t.Errorf("%s, message %d: id %q, %d bytes of raw, %.200v; want %q", name, i, m.ID, len(m.Raw), m.Err, want)
			}
		}
	}
}

// A payload larger than any envelope of one message is rejected whole,
// before it is read: a batch of small valid events too.
func TestDecodePayloadLimit(t *testing.T) {
	event := `{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{"messageBody":"{}"}}`
	more := (MaxPayloadBytes - len(event) - 2) / (len(event) + 1)
	under := "[" + event + strings.Repeat(","+event, more) + "]"
	batch := "[" + event + strings.Repeat(","+event, more+1) + "]"
	tests := []struct {
		payload string
		trigger Trigger
	}{
		{batch, TriggerMNSQueue},
		{"{" + strings.Repeat(" ", MaxPayloadBytes) + "}", TriggerDirect},
		{strings.Repeat("x", MaxPayloadBytes+1), TriggerMNSTopic},
	}
	for _, tt := range tests {
		inv := Decode([]byte(tt.payload))
		want := fmt.Sprintf("the payload is %d bytes (at most %d", len(tt.payload), MaxPayloadBytes)
		if inv.Trigger != tt.trigger || len(inv.Messages) != 1 {
			t.Fatalf("%.20s…: trigger %q with %d messages", tt.payload, inv.Trigger, len(inv.Messages))
		}
		if m := inv.Messages[0]; m.Err == nil || !strings.HasPrefix(m.Err.Error(), want) || string(m.Raw) != tt.payload {
			t.Errorf("%.20s…: %.200v, want %q", tt.payload, m.Err, want)
		}
	}
	if inv := Decode([]byte(under)); len(inv.Messages) != more+1 || inv.Messages[0].Err != nil {
		t.Errorf("a batch of %d bytes: %d messages, %v", len(under), len(inv.Messages), inv.Messages[0].Err)
	}
}

func TestMessageRejected(t *testing.T) {
	m := Decode(readFixture(t, "eventbridge-batch-one-bad.json")).Messages[1]
	r := rejected(m)
	if r.Outcome != upgrade.OutcomeRejected || r.Reason != upgrade.ReasonInvalidRequest || r.MessageID != m.ID || r.Message != string(m.Raw) || r.Error != m.Err.Error() {
		t.Errorf("got %+v", r)
	}
	if r := rejected(Message{Raw: []byte("{}")}); r.Error != "" || r.Message != "{}" {
		t.Errorf("no error: got %+v", r)
	}
}

// However large and however awkward the message, its rejected event fits in
// one MNS message: the raw text, the error and the message id are cut, even
// when every byte left takes six in JSON (\u003c for '<', \u0001, \ufffd for
// a byte that is not UTF-8).
func TestMessageRejectedFitsMNS(t *testing.T) {
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	run := RunInfo{RunID: strings.Repeat("f", 64), CorrelationID: strings.Repeat("<", MaxCorrelationIDLen)}
	for _, fill := range []string{"<", "\x01", "\xff", "工", `"`, `\`, "\u2028"} {
		escaped := len(js(fill)) - 2
		n := (MaxPayloadBytes - 1024) / escaped / 2 // two such strings fit in one payload
		huge := strings.Repeat(fill, n)
		event := func(id, typ, body string) string {
			return js(map[string]any{"specversion": "1.0", "id": id, "type": typ, "data": map[string]any{"messageBody": body}})
		}
		payloads := map[string]string{
			"over the payload limit":      `{"` + strings.Repeat(fill, MaxPayloadBytes) + `":1}`,
			"over the message limit":      `{"` + huge + `":1}`,
			"a huge field name":           `{"` + strings.Repeat(fill, MaxMessageBytes/len(fill)-8) + `":1}`,
			"a huge gateway id":           `{"gatewayIds":["` + strings.Repeat(fill, MaxMessageBytes/len(fill)-20) + `"]}`,
			"a huge body in a CloudEvent": event("e1", MNSQueueMessageType, huge),
			"a huge id and type":          event(huge, huge, ""),
			"a huge id and body":          event(huge, MNSQueueMessageType, strings.Repeat(fill, MaxMessageBytes/len(fill))),
			"a topic message":             js(map[string]any{"TopicOwner": "1", "MessageId": huge, "Message": huge, "PublishTime": 1}),
			"a batch":                     js([]string{huge, huge}),
		}
		for name, payload := range payloads {
			inv := Decode([]byte(payload))
			for i, m := range inv.Messages {
				if m.Err == nil {
					t.Errorf("%q, %s, message %d: accepted", fill, name, i)
					continue
				}
				r := rejected(m)
				run.Trigger = inv.Trigger
				b, err := json.Marshal(OutcomeEvent(functionARN, run, r, fixtureAt))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > 64<<10 {
					t.Errorf("%q, %s, message %d: event of %d bytes, more than an MNS message holds (%d of message, %d of error, %d of id)",
						fill, name, i, len(b), len(r.Message), len(r.Error), len(r.MessageID))
				}
				if fill != "\xff" && !utf8.ValidString(r.Message+r.Error+r.MessageID) {
					t.Errorf("%q, %s: cut inside a character", fill, name)
				}
			}
		}
	}
	long := rejected(Message{ID: strings.Repeat("i", 1<<20), Raw: []byte(strings.Repeat("r", 1<<20)), Err: errors.New(strings.Repeat("e", 1<<20))})
	for _, s := range []string{long.Message, long.Error, long.MessageID} {
		if !strings.HasSuffix(s, "(1048576 bytes in all)") {
			t.Errorf("not cut, or not said: %.40q…%q", s, s[max(0, len(s)-30):])
		}
	}
}
