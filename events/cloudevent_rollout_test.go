package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestRolloutEvent(t *testing.T) {
	r := upgrade.Rollout{ID: "rollout#Device#sag-1000#2.3.1", VersionType: upgrade.VersionDevice, Model: "sag-1000", Target: "2.3.1",
		Wave: 1, WaveLimit: 7, Population: 120, Started: 9, Failed: 2, FailureRate: 0.25, Breaker: "open",
		Reason: "2 of 8 finished upgrades failed (25% > 20%)"}
	run := RunInfo{RunID: "run-1", Trigger: TriggerMNSQueue, CorrelationID: "nightly"}
	at := time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC)
	ev := RolloutEvent("acs:fc:cn-shanghai:1:functions/f", run, r, RolloutBreaker, at)
	if ev.Type != "sag.upgrade.rollout.breaker" || ev.Subject != r.ID || ev.SpecVersion != "1.0" {
		t.Fatalf("event %+v", ev)
	}
	var data RolloutData
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Transition != RolloutBreaker || data.Failed != 2 || data.Reason != r.Reason || data.RunID != "run-1" || data.CorrelationID != "nightly" {
		t.Fatalf("data %+v", data)
	}
	if again := RolloutEvent("acs:fc:cn-shanghai:1:functions/f", run, r, RolloutBreaker, at.Add(time.Hour)); again.ID != ev.ID {
		t.Fatal("the same transition re-published got another id")
	}
	r.Wave = 2
	if other := RolloutEvent("acs:fc:cn-shanghai:1:functions/f", run, r, RolloutBreaker, at); other.ID == ev.ID {
		t.Fatal("another wave's transition got the same id")
	}
	for _, tr := range []string{RolloutStarted, RolloutWave, RolloutVerified, RolloutBreaker, RolloutReset, RolloutDone, RolloutPaused, RolloutUnpaused, RolloutAwaiting, RolloutApproved} {
		if len("rollout."+tr) > 16 {
			t.Errorf("rollout.%s does not fit an MNS message tag", tr)
		}
	}
}
