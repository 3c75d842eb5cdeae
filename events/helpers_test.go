package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fixtureDir holds the real-shaped events, at the repository root.
const fixtureDir = "../testdata/events"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertJSONEqual compares two JSON texts as values, not as bytes.
func assertJSONEqual(t testing.TB, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("JSON differs\nwant: %s\ngot:  %s", compactJSON(want), compactJSON(got))
	}
}

func compactJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// roundTrip decodes a fixture into T with unknown fields refused, encodes it
// again and checks that nothing was lost or changed (aws-lambda-go style).
func roundTrip[T any](t *testing.T, name string) T {
	t.Helper()
	raw := readFixture(t, name)
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: marshal: %v", name, err)
	}
	assertJSONEqual(t, raw, out)
	return v
}

// rejected is the result the function reports for a rejected message, as
// handler builds it from Fitted.
func rejected(m Message) upgrade.Result {
	id, raw, problem := m.Fitted()
	return upgrade.Result{Outcome: upgrade.OutcomeRejected, Reason: upgrade.ReasonInvalidRequest, Error: problem, Message: raw, MessageID: id}
}
