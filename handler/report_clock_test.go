package handler

import "testing"

// The report tells the domain's time, as the run's events and audit
// entries do: under the simulation, its clock rather than the machine's.
func TestReportIsTimedByTheClock(t *testing.T) {
	hs := newHarness(t, newFakeSAG(), nil)
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !report.StartedAt.Equal(testNow) || !report.FinishedAt.Equal(testNow) {
		t.Fatalf("the report runs from %v to %v; the clock says %v", report.StartedAt, report.FinishedAt, testNow)
	}
}
