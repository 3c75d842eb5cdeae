package handler

import (
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestVerify(t *testing.T) {
	done, pending, rebooting := gateway("sag-done", "2.3.1"), gateway("sag-pending", "2.0.8"), gateway("sag-boot", "2.0.8")
	rebooting.Status = "Offline"
	sag := newFakeSAG(done, pending, rebooting)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"kind":"verify","gatewayIds":["sag-done","sag-pending","sag-boot","sag-gone"],"targetVersion":"2.3.1"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	want := map[string][2]string{
		"sag-done/Device":    {"verified", ""},
		"sag-pending/Device": {"unverified", upgrade.ReasonVersionDiff},
		"sag-boot/Device":    {"unverified", upgrade.ReasonOffline},
		"sag-gone/Device":    {"unverified", upgrade.ReasonNotFound},
	}
	for k, w := range want {
		if string(got[k].Outcome) != w[0] || got[k].Reason != w[1] {
			t.Errorf("%s: %s/%s, want %s/%s", k, got[k].Outcome, got[k].Reason, w[0], w[1])
		}
	}
	if len(sag.updates) != 0 || report.Counts.Verified != 1 || report.Counts.Unverified != 3 {
		t.Fatalf("verify made updates %v or miscounted %+v", sag.updates, report.Counts)
	}
	// Without a targetVersion the target is the newest release the policy allows.
	report, _ = hs.invoke(t, `{"kind":"verify","gatewayIds":["sag-done"]}`)
	if r := report.Results[0]; r.Outcome != upgrade.OutcomeVerified || r.ToVersion != "2.3.1" {
		t.Fatalf("verify against the policy's newest: %+v", r)
	}
}
