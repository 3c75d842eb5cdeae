package handler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestReadsRetryTransientErrors(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		if action == "Versions" && n < 2 {
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "ServiceUnavailable", Status: 503}
		}
		if action == "List" && n == 0 {
			return &APIError{Action: "DescribeSmartAccessGateways", NoAnswer: true}
		}
		return nil
	}
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Requested != 1 || sag.count("Versions", "sag-a") != 3 || sag.count("List", "cn-shanghai") != 2 {
		t.Fatalf("counts %+v, versions calls %d, list calls %d", report.Counts, sag.count("Versions", "sag-a"), sag.count("List", "cn-shanghai"))
	}
}

func TestPermanentReadErrorsAreNotRetried(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.0.8"))
	sag.offered = catalog()
	sag.fail = func(action, id string, n int) error {
		switch {
		case action == "Versions" && id == "sag-a":
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "Forbidden", Status: 403}
		case action == "Versions" && id == "sag-b":
			return &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "VersionNotExist", Status: 400}
		}
		return nil
	}
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, `{}`)
	got := byID(report)
	if r := got["sag-a/Device"]; r.Outcome != upgrade.OutcomeFailed || r.ErrorCode != "Forbidden" {
		t.Errorf("forbidden: %+v", r)
	}
	if r := got["sag-b/Device"]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonNoRelease || r.ErrorCode != "VersionNotExist" {
		t.Errorf("no versions: %+v", r)
	}
	if sag.count("Versions", "sag-a") != 1 || len(sag.updates) != 0 {
		t.Errorf("a permanent error was retried or an update made")
	}
}

// A batch's version reads start with the run, while its gateways are being
// listed, and the plan uses what they read: no gateway is read twice.
func TestABatchReadsVersionsWhileItIsListed(t *testing.T) {
	gws := gateways("sag-e%02d", 10, "2.0.8")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	duringListing := false
	sag.onList = func(region string, lf ListFilter, page int) {
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if sag.count("Versions", "sag-e00") > 0 {
				duringListing = true
				return
			}
		}
	}
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, batchOf(gws, 0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if !duringListing {
		t.Fatal("no version read started before the listing answered")
	}
	if report.Counts.Requested != 10 {
		t.Fatalf("counts %+v", report.Counts)
	}
	for _, g := range gws {
		if n := sag.count("Versions", g.ID); n != 1 {
			t.Errorf("%s read %d times", g.ID, n)
		}
	}
}

// No early read of a gateway the listing rules out starts once it has
// answered: they cost at most the reads started while it was listed.
func TestEarlyReadsSkipWhatTheListingRulesOut(t *testing.T) {
	gws := gateways("sag-f%02d", 20, "2.0.8")
	for i := range gws {
		gws[i].Status = "Offline"
	}
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	sag.onList = func(string, ListFilter, int) { time.Sleep(50 * time.Millisecond) }
	hs := newHarness(t, sag, func(c *Config) { c.APIQPS = 100 })
	report, err := hs.invoke(t, batchOf(gws, 0, 20))
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Skipped != 20 {
		t.Fatalf("counts %+v", report.Counts)
	}
	reads := 0
	for _, g := range gws {
		reads += sag.count("Versions", g.ID)
	}
	// The lane starts slow (12.5 calls a second): in 50 ms, one or two.
	if reads == 0 || reads > 3 {
		t.Fatalf("%d version reads for 20 gateways the listing rules out, want 1-3", reads)
	}
}

// Once the listing has answered, a batch's early reads go on, one after
// the other at the lane's pace, for the gateways the plan will read: those
// listed as eligible and, once the ledger is read, without a record of the
// type (which may settle the gateway with no read). Early reads that
// stopped with the listing left the lane idle until the plan's first reads
// of its own, a slot or two in every batch.
func TestEarlyReadsGoOnForWhatThePlanWillRead(t *testing.T) {
	gws := gateways("sag-g%02d", 12, "2.0.8")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	api := newCaller(newPace(50), time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	api.leads = true // the lane starts at the ceiling: a read every 20 ms
	reads := &sagReader{sag: sag, api: api}
	p := planner{reads: reads, now: func() time.Time { return testNow }}
	j := job{}
	wanted := &wantedReads{eligible: func(g Gateway, vt upgrade.VersionType) bool { return p.readsListed(j, g, vt) }}
	ids := make([]string, len(gws))
	for i, g := range gws {
		ids[i] = g.ID
	}
	reads.readEarly(context.Background(), "cn-shanghai", ids, []upgrade.VersionType{upgrade.VersionDevice}, wanted)
	for deadline := time.Now().Add(5 * time.Second); sag.count("Versions", "sag-g01") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no early read")
		}
	}
	// The listing answers: sag-g06 is offline, sag-g07 was not found.
	listed := slices.Clone(gws)
	listed[6].Status = "Offline"
	listed = slices.Delete(listed, 7, 8)
	wanted.listedAs(listed)
	// The ledger is read: sag-g09 has a record.
	wanted.recorded(map[upgrade.VersionType]map[string]Record{upgrade.VersionDevice: {"sag-g09": {Gateway: "sag-g09"}}})
	reads.wait()
	for i, g := range gws {
		want := 1
		if i >= 6 && i <= 9 && i != 8 {
			want = 0
		}
		if n := sag.count("Versions", g.ID); n != want {
			t.Errorf("%s read %d times early, want %d", g.ID, n, want)
		}
	}
}

// A gateway whose ledger record settles it (an upgrade still in progress)
// is not read, early or not, and every other gateway of the batch once.
func TestABatchDoesNotReadWhatItsRecordsSettle(t *testing.T) {
	gws := gateways("sag-h%02d", 12, "2.0.8")
	sag := upgradingSAG(gws...)
	sag.onList = func(string, ListFilter, int) { time.Sleep(30 * time.Millisecond) }
	lh := newLedgerHarness(t, sag)
	for _, g := range gws[6:] {
		lh.ledger.rows[key(g.ID, upgrade.VersionDevice)] = Record{Gateway: g.ID, Region: g.Region, VersionType: upgrade.VersionDevice,
			Rev: 2, State: StateRequested, Target: "2.3.1", From: "2.0.8", Serial: "sn-" + g.ID, ClaimID: "earlier-run",
			RequestedAt: testNow.Add(-time.Minute)}
	}
	report, err := lh.invoke(t, batchOf(gws, 0, 12))
	if err != nil {
		t.Fatal(err)
	}
	results := byID(report)
	for i, g := range gws {
		res, want := results[g.ID+"/"+string(upgrade.VersionDevice)], 1
		if i >= 6 {
			want = 0
			if res.Reason != upgrade.ReasonInProgress {
				t.Errorf("%s: %s/%s, want skipped/%s", g.ID, res.Outcome, res.Reason, upgrade.ReasonInProgress)
			}
		}
		if n := sag.count("Versions", g.ID); n != want {
			t.Errorf("%s read %d times, want %d", g.ID, n, want)
		}
	}
}
