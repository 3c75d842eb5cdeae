package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestReportMarshaling(t *testing.T) {
	r := roundTrip[Report](t, "report.json")
	if r.Trigger != TriggerTimer || len(r.Results) != 4 || r.Continuation == nil || r.Publishing.Failed != 1 {
		t.Errorf("got %+v", r)
	}
	if want := time.Date(2026, 3, 2, 18, 0, 5, 126e6, time.UTC); !r.FinishedAt.Equal(want) {
		t.Errorf("finishedAt %v, want %v", r.FinishedAt, want)
	}
	// The counts agree with the results they sum up.
	c := upgrade.Counts{Scanned: r.Counts.Scanned}
	for _, res := range r.Results {
		c.Add(res.Outcome)
	}
	if c != r.Counts {
		t.Errorf("counts %+v, results add up to %+v", r.Counts, c)
	}
}

// A run that touched nothing leaves out the continuation it does not have
// (its empty array of results is the handler's:
// TestAReportWithoutResultsWritesAnEmptyArray).
func TestReportEmpty(t *testing.T) {
	b, err := json.Marshal(Report{RunID: "r", Trigger: TriggerDirect, Results: []upgrade.Result{}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `"results":[]`) || strings.Contains(s, "continuation") ||
		!strings.Contains(s, `"publishing":{"published":0,"failed":0,"kept":0}`) {
		t.Errorf("got %s", s)
	}
}
