package sagsim

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Flow is how the emulator's flow control counts an action's calls. The
// SAG API documents none, and services count in several ways: the function
// must stay within the limit whichever it meets.
type Flow string

const (
	// TokenBucket refills QPS tokens a second up to Burst (default: a tenth
	// of a second's calls).
	TokenBucket Flow = "bucket"
	// FixedWindow lets QPS calls through in each second of the clock.
	FixedWindow Flow = "fixed"
	// SlidingWindow lets QPS calls through in any one second.
	SlidingWindow Flow = "sliding"
)

// Flows are the shapes, in the order the benchmarks run them.
var Flows = []Flow{TokenBucket, FixedWindow, SlidingWindow}

// limiter says whether a call arriving now is let through.
type limiter interface{ allow(now time.Time) bool }

// newLimiter is flow control of qps calls a second of the shape.
func newLimiter(shape Flow, qps float64, burst int) limiter {
	n := max(1, int(qps)) // calls a window
	switch shape {
	case FixedWindow:
		return &fixedWindow{n: n}
	case SlidingWindow:
		return &slidingWindow{n: n}
	}
	if burst <= 0 {
		burst = max(1, int(qps/10))
	}
	return bucket{rate.NewLimiter(rate.Limit(qps), burst)}
}

// NewLimiter is flow control of qps calls a second of the shape (burst 0:
// the bucket's default), on its own: a model of the service for tests of
// the function's pacing that run on a clock of their own.
func NewLimiter(shape Flow, qps float64, burst int) func(now time.Time) bool {
	return newLimiter(shape, qps, burst).allow
}

type bucket struct{ l *rate.Limiter }

func (b bucket) allow(now time.Time) bool { return b.l.AllowN(now, 1) }

// fixedWindow counts the calls of each second of the clock.
type fixedWindow struct {
	mu    sync.Mutex
	n     int
	start time.Time
	count int
}

func (w *fixedWindow) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := now.Truncate(time.Second); !s.Equal(w.start) {
		w.start, w.count = s, 0
	}
	if w.count >= w.n {
		return false
	}
	w.count++
	return true
}

// slidingWindow keeps the times of the calls it let through in the last
// second, a ring of n.
type slidingWindow struct {
	mu   sync.Mutex
	n    int
	ring []time.Time
	next int // the oldest entry once the ring is full
}

func (w *slidingWindow) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ring) < w.n {
		w.ring = append(w.ring, now)
		return true
	}
	// The oldest of the last n calls let through: within the second, the
	// window is full.
	if now.Sub(w.ring[w.next]) < time.Second {
		return false
	}
	w.ring[w.next] = now
	w.next = (w.next + 1) % w.n
	return true
}
