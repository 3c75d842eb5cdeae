//go:build !fc

package main

// Staged rollouts over simulated nights, in-process on the emulators.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

const sag1000 = "rollout#Device#sag-1000#" + fleet.NewestDevice

func rolloutOf(r events.Report, id string) (upgrade.Rollout, bool) {
	for _, ro := range r.Rollouts {
		if ro.ID == id {
			return ro, true
		}
	}
	return upgrade.Rollout{}, false
}

// rolloutEvents are the sag.upgrade.rollout.* events published for a
// rollout, run by run in the order the runs published (the simulation runs
// one invocation at a time). A run publishes its events concurrently, so
// within a run they are put in the order its reviews make them.
func rolloutEvents(t *testing.T, s *simulation.Local, id string) []events.RolloutData {
	t.Helper()
	rank := map[string]int{events.RolloutStarted: 0, events.RolloutReset: 1, events.RolloutWave: 2,
		events.RolloutVerified: 3, events.RolloutBreaker: 4, events.RolloutDone: 5}
	runAt := map[string]int{}
	var out []events.RolloutData
	published, err := simulation.Published(s.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range published {
		var d events.RolloutData
		if !strings.HasPrefix(ev.Type, "sag.upgrade.rollout.") || json.Unmarshal(ev.Data, &d) != nil || d.ID != id {
			continue
		}
		if ev.Type != "sag.upgrade.rollout."+d.Transition {
			t.Fatalf("event type %s carries transition %s", ev.Type, d.Transition)
		}
		if _, ok := runAt[d.RunID]; !ok {
			runAt[d.RunID] = len(runAt)
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b events.RolloutData) int {
		return cmp.Or(runAt[a.RunID]-runAt[b.RunID], rank[a.Transition]-rank[b.Transition])
	})
	return out
}

func TestGoodReleaseRollsOutWaveByWave(t *testing.T) {
	t.Setenv("LOG_LEVEL", "warn")
	s := simulate(t, "testdata/fleets/demo.json")
	var outdated, sag1000s []string
	for _, g := range s.Cloud.Fleet.Gateways {
		if g.HardwareVersion != "sag-1000" {
			continue
		}
		sag1000s = append(sag1000s, g.SmartAGID)
		if g.Case == fleet.CaseOutdated {
			outdated = append(outdated, g.SmartAGID)
		}
	}
	start := s.Cloud.Clock.Now()
	lastWave := -1
	for night := 1; night <= 6; night++ {
		reports, err := s.Night(start.Add(time.Duration(night-1)*24*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Only the sweep calls, so its rollout is the wave the calls had.
		ro, ok := rolloutOf(reports[0], sag1000)
		if !ok {
			t.Fatalf("night %d: the sweep reports no %s", night, sag1000)
		}
		// Never more gateways started than the wave lets in: every gateway
		// that ever got an update call counts, over all nights so far.
		called := 0
		for _, id := range sag1000s {
			if s.Cloud.SAG.Count(simulation.UpdateAction, id) > 0 {
				called++
			}
		}
		if called > ro.WaveLimit {
			t.Fatalf("night %d: %d gateways called, wave %d lets in %d", night, called, ro.Wave, ro.WaveLimit)
		}
		// The waves in order, at most one more a night (the canary first).
		if ro.Wave != lastWave && ro.Wave != lastWave+1 || night == 1 && ro.Wave != 0 || ro.Breaker != "closed" {
			t.Fatalf("night %d: wave %d after wave %d: %+v", night, ro.Wave, lastWave, ro)
		}
		lastWave = ro.Wave
		t.Logf("night %d: wave %d, limit %d of %d, %d called, %d verified", night, ro.Wave, ro.WaveLimit, ro.Population, called, ro.Verified)
	}
	if lastWave != 3 {
		t.Fatalf("the rollout reached wave %d, want the last (3)", lastWave)
	}
	// Each wave fully verified (nothing in flight, every upgrade it started
	// finished) before the next began: the events, in order.
	var seq []string
	for _, d := range rolloutEvents(t, s, sag1000) {
		seq = append(seq, fmt.Sprintf("%s %d", d.Transition, d.Wave))
		if d.Transition == events.RolloutVerified && (d.InFlight != 0 || d.Verified+d.Failed != d.Started || d.LetIn < d.WaveLimit) {
			t.Errorf("wave %d verified with %+v", d.Wave, d.Rollout)
		}
	}
	want := "[started 0 verified 0 wave 1 verified 1 wave 2 verified 2 wave 3 verified 3 done 3]"
	if got := fmt.Sprint(seq); got != want {
		t.Fatalf("rollout events %s, want %s", got, want)
	}
	for _, id := range outdated {
		if st, _ := s.Cloud.SAG.Gateway(id); st.Devices[0].SoftwareVersion != fleet.NewestDevice {
			t.Errorf("%s still runs %s after six nights", id, st.Devices[0].SoftwareVersion)
		}
		if n := s.Cloud.SAG.Applied(id); n != 1 {
			t.Errorf("%s: %d upgrades", id, n)
		}
	}
}

func TestBadReleaseStopsEarlyAndResetResumes(t *testing.T) {
	t.Setenv("LOG_LEVEL", "warn")
	s := simulate(t, "testdata/fleets/bad-release.json")
	var sag1000s []string
	for _, g := range s.Cloud.Fleet.Gateways {
		if g.HardwareVersion == "sag-1000" {
			sag1000s = append(sag1000s, g.SmartAGID)
		}
	}
	calls := func() map[string]int {
		m := map[string]int{}
		for _, id := range sag1000s {
			if n := s.Cloud.SAG.Count(simulation.UpdateAction, id); n > 0 {
				m[id] = n
			}
		}
		return m
	}
	start := s.Cloud.Clock.Now()
	night := 0
	opened := -1
	for night = 1; night <= 2 && opened < 0; night++ {
		reports, err := s.Night(start.Add(time.Duration(night-1)*24*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reports {
			if ro, ok := rolloutOf(r, sag1000); ok && ro.Breaker == "open" {
				opened = ro.Wave
			}
		}
	}
	if opened < 0 || opened > 1 {
		t.Fatalf("the breaker did not open within the canary or the first wave (opened in wave %d)", opened)
	}
	upgraded := calls()
	// Several nights with the breaker open: no SAG-1000 gets a call.
	for n := night; n < night+3; n++ {
		reports, err := s.Night(start.Add(time.Duration(n-1)*24*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range reports[0].Results {
			if slices.Contains(sag1000s, res.SmartAGID) && res.Outcome == upgrade.OutcomeDeferred && res.Reason != "breaker_open" && res.ToVersion == fleet.NewestDevice {
				t.Fatalf("night %d: %s deferred for %s, want breaker_open", n, res.SmartAGID, res.Reason)
			}
		}
	}
	for id, n := range calls() {
		if upgraded[id] != n {
			t.Fatalf("%s got %d update calls while the breaker was open", id, n-upgraded[id])
		}
	}
	// An operator resets the breaker: the rollout resumes.
	when := start.Add(time.Duration(night+3)*24*time.Hour - time.Hour)
	if _, err := s.Night(when, []byte(`{"kind":"reset","versionTypes":["Device"],"targetVersion":"`+fleet.NewestDevice+`"}`)); err != nil {
		t.Fatal(err)
	}
	resumed := false
	for n := night + 4; n < night+6 && !resumed; n++ {
		if _, err := s.Night(start.Add(time.Duration(n-1)*24*time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		for id, c := range calls() {
			if c > upgraded[id] {
				resumed = true
			}
		}
	}
	if !resumed {
		t.Fatal("no SAG-1000 was called after the reset")
	}
}

// The rollout table of `-simulate -nights N` shows each night's end: the
// breaker a bad release opened on night 1, and a good release done.
func TestNightTablesShowTheEndOfTheNight(t *testing.T) {
	t.Setenv("LOG_LEVEL", "error")
	// The sag-1000 row of night n's table, over `nights` nights.
	row := func(fleetFile string, nights, n int) string {
		var stdout, stderr strings.Builder
		if code := simulator(cliOptions{simulate: true, fleet: fleetFile, nights: nights}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		_, night, _ := strings.Cut(stderr.String(), fmt.Sprintf("\nNight %d:\n", n))
		night, _, _ = strings.Cut(night, "=== Night")
		for line := range strings.Lines(night) {
			if strings.HasPrefix(line, "Device sag-1000 → "+fleet.NewestDevice) {
				return strings.Join(strings.Fields(line), " ")
			}
		}
		t.Fatalf("night %d's table has no sag-1000 rollout:\n%s", n, night)
		return ""
	}
	if r := row("testdata/fleets/bad-release.json", 2, 1); !strings.Contains(r, " open ") {
		t.Errorf("bad release, night 1: %q, want the breaker open", r)
	}
	if r := row("testdata/fleets/demo.json", 4, 4); !strings.Contains(r, fleet.NewestDevice+" done ") {
		t.Errorf("good release, night 4: %q, want done", r)
	}
}
