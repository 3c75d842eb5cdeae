package handler

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestSweepOutcomes(t *testing.T) {
	offline := gateway("sag-off", "2.0.8")
	offline.Status = "Offline"
	current := gateway("sag-cur", "2.3.1")
	noccn := gateway("sag-noccn", "2.0.8")
	noccn.CcnID = ""
	sag := newFakeSAG(gateway("sag-old", "2.0.8"), offline, current, noccn)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)

	report, err := hs.invoke(t, ``)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	want := map[string][2]string{
		"sag-old/Device":   {"requested", ""},
		"sag-off/Device":   {"skipped", upgrade.ReasonOffline},
		"sag-cur/Device":   {"skipped", upgrade.ReasonUpToDate},
		"sag-noccn/Device": {"skipped", upgrade.ReasonNotBoundCCN},
	}
	for k, w := range want {
		if string(got[k].Outcome) != w[0] || got[k].Reason != w[1] {
			t.Errorf("%s: %s/%s, want %s/%s", k, got[k].Outcome, got[k].Reason, w[0], w[1])
		}
	}
	if r := got["sag-old/Device"]; r.FromVersion != "2.0.8" || r.ToVersion != "2.3.1" || r.RequestID != "REQ-sag-old" {
		t.Errorf("requested result: %+v", r)
	}
	if len(sag.updates) != 1 {
		t.Errorf("update calls %v, want one", sag.updates)
	}
	if c := report.Counts; c.Scanned != 4 || c.Requested != 1 || c.Skipped != 3 {
		t.Errorf("counts %+v", c)
	}
	// No per-gateway call for a gateway the list already rules out.
	if n := sag.count("Versions", "sag-off"); n != 0 {
		t.Errorf("offline gateway: %d version calls", n)
	}
	// One event per result plus run.completed, all published.
	if len(hs.pub.events) != 5 || report.Publishing.Published != 5 || report.Publishing.Failed != 0 {
		t.Errorf("%d events published, report says %+v", len(hs.pub.events), report.Publishing)
	}
	last := hs.pub.events[len(hs.pub.events)-1]
	for _, ev := range hs.pub.events {
		if ev.Type == "sag.upgrade.run.completed" {
			last = ev
		}
	}
	if last.Type != "sag.upgrade.run.completed" || !strings.Contains(string(last.Data), `"requested":1`) {
		t.Errorf("run.completed event: %+v", last)
	}
}

func TestDryRunMakesNoUpdateCall(t *testing.T) {
	sag := newFakeSAG(gateway("sag-a", "2.0.8"), gateway("sag-b", "2.2.0"))
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"dryRun":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(sag.updates) != 0 || report.Counts.Planned != 2 || !report.DryRun {
		t.Fatalf("dry run: updates %v, report %+v", sag.updates, report.Counts)
	}
	// DRY_RUN in the environment wins over a request that does not ask for it.
	hs = newHarness(t, sag, func(c *Config) { c.DryRun = true })
	report, _ = hs.invoke(t, `{"dryRun":false}`)
	if len(sag.updates) != 0 || report.Counts.Planned != 2 {
		t.Fatalf("DRY_RUN=true: updates %v, counts %+v", sag.updates, report.Counts)
	}
}

func TestHAPairUpgradesOneDevicePerRunStandbyFirst(t *testing.T) {
	g := gateway("sag-ha", "2.0.8")
	g.SerialNumbers = []string{"sn-master", "sn-standby"}
	g.BackupSoftwareVersion = "2.0.8"
	sag := newFakeSAG(g)
	sag.offered = catalog()
	sag.details[g.ID] = Detail{Status: "Active", MasterSN: "sn-master", Devices: []Device{
		{SerialNumber: "sn-master", Software: "2.0.8"}, {SerialNumber: "sn-standby", Software: "2.0.8"}}}
	hs := newHarness(t, sag, nil)
	report, _ := hs.invoke(t, `{}`)
	res := report.Results[0]
	if len(sag.updates) != 1 || sag.updates[0] != "sag-ha sn-standby 2.3.1" {
		t.Fatalf("updates %v, want one for the standby", sag.updates)
	}
	if res.Outcome != upgrade.OutcomeRequested || res.SerialNumber != "sn-standby" || res.Reason != upgrade.ReasonHAPeerPending {
		t.Fatalf("result %+v", res)
	}
	// Next run: the standby is done, the master follows.
	sag.details[g.ID] = Detail{Status: "Active", MasterSN: "sn-master", Devices: []Device{
		{SerialNumber: "sn-master", Software: "2.0.8"}, {SerialNumber: "sn-standby", Software: "2.3.1"}}}
	report, _ = hs.invoke(t, `{}`)
	if len(sag.updates) != 2 || sag.updates[1] != "sag-ha sn-master 2.3.1" || report.Results[0].Reason != "" {
		t.Fatalf("second run: updates %v, result %+v", sag.updates, report.Results[0])
	}
}

