package handler

import (
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

// No early read starts once the listing has answered: gateways the listing
// rules out cost at most the reads started while it was listed.
func TestEarlyReadsStopWhenTheListingAnswers(t *testing.T) {
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
