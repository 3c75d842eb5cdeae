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
		c := newCaller(tc.qps, time.Time{}, time.Time{})
		t0 := time.Unix(1_800_000_000, 0)
		if !c.limiter.AllowN(t0, tc.burst) {
			t.Errorf("%v/s: %d calls may not start at once", tc.qps, tc.burst)
		}
		if c.limiter.AllowN(t0, 1) {
			t.Errorf("%v/s: call %d started in the same instant", tc.qps, tc.burst+1)
		}
		// Over the next second: the rate, and nothing more.
		started := 0
		for ms := 1; ms <= 1000; ms++ {
			for c.limiter.AllowN(t0.Add(time.Duration(ms)*time.Millisecond), 1) {
				started++
			}
		}
		if want := int(tc.qps); started < want-1 || started > want {
			t.Errorf("%v/s: %d calls in the second after the burst", tc.qps, started)
		}
	}
}