func TestSweepPagesThroughLargeRegions(t *testing.T) {
	gws := gateways("sag-%03d", 123, "2.3.1")
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Scanned != 123 || report.Counts.Skipped != 123 || sag.count("List", "cn-shanghai") != 3 {
		t.Fatalf("counts %+v after %d list calls", report.Counts, sag.count("List", "cn-shanghai"))
	}
}

func TestDpiSweepUsesDeviceVersions(t *testing.T) {
	g := gateway("sag-dpi", "2.3.1")
	sag := newFakeSAG(g)
	sag.offered = []Release{{Code: "1.7.0", Type: "release", Created: testNow.Add(-90 * day)}, {Code: "1.8.3", Type: "release", Created: testNow.Add(-30 * day)}}
	sag.details[g.ID] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-sag-dpi", Software: "2.3.1", Dpi: "1.7.0"}}}
	// 04:59 in Shanghai: no firmware upgrade fits before 05:00, a DPI update
	// (no reboot) still does.
	w, _ := ParseWindow("01:00-05:00", "Asia/Shanghai")
	hs := newHarness(t, sag, func(c *Config) { c.Window = w })
	hs.h.Clock = func() time.Time { return time.Date(2026, 11, 22, 20, 59, 0, 0, time.UTC) }
	report, err := hs.invoke(t, `{"versionTypes":["Dpi"]}`)
	if err != nil {
		t.Fatal(err)
	}
	r := report.Results[0]
	if r.VersionType != upgrade.VersionDpi || r.Outcome != upgrade.OutcomeRequested || r.FromVersion != "1.7.0" || r.ToVersion != "1.8.3" {
		t.Fatalf("dpi result %+v", r)
	}
	if sag.count("Devices", g.ID) != 1 || len(sag.updates) != 1 {
		t.Fatalf("devices calls %d, updates %v", sag.count("Devices", g.ID), sag.updates)
	}
}

