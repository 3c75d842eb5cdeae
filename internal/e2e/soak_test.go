package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation/soak"
)

// The soak of scripts/soak.sh at a size CI affords: a fan-out night on three
// instances with 10% SAG faults of every kind, a process killed in the middle
// of its batch and the batch redelivered, then the verifications. Every
// gateway ends with exactly one final outcome, and none gets two update calls.
func TestSoakFaultsKillsAndRedeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes ~20 s")
	}
	res, err := soak.Run(t.Context(), soak.Config{Binary: binary, Gateways: 3000, Seed: 7, Runtimes: 3, Kills: 1, Progress: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Error(p)
	}
	// The scenario happened: a kill, its batch redelivered, faults injected,
	// upgrades made, and the night fanned out.
	if res.Crashes == 0 || res.Night.Trigger.Redeliveries == 0 || res.Settled == 0 {
		t.Errorf("%d crashes, %d redeliveries, %d gateways left in progress by the killed run: the kill did not hit a batch mid-way",
			res.Crashes, res.Night.Trigger.Redeliveries, res.Settled)
	}
	if res.Calls.Faults < res.Calls.Total/20 {
		t.Errorf("%d of %d SAG calls faulted, want about 10%%", res.Calls.Faults, res.Calls.Total)
	}
	requested := 0
	for k, n := range res.Outcomes {
		if strings.HasPrefix(k, string(upgrade.OutcomeRequested)+"/") {
			requested += n
		}
	}
	if requested < res.Gateways/3 || res.Applied < requested {
		t.Errorf("%d requested, %d applied of %d gateways", requested, res.Applied, res.Gateways)
	}
	planners := 0
	for _, inv := range res.Night.Invocations {
		if inv.Report != nil && inv.Report.Fanout != nil && inv.Report.Fanout.Batches > 10 {
			planners++
		}
	}
	if planners != 1 {
		t.Errorf("%d planners; the night did not fan out", planners)
	}
}

// A night too small to fan out leaves no batch to kill: the soak ends with
// the night and says so, rather than wait for a kill that cannot come.
func TestSoakWithNothingToKillEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a small night")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := soak.Run(ctx, soak.Config{Binary: binary, Gateways: 300, Seed: 7, Runtimes: 2, Kills: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the soak waited for its kill until the test's own time ran out")
	}
	if !slices.ContainsFunc(res.Problems, func(p string) bool { return strings.Contains(p, "no invocation was killed") }) {
		t.Errorf("problems %q: the missing kill is not reported", res.Problems)
	}
}
