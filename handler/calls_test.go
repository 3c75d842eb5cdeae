package handler

import (
	"testing"
	"time"
)

// The rate limit lets a tenth of a second's calls start at once, then spaces
// them by the rate: a run of three calls does not wait 20 ms at 100/s, and
// no second holds more than 110% of the rate.
func TestCallerPacesCallsWithASmallBurst(t *testing.T) {
	for _, tc := range []struct {
		qps   float64
		burst int
	}{{100, 10}, {25, 2}, {5, 1}, {0.5, 1}} {
		l := newCaller(newPace(tc.qps), time.Time{}, time.Time{}).limit(readVersions)
		t0 := time.Unix(1_800_000_000, 0)
		if !l.AllowN(t0, tc.burst) {
			t.Errorf("%v/s: %d calls may not start at once", tc.qps, tc.burst)
		}
		if l.AllowN(t0, 1) {
			t.Errorf("%v/s: call %d started in the same instant", tc.qps, tc.burst+1)
		}
		// Over the next second: the rate, and nothing more.
		started := 0
		for ms := 1; ms <= 1000; ms++ {
			for l.AllowN(t0.Add(time.Duration(ms)*time.Millisecond), 1) {
				started++
			}
		}
		if want := int(tc.qps); started < want-1 || started > want {
			t.Errorf("%v/s: %d calls in the second after the burst", tc.qps, started)
		}
	}
}

// The service counts each action's calls on its own: a run that used up its
// version reads can still request upgrades and read devices at the rate.
func TestPaceLimitsEachActionOnItsOwn(t *testing.T) {
	c := newCaller(newPace(100), time.Time{}, time.Time{})
	t0 := time.Unix(1_800_000_000, 0)
	if !c.limit(readVersions).AllowN(t0, 10) || c.limit(readVersions).AllowN(t0, 1) {
		t.Fatal("version reads: the burst is not 10")
	}
	for _, a := range []action{listGateways, readDevices, requestUpgrade} {
		if !c.limit(a).AllowN(t0, 10) {
			t.Errorf("action %d waits for another action's calls", a)
		}
	}
	if c.limit(listGateways) == c.limit(requestUpgrade) {
		t.Error("two actions share one limiter")
	}
	if (&caller{}).limit(readDevices) != nil {
		t.Error("a caller without a pace (the ledger's) is rate limited")
	}
}

// API_QPS is per instance: every run of one process draws on one pace, so an
// invocation right after another does not start with a fresh burst.
func TestRunsOfOneInstanceShareItsPace(t *testing.T) {
	h := &Handler{Config: Config{APIQPS: 100}}
	first := h.instancePace()
	t0 := time.Now()
	if !first.limits[requestUpgrade].AllowN(t0, 10) {
		t.Fatal("the first run cannot start its burst")
	}
	second := h.instancePace()
	if second != first || second.limits[requestUpgrade].AllowN(t0, 1) {
		t.Error("the second run got a fresh burst: the instance would exceed API_QPS")
	}
	h.Config.APIQPS = 20
	if third := h.instancePace(); third == first || float64(third.limits[readVersions].Limit()) != 20 {
		t.Error("a changed API_QPS keeps the old rate")
	}
}
