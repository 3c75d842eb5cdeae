package handler

import (
	"context"
	"math"
	"sync"
	"time"
)

// Pacing that follows the service. The SAG API publishes no rate limit, and
// flow control may count calls in fixed one-second windows, in sliding ones,
// or with a token bucket of any burst; several instances may share one
// limit; regions may or may not. So API_QPS is only a ceiling. Each action
// toward each region's endpoint has a lane: calls start evenly spaced at the
// lane's rate (no bursts, which a window or a small bucket counts against
// us); a throttled answer cuts the rate at once, and successes bring it back
// along a cubic curve (as TCP CUBIC and the AWS SDKs' adaptive retry mode
// do): quickly to just below the rate that was throttled, then slowly past
// it, probing for more. Instances that share a limit each cut when they are
// throttled and so settle on their shares without talking to each other.

// The lane's constants.
const (
	// cutTo is the share of its rate a lane keeps when throttled.
	cutTo = 0.9
	// growth is CUBIC's C relative to the rate last throttled: past that
	// rate, a lane grows by growth·t³ of it in t seconds (0.4% in one, 3.2%
	// in two, 11% in three), and it comes back to it in recoverIn.
	growth = 0.001
	// cutGuard: answers to calls sent before a cut say nothing of the new
	// rate; a lane is cut at most once a window.
	cutGuard = time.Second
	// floorShare is the lowest share of the ceiling a lane falls to.
	floorShare = 0.01
	// catchUp is how late a call may take a slot it missed.
	catchUp = 50 * time.Millisecond
)

// recoverIn is how long a lane takes to come back to the rate it was
// throttled at (CUBIC's K): cutTo·peak·(1+growth·K³)... = peak.
var recoverIn = time.Duration(math.Cbrt((1-cutTo)/growth) * float64(time.Second))

// pace is an instance's SAG pacing, shared by every run the process serves,
// so back-to-back invocations on a warm instance keep to one rate.
type pace struct {
	qps   float64 // API_QPS: every lane's ceiling
	mu    sync.Mutex
	lanes map[laneKey]*lane
	now   func() time.Time // time.Now; tests set it
}

type laneKey struct {
	region string
	a      action
}

func newPace(qps float64) *pace {
	return &pace{qps: qps, lanes: map[laneKey]*lane{}, now: time.Now}
}

// lane returns the lane of action a toward region.
func (p *pace) lane(region string, a action) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := laneKey{region, a}
	if p.lanes[k] == nil {
		p.lanes[k] = &lane{ceiling: p.qps, rate: p.qps, now: p.now}
	}
	return p.lanes[k]
}

// lane paces one action toward one endpoint.
type lane struct {
	mu      sync.Mutex
	ceiling float64
	rate    float64   // calls a second now
	next    time.Time // when the next call may start
	peak    float64   // the rate last throttled (CUBIC's W_max)
	cutAt   time.Time // when; zero: never
	// Answers since the last cut: the share throttled says how far over
	// its share of the limit the lane is.
	ok, refused int
	now         func() time.Time
}

// reserve takes the next start time and spaces the one after by the rate.
func (l *lane) reserve() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// A slot missed by less than catchUp (a worker busy elsewhere for a
	// moment) may still be taken; one missed by more is gone: a lane left
	// idle saves up no burst.
	slot := l.next
	if floor := now.Add(-catchUp); slot.Before(floor) {
		slot = floor
		if l.next.IsZero() || now.Sub(l.next) > time.Second {
			slot = now // a new lane, or one idle for a while
		}
	}
	l.next = slot.Add(time.Duration(float64(time.Second) / l.rate))
	start := slot
	if start.Before(now) {
		start = now
	}
	return start
}

// wait blocks until the lane lets a call start, or ctx ends.
func (l *lane) wait(ctx context.Context) error {
	d := l.reserve().Sub(l.now())
	if d <= 0 {
		return ctx.Err()
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answered tells the lane how a call it let start was answered.
func (l *lane) answered(throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if throttled {
		l.refused++
		if !l.cutAt.IsZero() && now.Sub(l.cutAt) < cutGuard {
			return
		}
		// Cut to cutTo, or further when most calls were refused (several
		// instances finding their shares): to the rate let through since
		// the last cut.
		rate := l.rate * cutTo
		if elapsed := now.Sub(l.cutAt).Seconds(); !l.cutAt.IsZero() && l.refused > l.ok {
			rate = min(rate, float64(l.ok)/elapsed)
		}
		l.rate = max(rate, l.ceiling*floorShare)
		// The curve back starts at the new rate: it comes back to
		// rate/cutTo (the rate throttled, after an ordinary cut).
		l.peak, l.cutAt, l.ok, l.refused = l.rate/cutTo, now, 0, 0
		return
	}
	l.ok++
	if l.cutAt.IsZero() || l.rate >= l.ceiling {
		return
	}
	// CUBIC: peak·(1 + growth·(t − K)³): cutTo·peak at the cut, peak at K,
	// then slowly faster.
	x := now.Sub(l.cutAt).Seconds() - recoverIn.Seconds()
	target := l.peak * (1 + growth*x*x*x)
	l.rate = min(l.ceiling, max(l.rate, target))
}

// current is the lane's rate, for logs and tests.
func (l *lane) current() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return math.Round(l.rate*100) / 100
}