// A pin applies to each version type asked for; where the gateway's list does
// not offer it, the result says so instead of passing silently.
func TestPinWithBothVersionTypes(t *testing.T) {
	g := gateway("sag-pin", "2.0.8")
	sag := newFakeSAG(g)
	sag.offered = catalog()
	sag.dpi = []Release{{Code: "1.8.3", Type: "release", Created: testNow.Add(-30 * day)}}
	sag.details[g.ID] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-sag-pin", Software: "2.0.8", Dpi: "1.7.0"}}}
	hs := newHarness(t, sag, nil)
	report, err := hs.invoke(t, `{"versionTypes":["Device","Dpi"],"targetVersion":"2.3.1"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(report)
	if r := got["sag-pin/Device"]; r.Outcome != upgrade.OutcomeRequested || r.ToVersion != "2.3.1" {
		t.Errorf("Device: %+v", r)
	}
	if r := got["sag-pin/Dpi"]; r.Outcome != upgrade.OutcomeSkipped || r.Reason != upgrade.ReasonNotOffered {
		t.Errorf("Dpi: %+v", r)
	}
}

// A chunk's update calls start while the chunk before it is still waiting
// for its answers: one slow answer must not leave the update lane idle.
func TestChunksCallWhileTheOneBeforeIsAnswered(t *testing.T) {
	sag := newFakeSAG(gateways("sag-o%02d", 16, "2.0.8")...)
	sag.offered = catalog()
	var mu sync.Mutex
	inFlight, most := 0, 0
	overlap := make(chan struct{})
	sag.fail = func(action, id string, n int) error {
		if action != "Update" {
			return nil
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == 9 { // one of the second chunk's with the first's
			close(overlap)
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		select {
		case <-overlap:
		case <-time.After(2 * time.Second):
		}
		return nil
	}
	hs := newHarness(t, sag, func(c *Config) { c.MaxConcurrency = 8 }) // two chunks of eight
	report, err := hs.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Requested != 16 {
		t.Fatalf("counts %+v", report.Counts)
	}
	if most <= 8 {
		t.Fatalf("at most %d update calls at once: the second chunk waited for the first one's answers", most)
	}
}

// At a cap's edge the gate waits for the calls still in flight: the places
// of the gateways they did not start go to the next chunk, as they would
// had the chunks called one after the other.
func TestACapWaitsForTheCallsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cap    func(c *Config)
		reason string
		// claims: the four gateways of the first chunk that start nothing
		// lose their claims (a wave counts a claimed gateway as started);
		// otherwise their update calls are refused.
		claims bool
	}{
		{"run limit", func(c *Config) { c.MaxUpgradesPerRun = 10 }, upgrade.ReasonRunLimit, false},
		{"night cap", func(c *Config) { c.MaxUpgradesPerNight = 10 }, upgrade.ReasonNightLimit, false},
		{"wave", func(c *Config) { c.RolloutCanary = 10 }, upgrade.ReasonWave, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sag := upgradingSAG(gateways("sag-c%02d", 16, "2.0.8")...)
			refused := 4
			if tc.claims {
				refused = 0
			}
			slowUpdates(sag, refused)
			var mu sync.Mutex
			claims := 0
			lh := newLedgerHarness(t, sag)
			lh.h.Config.MaxConcurrency = 8 // two chunks of eight
			tc.cap(&lh.h.Config)
			lh.ledger.fail = func(op string) error {
				if op != "Put" || !tc.claims {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if claims++; claims <= 4 {
					return errors.New("the ledger refused the claim")
				}
				return nil
			}
			report, err := lh.invoke(t, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			held := 0
			for _, r := range report.Results {
				if r.Reason == tc.reason {
					held++
				}
			}
			if c := report.Counts; c.Requested != 10 || held != 2 {
				t.Fatalf("requested %d, %d held back for %s; want 10 and 2 (counts %+v)", c.Requested, held, tc.reason, c)
			}
		})
	}
}

// At the night cap's edge the gate asks the night again after the calls in
// flight gave back; if that second ask fails, what the first one granted
// still goes, and is not left taken from the night unused.
func TestANightCapAskedAgainKeepsWhatItGranted(t *testing.T) {
	sag := upgradingSAG(gateways("sag-n%02d", 16, "2.0.8")...)
	slowUpdates(sag, 4) // four of the first chunk's eight start nothing
	var mu sync.Mutex
	lh := newLedgerHarness(t, sag)
	lh.h.Config.MaxConcurrency = 8 // two chunks of eight
	lh.h.Config.MaxUpgradesPerNight = 10
	nightReads := 0
	lh.ledger.failDoc = func(id string) error {
		if !strings.HasPrefix(id, nightPrefix) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		// The first chunk's take, the second's, the first's give-back,
		// then the second's ask again.
		if nightReads++; nightReads == 4 {
			return errors.New("the ledger is gone for a moment")
		}
		return nil
	}
	report, err := lh.invoke(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	lh.ledger.mu.Lock()
	for id, d := range lh.ledger.docs {
		if strings.HasPrefix(id, nightPrefix) {
			var doc nightDoc
			json.Unmarshal(d.Body, &doc)
			used += doc.Used
		}
	}
	lh.ledger.mu.Unlock()
	if nightReads < 4 || report.Counts.Requested != 6 || used != 6 {
		t.Fatalf("%d night reads; requested %d, the night's count %d: want the 4 of the first chunk and the 2 granted to the second, counted once (counts %+v)",
			nightReads, report.Counts.Requested, used, report.Counts)
	}
}

// slowUpdates makes every update call take 100 ms, still in flight as the
// next chunk is gated, and refuses the first refused of them (the gateway
// went offline: nothing started).
func slowUpdates(sag *fakeSAG, refused int) {
	var mu sync.Mutex
	updates := 0
	sag.fail = func(action, id string, n int) error {
		if action != "Update" {
			return nil
		}
		mu.Lock()
		updates++
		refuse := updates <= refused
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		if refuse {
			return &APIError{Action: "UpdateSmartAccessGatewayVersion", Code: "SmartAccessGatewayNotOnline", Status: 400}
		}
		return nil
	}
}
