package handler

import (
	"errors"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// A listing that fails says why, as the README's outcomes table does: one
// the API kept throttling is deferred/throttled, one the run's deadline cut
// short deferred/deadline (a later run lists again), any other failed; and a
// gateway a batch named in that region has the same outcome, not list_failed.
func TestListingFailureOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		slow    bool // the listing outlasts the run's time to start calls
		outcome upgrade.Outcome
		reason  string
	}{
		{"throttled past its retries", &APIError{Code: "Throttling.User", Status: 400}, false, upgrade.OutcomeDeferred, upgrade.ReasonThrottled},
		{"cut short by the deadline", &APIError{Code: "ServiceUnavailable", Status: 503}, true, upgrade.OutcomeDeferred, upgrade.ReasonDeadline},
		{"refused", &APIError{Code: "Forbidden.RAM", Status: 403}, false, upgrade.OutcomeFailed, upgrade.ReasonListFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sag := newFakeSAG(gateway("sag-a", "2.0.8"))
			sag.offered = catalog()
			sag.fail = func(action, id string, n int) error {
				if action == "List" {
					if c.slow {
						time.Sleep(300 * time.Millisecond)
					}
					return c.err
				}
				return nil
			}
			hs := newHarness(t, sag, nil)
			if c.slow {
				hs.h.Config.DeadlineMargin = time.Minute - 200*time.Millisecond // calls stop starting 0.2 s in
			}
			report, _ := hs.invoke(t, `{"gatewayIds":["sag-a"]}`)
			if len(report.Results) != 2 {
				t.Fatalf("results %+v", report.Results)
			}
			for _, r := range report.Results {
				if r.Outcome != c.outcome || r.Reason != c.reason {
					t.Fatalf("%q: %s/%s, want %s/%s (%+v)", r.SmartAGID, r.Outcome, r.Reason, c.outcome, c.reason, r)
				}
			}
		})
	}
}

// A run that could do nothing because a service it needs was unreachable
// fails the invocation, after publishing its events, so FC's retries and its
// onFailure destination see it; a run with nothing to do, or a partial
// failure, stays a success with its counts.
func TestUnreachableServicesFailTheInvocation(t *testing.T) {
	a, b := gateway("sag-a", "2.0.8"), gateway("sag-b", "2.3.1")
	b.Region = "ap-southeast-1"
	down := func(regions ...string) func(action, id string, n int) error {
		return func(action, id string, n int) error {
			for _, r := range regions {
				if action == "List" && id == r {
					// Not retried, to keep the test short; a 503 that
					// outlasts its retries ends the same way.
					return &APIError{Code: "Forbidden.RAM", Status: 403}
				}
			}
			return nil
		}
	}
	sag := newFakeSAG(a, b)
	sag.offered = catalog()
	hs := newHarness(t, sag, func(c *Config) { c.Regions = []string{"cn-shanghai", "ap-southeast-1"} })
	hs.h.Config.APIQPS = 1000

	sag.fail = down("cn-shanghai", "ap-southeast-1")
	report, err := hs.invoke(t, `{}`)
	var unreachable *InfrastructureError
	if !errors.As(err, &unreachable) || report.Counts.Failed != 2 {
		t.Fatalf("every listing failed: %v, counts %+v", err, report.Counts)
	}
	if last := hs.pub.events[len(hs.pub.events)-1]; last.Type != events.RunCompletedType {
		t.Fatalf("the events were not all out first: the last is %s", last.Type)
	}

	sag.fail = down("ap-southeast-1") // one region listed: a partial failure
	if _, err := hs.invoke(t, `{}`); err != nil {
		t.Fatalf("a partial failure: %v", err)
	}
	sag.fail = nil
	hs.h.Config.KillSwitch = true // nothing to do
	if report, err := hs.invoke(t, `{}`); err != nil || report.Counts.Deferred != 2 {
		t.Fatalf("the kill switch on: %v %+v", err, report.Counts)
	}
	hs.h.Config.KillSwitch = false
	if _, err := hs.invoke(t, `{"gatewayIds":["sag-b"]}`); err != nil { // up to date
		t.Fatalf("all up to date: %v", err)
	}
}
