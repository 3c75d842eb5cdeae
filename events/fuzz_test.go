package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// FuzzDecode checks what the handler relies on, for any payload: Decode does
// not panic, an invocation has a known trigger and at least one message, a
// message without Err holds a valid request within the limits that is
// exactly what its Raw text parses to, and a message with Err still carries
// its content, says why in a short error and makes a rejected event that
// fits one MNS message.
func FuzzDecode(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join(fixtureDir, "*"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	event := func(typ, body string) string {
		b, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "e1", "type": typ, "data": map[string]any{"messageId": "m1", "messageBody": body}})
		return string(b)
	}
	ids, _ := json.Marshal(Request{GatewayIDs: gatewayIDs(MaxGatewayIDs+1, "sag-%d")})
	for _, seed := range []string{
		`{"gatewayIds":null,"dryRun":null}`,
		`{"regions":["cn-shanghai",null],"kind":null}`,
		`{"timerTime":null,"triggerTime":"2026-03-02T18:00:00Z","triggerName":"t","payload":"{\"force\":null}"}`,
		event("oss:ObjectCreated:PutObject", ""),
		"[" + event(MNSQueueMessageType, `{"dryRun":true}`) + "," + event("mns:Topic:PublishMessage", "") + "]",
		`{"kind":"stop","gatewayIds":["sag-abc"],"dryRun":false}`,
		`{"kind":"reset","targetVersion":"2.3.1","regions":["cn-shanghai"]}`,
		`{"kind":"sweep","force":true,"parentRunId":"run-1","batchId":"run-1-0001"}`,
		string(ids),
		event(MNSQueueMessageType, string(ids)),
		`{"correlationId":"` + strings.Repeat("<", MaxMessageBytes) + `"}`,
		event(MNSQueueMessageType, strings.Repeat("\x01", MaxMessageBytes+1)),
		"[" + strings.Repeat(" ", MaxPayloadBytes) + "]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		inv := Decode(payload)
		if !slices.Contains([]Trigger{TriggerDirect, TriggerTimer, TriggerMNSTopic, TriggerMNSQueue}, inv.Trigger) {
			t.Fatalf("trigger %q", inv.Trigger)
		}
		if len(inv.Messages) == 0 {
			t.Fatal("no messages: the payload would vanish without a trace")
		}
		for i, m := range inv.Messages {
			if m.Err != nil {
				if len(trimJSONSpace(m.Raw)) == 0 {
					t.Fatalf("message %d: rejected (%v) with no content to report", i, m.Err)
				}
				if n := len(m.Err.Error()); n > 8<<10 {
					t.Fatalf("message %d: an error of %d bytes", i, n)
				}
				b, err := json.Marshal(OutcomeEvent("acs:fc:cn-shanghai:1:functions/f", RunInfo{RunID: "r", Trigger: inv.Trigger}, rejected(m), time.Time{}))
				if err != nil || len(b) > 64<<10 {
					t.Fatalf("message %d: rejected event of %d bytes, %v", i, len(b), err)
				}
				continue
			}
			if err := m.Request.Validate(); err != nil || !m.Request.Kind.Known() {
				t.Fatalf("message %d: accepted an invalid request %+v: %v", i, m.Request, err)
			}
			if len(m.Raw) > MaxMessageBytes || len(m.Request.GatewayIDs) > MaxGatewayIDs {
				t.Fatalf("message %d: accepted %d bytes naming %d gateways", i, len(m.Raw), len(m.Request.GatewayIDs))
			}
			// Every member sent applies to the kind and is not null, nor is
			// any element of a list.
			var members map[string]json.RawMessage
			_ = json.Unmarshal(m.Raw, &members) // empty Raw: no members
			for name, v := range members {
				var elems []json.RawMessage
				_ = json.Unmarshal(v, &elems)
				if !upgrade.Applies(m.Request.Kind, name) || isNull(v) || slices.ContainsFunc(elems, func(e json.RawMessage) bool { return isNull(e) }) {
					t.Fatalf("message %d: accepted %s: %s with kind %q", i, name, v, m.Request.Kind)
				}
			}
			again, err := ParseRequest(m.Raw)
			if err != nil || !reflect.DeepEqual(again, m.Request) {
				t.Fatalf("message %d: Raw %q parses to %+v, %v; Decode said %+v", i, m.Raw, again, err, m.Request)
			}
			// A valid request can be forwarded as JSON and means the same.
			b, err := json.Marshal(m.Request)
			if err != nil {
				t.Fatal(err)
			}
			if fwd, err := ParseRequest(b); err != nil || !reflect.DeepEqual(fwd, m.Request) {
				t.Fatalf("message %d: %s parses back to %+v, %v", i, b, fwd, err)
			}
		}
	})
}
