package handler

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
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

// A region's listing pages after the first are asked for together, up to
// listAhead at once, and handed over in order: every gateway is listed once.
// One after the other, a 100,000-gateway fleet took a minute to list.
func TestListingPagesAreAskedForTogether(t *testing.T) {
	gws := gateways("sag-p%03d", 12*PageSize, "2.3.1") // up to date: listing and version reads only
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	var mu sync.Mutex
	var inFlight, most int
	var pages []int
	sag.onList = func(region string, lf ListFilter, page int) {
		if len(lf.IDs) > 0 {
			return
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		pages = append(pages, page)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}
	hs := newHarness(t, sag, func(c *Config) { c.FanoutThreshold = len(gws) })
	report, err := hs.invoke(t, `{"versionTypes":["Device"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if most < 2 || most > listAhead {
		t.Errorf("%d listing pages asked for at once, want 2 to %d", most, listAhead)
	}
	slices.Sort(pages)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(pages, want) {
		t.Errorf("pages asked for %v, want %v", pages, want)
	}
	got := map[string]int{}
	for _, r := range report.Results {
		got[r.SmartAGID]++
		if r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonUpToDate {
			t.Fatalf("%s: %s/%s", r.SmartAGID, r.Outcome, r.Reason)
		}
	}
	for _, g := range gws {
		if got[g.ID] != 1 {
			t.Fatalf("%s: %d results", g.ID, got[g.ID])
		}
	}
}

// A page that fails ends the region's listing with its error, however many
// pages after it were asked for; a fleet that shrinks while it is paged ends
// at its first empty page, without an error.
func TestListingPagesStopAtAFailureOrTheEnd(t *testing.T) {
	t.Run("a page fails", func(t *testing.T) {
		sag := newFakeSAG(gateways("sag-p%03d", 6*PageSize, "2.3.1")...)
		sag.offered = catalog()
		sag.onList = func(region string, lf ListFilter, page int) { time.Sleep(10 * time.Millisecond) }
		sag.pageFails = func(region string, lf ListFilter, page int) error {
			if page == 3 {
				return &APIError{Code: "Forbidden.RAM", Status: 403}
			}
			return nil
		}
		hs := newHarness(t, sag, func(c *Config) { c.FanoutThreshold = 1000 })
		report, _ := hs.invoke(t, `{"versionTypes":["Device"]}`)
		if len(report.Results) != 1 || report.Results[0].Reason != upgrade.ReasonListFailed || report.Results[0].ErrorCode != "Forbidden.RAM" {
			t.Fatalf("results %+v", report.Results)
		}
	})
	t.Run("the fleet shrinks", func(t *testing.T) {
		gws := gateways("sag-p%03d", 6*PageSize, "2.3.1")
		sag := newFakeSAG(gws...)
		sag.offered = catalog()
		sag.onList = func(region string, lf ListFilter, page int) {
			if page == 1 {
				sag.mu.Lock()
				sag.gateways = sag.gateways[:2*PageSize+10] // after the first page has said 6 pages
				sag.mu.Unlock()
			}
		}
		hs := newHarness(t, sag, func(c *Config) { c.FanoutThreshold = 1000 })
		report, err := hs.invoke(t, `{"versionTypes":["Device"]}`)
		if err != nil {
			t.Fatal(err)
		}
		if len(report.Results) != 2*PageSize+10 {
			t.Fatalf("%d results, want %d", len(report.Results), 2*PageSize+10)
		}
	})
}

// A fleet that changes while it is paged can list a gateway twice: one that
// moves from the first page to the last (as an order by modification time
// would move a gateway that changed) is handed over once, whatever the
// length of its id.
func TestAGatewayListedTwiceIsHandedOverOnce(t *testing.T) {
	gws := gateways("sag-p%03d", 4*PageSize, "2.3.1")
	gws[0].ID = "sag-an-id-longer-than-any-the-service-gives" // kept apart from short ids
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	var move sync.Once
	sag.onList = func(region string, lf ListFilter, page int) {
		if page < 2 {
			return
		}
		move.Do(func() {
			sag.mu.Lock()
			defer sag.mu.Unlock()
			// Two new gateways at the front and two of the first page at the
			// end: the later pages hold what they held, and the two again.
			moved := slices.Clone(sag.gateways[:2])
			fresh := gateways("sag-new%d", 2, "2.3.1")
			sag.gateways = append(append(fresh, sag.gateways[2:]...), moved...)
		})
	}
	hs := newHarness(t, sag, func(c *Config) { c.FanoutThreshold = 1000 })
	report, err := hs.invoke(t, `{"versionTypes":["Device"]}`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range report.Results {
		got[r.SmartAGID]++
	}
	for _, g := range gws {
		if got[g.ID] != 1 {
			t.Errorf("%s: %d results, want 1", g.ID, got[g.ID])
		}
	}
	if len(report.Results) != len(gws) {
		t.Errorf("%d results, want %d", len(report.Results), len(gws))
	}
}

// The listing's set of ids tells every id apart: a short one from itself
// with a NUL after it, one that just fits from one a byte too long.
func TestIDSetTellsIDsApart(t *testing.T) {
	fits := strings.Repeat("a", len(shortID{}.b))
	ids := []string{"", "sag-a", "sag-a\x00", "sag-b", fits, fits + "a", fits + "b", fits + "a\x00"}
	var s idSet
	for _, id := range ids {
		if !s.add(id) {
			t.Errorf("%q: taken for one added before", id)
		}
	}
	for _, id := range ids {
		if s.add(id) {
			t.Errorf("%q: new again", id)
		}
	}
}

// BenchmarkIDSet reports the heap a region's listing keeps per gateway to
// tell repeats: ids like the service's (sag- and 18 characters), each
// decoded into a string of its own, as a listing page's are.
func BenchmarkIDSet(b *testing.B) {
	const n = 100_000
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "sag-%018x", i*7919)
	}
	var perID float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var s idSet
		for _, id := range ids {
			s.add(string(id))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perID = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(&s)
	}
	b.ReportMetric(perID, "heapB/id")
}
