package e2e_test

import (
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// sagctl status on the ledger of a 10,000-gateway fleet after a night that
// fanned out over four instances: the built sagctl, the FC SDK, InvokeFunction
// and the query function reading Tablestore, end to end (a process start,
// GetCallerIdentity and the invocation, each iteration).
//
//	go test ./internal/e2e -run '^$' -bench SagctlStatus -benchtime 20x
func BenchmarkSagctlStatus10k(b *testing.B) {
	w := newFleetOps(b, opsOptions{fleet: fleet.Generate(fleet.Options{Gateways: 10_000, Seed: 11}), instances: 4,
		env: []string{"API_QPS=1000", "ROLLOUT_CANARY=1000000", "ROLLOUT_MIN_SAMPLE=1000000", "MAX_UPGRADES_PER_RUN=1000000"}})
	n := w.night()
	requested := 0
	for _, inv := range n.Invocations {
		requested += inv.Report.Counts.Requested
	}
	st := w.report("status").Status
	if requested < 5000 || len(st.Rollouts) == 0 || st.Fleet == nil {
		b.Fatalf("the night requested %d upgrades; status %d rollouts, fleet %v", requested, len(st.Rollouts), st.Fleet != nil)
	}
	verified := 0
	for _, ro := range st.Rollouts {
		if ro.VersionType == upgrade.VersionDevice {
			verified += ro.Verified
		}
	}
	calls := len(w.Cloud.SAG.Calls())
	b.ResetTimer()
	for b.Loop() {
		if code, _, errs := w.sagctl("status"); code != 0 {
			b.Fatalf("exit %d\n%s", code, errs)
		}
	}
	b.StopTimer()
	if got := len(w.Cloud.SAG.Calls()); got != calls {
		b.Fatalf("status made %d SAG calls", got-calls)
	}
	b.ReportMetric(float64(requested), "upgrades-in-ledger")
	b.ReportMetric(float64(verified), "verified")
}
