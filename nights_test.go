//go:build !fc

package main

// Several nights on the simulated clock, in-process: the same handler and
// adapters as production, over real HTTP to the emulators. They stay with
// main: the function in-process is main's composition (newHandler), which
// no other package can import.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// simulate starts a fleet file's simulated cloud with the function
// in-process on it, as -simulate runs it.
func simulate(t *testing.T, fleetFile string) *simulation.Local {
	t.Helper()
	s, err := simulation.StartLocal(fleetFile, simulation.InProcess{NewHandler: newHandler, Getenv: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestNightsVerifyLoseAndPenalise(t *testing.T) {
	t.Setenv("MAX_ATTEMPTS", "2")
	t.Setenv("ROLLOUT_CANARY", "10000") // every gateway at once: waves have their own test
	t.Setenv("LOG_LEVEL", "warn")
	s := simulate(t, "testdata/fleets/demo.json")
	byCase := map[fleet.Case][]string{}
	for _, g := range s.Cloud.Fleet.Gateways {
		byCase[g.Case] = append(byCase[g.Case], g.SmartAGID)
	}
	// outcomes of one night, by gateway: the last result of each.
	last := func(reports []events.Report) map[string]upgrade.Result {
		m := map[string]upgrade.Result{}
		for _, r := range reports {
			for _, res := range r.Results {
				if res.VersionType == upgrade.VersionDevice {
					m[res.SmartAGID] = res
				}
			}
		}
		return m
	}
	start := s.Cloud.Clock.Now()
	night := func(n int) map[string]upgrade.Result {
		t.Helper()
		reports, err := s.Night(start.Add(time.Duration(n-1)*24*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		return last(reports)
	}
	expect := func(n int, got map[string]upgrade.Result, c fleet.Case, outcome upgrade.Outcome, reasons ...string) {
		t.Helper()
		for _, id := range byCase[c] {
			r := got[id]
			ok := r.Outcome == outcome
			if len(reasons) > 0 {
				ok = ok && r.Reason == reasons[0]
			}
			if !ok {
				t.Errorf("night %d, %s (%s): %s/%s, want %s %v", n, id, c, r.Outcome, r.Reason, outcome, reasons)
			}
		}
	}

	n1 := night(1)
	expect(1, n1, fleet.CaseOutdated, upgrade.OutcomeVerified)
	expect(1, n1, fleet.CaseLost, upgrade.OutcomeUnverified, "offline")
	expect(1, n1, fleet.CaseReverts, upgrade.OutcomeUnverified, "version_mismatch")
	expect(1, n1, fleet.CaseHAPair, upgrade.OutcomeVerified, "ha_peer_pending") // the standby; the master follows tomorrow

	n2 := night(2)
	expect(2, n2, fleet.CaseLost, upgrade.OutcomeUnverified, "offline") // still not back: a second unverified night
	expect(2, n2, fleet.CaseReverts, upgrade.OutcomeUnverified, "version_mismatch")
	expect(2, n2, fleet.CaseHAPair, upgrade.OutcomeVerified, "") // both devices now
	expect(2, n2, fleet.CaseOutdated, upgrade.OutcomeSkipped, "up_to_date")

	// Two unverified nights in a row: the penalty box (MAX_ATTEMPTS=2), for
	// the device that reverts and for the one that never came back.
	n3 := night(3)
	expect(3, n3, fleet.CaseReverts, upgrade.OutcomeSkipped, "penalty")
	expect(3, n3, fleet.CaseLost, upgrade.OutcomeSkipped, "penalty")
	for _, id := range byCase[fleet.CaseReverts] {
		if n := s.Cloud.SAG.Count(simulation.UpdateAction, id); n != 2 {
			t.Errorf("%s: %d update calls over three nights, want 2", id, n)
		}
	}
	for _, id := range byCase[fleet.CaseLost] {
		if n := s.Cloud.SAG.Count(simulation.UpdateAction, id); n != 1 {
			t.Errorf("%s: %d update calls, want 1", id, n)
		}
	}
	for _, id := range byCase[fleet.CaseOutdated] {
		if n := s.Cloud.SAG.Applied(id); n != 1 {
			t.Errorf("%s: %d upgrades, want 1", id, n)
		}
	}

	// An operator retries the failed ones by hand.
	reports, err := s.Night(start.Add(2*24*time.Hour+2*time.Hour), []byte(`{"retryFailedOnly":true}`))
	if err != nil {
		t.Fatal(err)
	}
	retried := last(reports[:1])
	for _, id := range byCase[fleet.CaseReverts] {
		if retried[id].Outcome != upgrade.OutcomeRequested {
			t.Errorf("retryFailedOnly, %s: %+v", id, retried[id])
		}
	}
	for id, r := range retried {
		if r.Outcome == upgrade.OutcomeRequested && !slices.Contains(byCase[fleet.CaseReverts], id) && !slices.Contains(byCase[fleet.CaseLost], id) &&
			!slices.Contains(byCase[fleet.CaseReseller], id) {
			t.Errorf("retryFailedOnly touched %s, which had not failed", id)
		}
	}
}

// The function's log lines are timed by the simulated clock, as its
// decisions and events are, not by the machine's.
func TestLogTimesAreTheSimulatedClock(t *testing.T) {
	logs := &logBuffer{}
	s, err := simulation.StartLocal("testdata/fleets/demo.json", simulation.InProcess{NewHandler: newHandler, Logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	first := s.Cloud.Clock.Now()
	if _, err := s.Invoke(nil); err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	split := logs.buf.Len()
	logs.mu.Unlock()
	second := s.Cloud.Clock.Advance(36 * time.Hour)
	if _, err := s.Invoke(nil); err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for i, part := range [][]byte{logs.buf.Bytes()[:split], logs.buf.Bytes()[split:]} {
		want := []time.Time{first, second}[i]
		lines := 0
		for sc := bufio.NewScanner(bytes.NewReader(part)); sc.Scan(); lines++ {
			var l struct {
				Time    time.Time `json:"time"`
				Message string    `json:"message"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || !l.Time.Equal(want) {
				t.Fatalf("run %d: the line %q is timed %v, the simulated clock says %v (%v)", i+1, l.Message, l.Time, want, err)
			}
		}
		if lines < 100 {
			t.Fatalf("run %d logged %d lines", i+1, lines)
		}
	}
}
