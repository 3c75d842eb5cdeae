package sagsim

import (
	"testing"
	"time"
)

// Each shape counts calls its own way: ten a second, and what each lets
// through around a second's boundary.
func TestFlowShapes(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 5, 0, 0, 990_000_000, time.UTC) // 10 ms before a second's boundary
	through := func(l limiter, at ...time.Time) int {
		n := 0
		for _, a := range at {
			if l.allow(a) {
				n++
			}
		}
		return n
	}
	burst := func(at time.Time, n int) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = at
		}
		return out
	}
	// Twenty calls at once just before the boundary and twenty just after.
	edge := append(burst(t0, 20), burst(t0.Add(20*time.Millisecond), 20)...)
	for _, c := range []struct {
		shape Flow
		want  int
	}{
		{TokenBucket, 1},    // a bucket of one call: the second start is refused, 20 ms refill 0.2 call
		{FixedWindow, 20},   // ten in each clock second: the window's weakness
		{SlidingWindow, 10}, // ten in any one second
	} {
		if got := through(newLimiter(c.shape, 10, 0), edge...); got != c.want {
			t.Errorf("%s: %d of 40 calls at a second's edge let through, want %d", c.shape, got, c.want)
		}
	}
	// Evenly spaced at the rate, every shape lets every call through.
	for _, shape := range Flows {
		l := newLimiter(shape, 10, 0)
		var at []time.Time
		for i := range 100 {
			at = append(at, t0.Add(time.Duration(i)*100*time.Millisecond))
		}
		if got := through(l, at...); got != 100 {
			t.Errorf("%s: %d of 100 evenly spaced calls let through", shape, got)
		}
	}
	// A bucket's burst is what it lets through at once.
	if got := through(newLimiter(TokenBucket, 10, 5), burst(t0, 8)...); got != 5 {
		t.Errorf("a bucket of 5: %d let through at once", got)
	}
	// A sliding window forgets a call a second after it.
	w := newLimiter(SlidingWindow, 10, 0)
	through(w, burst(t0, 10)...)
	if w.allow(t0.Add(999*time.Millisecond)) || !w.allow(t0.Add(time.Second)) {
		t.Error("the sliding window does not forget after exactly a second")
	}
}
