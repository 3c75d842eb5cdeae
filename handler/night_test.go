package handler

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// batchOf is a sweep request naming gateways from..to-1 of a fleet.
func batchOf(gws []Gateway, from, to int) string {
	ids := make([]string, 0, to-from)
	for _, g := range gws[from:to] {
		ids = append(ids, g.ID)
	}
	b, _ := json.Marshal(map[string]any{"gatewayIds": ids})
	return string(b)
}

// MAX_UPGRADES_PER_NIGHT holds across batches served at once by several
// instances sharing the ledger, and a new night has a new count.
func TestNightCapAcrossInstances(t *testing.T) {
	gws := gateways("sag-n%02d", 60, "2.0.8")
	lh := newLedgerHarness(t, upgradingSAG(gws...))
	lh.h.Config.MaxUpgradesPerNight = 10
	lh.h.Config.MaxConcurrency = 2
	// Three instances: three handlers on one ledger, one SAG.
	instances := []*Handler{lh.h}
	for range 2 {
		h := &Handler{Config: lh.h.Config, Connect: lh.h.Connect, Clock: lh.h.Clock, Log: lh.h.Log, Control: true}
		instances = append(instances, h)
	}
	night := func() (requested, capped int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, h := range instances {
			wg.Go(func() {
				hs := &harness{h: h, sag: lh.sag, pub: lh.pub, logs: lh.logs}
				r, err := hs.invoke(t, batchOf(gws, i*20, i*20+20))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				requested += r.Counts.Requested
				for _, res := range r.Results {
					if res.Reason == upgrade.ReasonNightLimit {
						capped++
						if !strings.Contains(res.Error, "MAX_UPGRADES_PER_NIGHT is 10") {
							t.Errorf("%s: %q", res.SmartAGID, res.Error)
						}
					}
				}
			})
		}
		wg.Wait()
		return requested, capped
	}
	if requested, capped := night(); requested != 10 || capped != 50 || updateCalls(lh.sag) != 10 {
		t.Fatalf("first night: %d requested, %d held by the cap, %d update calls", requested, capped, updateCalls(lh.sag))
	}
	if requested, _ := night(); requested != 0 {
		t.Fatalf("the same night again: %d requested", requested)
	}
	lh.completeUpgrades(t, lh.sag, "2.3.1")
	lh.clock.Advance(day)
	if requested, _ := night(); requested != 10 || updateCalls(lh.sag) != 20 {
		t.Fatalf("the next night: %d requested, %d update calls in all", requested, updateCalls(lh.sag))
	}
}

// Calls the service refused give their place back: the night ends with the
// cap's count of upgrades under way, not fewer.
func TestNightCapGivesBackRefusedCalls(t *testing.T) {
	gws := gateways("sag-n%02d", 12, "2.0.8")
	sag := upgradingSAG(gws...)
	sag.fail = func(action, id string, n int) error {
		if action == "Update" && (id == "sag-n00" || id == "sag-n01") {
			return &APIError{Code: "SmartAccessGatewayNotOnline", Status: 400}
		}
		return nil
	}
	lh := newLedgerHarness(t, sag)
	lh.h.Config.MaxUpgradesPerNight = 5
	lh.h.Config.MaxConcurrency = 1
	r, _ := lh.invoke(t, batchOf(gws, 0, 6))
	r2, _ := lh.invoke(t, batchOf(gws, 6, 12))
	if got := r.Counts.Requested + r2.Counts.Requested; got != 5 {
		t.Fatalf("%d requested over two batches, want the cap's 5 (two refused): %+v %+v", got, r.Counts, r2.Counts)
	}
	used, _ := (&nightCap{limit: 5, ledger: lh.ledger, lcall: &caller{maxTries: 1}, loc: zoneOr("Asia/Shanghai", nil), now: lh.clock.Now}).used(t.Context())
	if used != 5 {
		t.Fatalf("the night's count is %d, want 5", used)
	}
}

// A dry run counts against what is left of the night and writes nothing.
func TestNightCapInADryRun(t *testing.T) {
	gws := gateways("sag-n%02d", 8, "2.0.8")
	lh := newLedgerHarness(t, upgradingSAG(gws...))
	lh.h.Config.MaxUpgradesPerNight = 3
	lh.invoke(t, batchOf(gws, 0, 1)) // one taken
	r, _ := lh.invoke(t, `{"dryRun":true}`)
	if r.Counts.Planned != 2 {
		t.Fatalf("dry run: %+v", r.Counts)
	}
	d, _, _ := lh.ledger.GetDoc(t.Context(), nightPrefix+(&nightCap{loc: zoneOr("Asia/Shanghai", nil)}).night(lh.clock.Now()))
	if !strings.Contains(string(d.Body), `"used":1`) {
		t.Fatalf("the night's count after a dry run: %s", d.Body)
	}
}

// A night runs from noon to noon in MAINTENANCE_TZ: a window across
// midnight is one night.
func TestNightRunsNoonToNoon(t *testing.T) {
	n := &nightCap{loc: zoneOr("Asia/Shanghai", nil)}
	for _, c := range []struct{ at, night string }{
		{"2026-12-06T23:30:00+08:00", "2026-12-06"},
		{"2026-12-07T01:30:00+08:00", "2026-12-06"},
		{"2026-12-07T11:59:00+08:00", "2026-12-06"},
		{"2026-12-07T12:00:00+08:00", "2026-12-07"},
	} {
		if got := n.night(mustTime(t, c.at)); got != c.night {
			t.Errorf("%s is in the night of %s, want %s", c.at, got, c.night)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", s, err))
	}
	return at
}
