package handler

import (
	"testing"

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
