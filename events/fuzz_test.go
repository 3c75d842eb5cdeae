package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// FuzzDecode checks what the handler relies on, for any payload: Decode does
// not panic, an invocation has a known trigger and at least one message, a
// message without Err holds a valid request that is exactly what its Raw
// text parses to, and a message with Err still carries its content.
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
				continue
			}
			if err := m.Request.Validate(); err != nil || !m.Request.Kind.Known() {
				t.Fatalf("message %d: accepted an invalid request %+v: %v", i, m.Request, err)
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
