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
// throttled and so settle on their shares without talking to each other; a
// lane settling (in its first seconds) and let through much less than its
// rate lately falls to what it was let through. A new instance starts slow,
// holds for half a second, and climbs fast (TCP's slow start), unless its
// run starts the night (no other instance shares the limit yet). Regions
// may share a limit too: after a throttle, an action's calls toward every
// region also keep to one shared lane, which is cut and climbs as a
// region's lane does.

// The lane's constants.
const (
	// cutTo is the share of its rate a lane keeps when throttled, at least.
	// Within a tenth of its ceiling, an ordinary cut takes twice the share
	// of the lane's answers of the last second that were throttled
	// (throttleWeight), and a tenth at most: one throttle among a hundred
	// calls there (a window that counted one call too many, its arrival a
	// few milliseconds off the start the lane spaced) says API_QPS is about
	// the limit, and costs 2%. Cut by a tenth at each, a lane alone at the
	// limit ran at 96.8% of it (a model, TestStrayThrottlesAtTheLimitCostLittle).
	// Below, a lane probes a limit it does not know, several instances'
	// lanes their shares of one: there every cut is by a tenth (by the
	// share throttled, eight instances had 2.5% of their calls throttled
	// in the model, against 2.0%).
	// A lane let through less than cutTo of its rate in the last second
	// (several instances sharing one limit) falls to what it was let
	// through, or to halfShare of its rate if that is more; but only while
	// it is settling, in its first settleIn. After that every cut is an
	// ordinary one: a cut to one bad second's share, climbed back from
	// only along the lane's own curve (relative to its rate, below), left
	// the instances' shares a little further apart with each one, and the
	// slowest instance's last batch is the night's tail (eight instances
	// with startHold: one batch of 50 gateways took 12 s at the end of a
	// night, 4 s on average).
	cutTo          = 0.9
	throttleWeight = 2
	halfShare      = 0.5
	settleIn       = 5 * time.Second
	// growth is CUBIC's C relative to the rate last throttled: past that
	// rate, a lane grows by growth·t³ of it in t seconds (0.02% in one,
	// 0.16% in two, 1.3% in four), and it comes back to it in recoverIn
	// (7.9 s). Relative, so that N lanes sharing a limit probe it together
	// no faster than one would. But each cut takes a tenth of one lane's
	// share, so N lanes are cut N times as often as one, each cut with its
	// throttles: eight instances had 1.5-2.2% of their calls throttled at
	// 0.0005 (recoverIn 5.8 s), 1.3-1.6% at this (README). A lane alone is
	// cut rarely, and loses a fortieth of recoverIn's calls at each cut.
	growth = 0.0002
	// cutGuard: answers to calls sent before a cut say nothing of the new
	// rate; a lane is cut at most once a window. A throttle in the guard
	// still costs the lane a slot (its next call starts a spacing later):
	// a lane throttled hard while its cut waits for the window to pass
	// slows at once, one throttled rarely keeps its rate.
	cutGuard = time.Second
	// floorShare is the lowest share of the ceiling a lane falls to.
	floorShare = 0.01
	// catchUp is how late a call may take a slot it missed, at most: a
	// lane whose work paused for a moment (a batch ending, the next one
	// starting) catches up that much, within the rate's calls in any one
	// second. A burst of that size can still overflow a token bucket with
	// a smaller one: each caught-up call throttled takes one slot off the
	// lane's catch-up (and leaves its rate), so one burst too large finds
	// the bucket's size; every call let through gives back catchUpBack, a
	// slot in about 333 calls. A window's edge throttles a caught-up call
	// now and then too (a millisecond of jitter), and at a slot in 1,000
	// calls the catch-up wore away over a long night: 20,000 gateways'
	// batches caught up 7.2 of 7.8 missed slots early and 5.6 of 8.6 late.
	catchUp     = 100 * time.Millisecond
	catchUpBack = 30 * time.Microsecond
	// idleAfter: a lane that let no call start for this long is idle, and
	// the time it was idle does not count toward its growth (the curve
	// measures how long the rate held without a throttle).
	idleAfter = time.Second
	// A new lane (of an action the instance has not called yet) starts at
	// startShare of the ceiling and climbs quickly until throttled: an
	// instance that joins others sharing a limit does not flood it. It
	// holds its start rate for startHold, half a window: a window lets its
	// first calls through whatever their rate, so a lane that climbed at
	// once learned of the limit only well past its share, with every
	// instance's calls throttled until the window's first ones slid out.
	// Then the rate doubles every slowStart (by time, not by answers: a
	// lane called rarely, such as the device reads, climbs as fast as a
	// busy one). The first throttle ends the climb and halves the rate, as
	// TCP's slow start ends.
	startShare = 0.125
	startHold  = 500 * time.Millisecond
	slowStart  = 250 * time.Millisecond
	// tick is the width of the buckets a lane counts its answers in.
	tick = 100 * time.Millisecond
)

// recoverIn is how long a lane cut from a rate to the share left of it
// takes to come back to it (CUBIC's K): left·(1+growth·K³) = 1.
func recoverIn(left float64) time.Duration {
	return time.Duration(math.Cbrt((1-left)/growth) * float64(time.Second))
}

// leaves is the share of its rate an ordinary cut leaves a lane, or an
// action's shared lane: cutTo; within a tenth of the lane's ceiling, one
// less twice the share of the answers lately that were throttled, if that
// is more (a smaller cut).
func leaves(rate, ceiling float64, throttled, answered int) float64 {
	if rate <= cutTo*ceiling || answered == 0 {
		return cutTo
	}
	return max(cutTo, 1-throttleWeight*float64(throttled)/float64(answered))
}

// pace is an instance's SAG pacing, shared by every run the process serves,
// so back-to-back invocations on a warm instance keep to one rate.
type pace struct {
	qps     float64 // API_QPS: every lane's ceiling
	mu      sync.Mutex
	lanes   map[laneKey]*lane
	actions [actions]window     // the calls of each action, every region's
	shared  [actions]sharedLane // each action's lane toward every region together
	now     func() time.Time    // time.Now; tests set it
}

type laneKey struct {
	region string
	a      action
}

func newPace(qps float64) *pace {
	return &pace{qps: qps, lanes: map[laneKey]*lane{}, now: time.Now}
}

// lane returns the lane of action a toward region, for a run that follows
// others: a new lane starts slow.
func (p *pace) lane(region string, a action) *lane { return p.laneFor(region, a, false) }

// laneFor returns the lane of action a toward region. A new lane starts
// slow, or at the ceiling for a run that leads (the timer's, which starts
// the night: nothing of this function shares the limit until it fans out;
// whoever else calls the API, a throttle still cuts it. On one instance,
// 2,000 gateways, the slow start of its version reads, listing and update
// calls cost the night about 0.7 s). Either way it then starts where the
// slowest lane of the same action toward another region stands: if the
// regions share one limit, that is what the instance was let through; if
// not, the lane climbs back to the ceiling.
func (p *pace) laneFor(region string, a action, lead bool) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := laneKey{region, a}
	if l := p.lanes[k]; l != nil {
		return l
	}
	l := &lane{ceiling: p.qps, rate: p.qps * startShare, born: p.now(), catchUp: catchUp, now: p.now, pace: p, a: a}
	if lead {
		l.rate, l.led = p.qps, true
	}
	first := true
	for k2, sib := range p.lanes {
		if k2.a == a {
			sib.mu.Lock()
			if first || sib.rate < l.rate {
				l.rate, l.peak, l.left, l.cutAt, l.born = sib.rate, sib.peak, sib.left, sib.cutAt, sib.born
			}
			first = false
			sib.mu.Unlock()
		}
	}
	p.lanes[k] = l
	return l
}

// lane paces one action toward one endpoint.
type lane struct {
	mu      sync.Mutex
	ceiling float64
	rate    float64       // calls a second now
	next    time.Time     // when the next call may start
	peak    float64       // the rate last throttled (CUBIC's W_max)
	left    float64       // the share of peak the cut left
	cutAt   time.Time     // when; zero: never
	born    time.Time     // when its slow start began
	catchUp time.Duration // how late a call may take a missed slot
	// burstUntil: calls starting before it follow a burst of caught-up
	// slots closely enough to be throttled for it.
	burstUntil time.Time
	// The last second by tick, newest first: the calls let through, and
	// whether the lane was asked for a call (what the count covers).
	ticks  [int(time.Second / tick)]tickCount
	tickAt time.Time // the start of the newest tick
	asked  time.Time // when the lane was last asked for a call
	// The calls the lane started in the last second (its action's toward
	// every region are the pace's).
	own  window
	now  func() time.Time
	pace *pace  // the instance's
	a    action // the lane's action
	led  bool   // a new lane of the run that starts the night
}

// sharedLane paces one action's calls toward every region together, once a
// throttle has come: the regions may share one limit. Before the first
// throttle it lets every call through; after it, it is cut and climbs as a
// lane's rate is, and every call of the action waits for it as well as for
// its lane. So two regions' lanes called at once keep together to what
// they were let through together, split by their demand, and a lane alone
// may use the whole. (A throttle used to cap the other regions' lanes at
// the throttled lane's cut, which they kept when alone.)
type sharedLane struct {
	mu    sync.Mutex
	rate  float64   // calls a second toward every region; 0: no throttle yet
	peak  float64   // the rate last throttled
	left  float64   // the share of peak the cut left
	cutAt time.Time // when
	// tat is the action's next slot at the rate (the theoretical
	// arrival time of the generic cell rate algorithm, as ATM policed its
	// cells): a slot missed by less than the lane's catch-up may still be
	// taken, so a pause saves no burst larger than a lane's.
	tat   time.Time
	asked time.Time // when a call last asked for a slot
	// ceiling: every region's lane at its ceiling, as of the last cut.
	ceiling float64
}

// admit returns the earliest start at or after t that the shared lane lets
// through, and takes its slot. Idle time does not count toward growth.
func (s *sharedLane) admit(t, now time.Time, tolerance time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rate == 0 {
		return t
	}
	if idle := now.Sub(s.asked); idle > idleAfter {
		s.cutAt = s.cutAt.Add(idle)
	}
	s.asked = now
	spacing := time.Duration(float64(time.Second) / s.rate)
	// A slot missed by less than the tolerance may still be taken, as a
	// region's lane: a call that starts at once takes the oldest slot;
	// one the lane holds back takes the slot it starts in.
	slot := latest(s.tat, now.Add(-tolerance))
	start := latest(t, slot)
	if t.After(now) {
		slot = start
	}
	s.tat = slot.Add(spacing)
	return start
}

// cut cuts the shared lane on a throttle at now, once a window: to cutTo
// of the action's rate (its calls started lately, or for a first cut of
// the run that starts the night, the rate its lanes at work run at, if
// more), or within a tenth of the throttled lane's ceiling by twice the
// share of the action's answers throttled, if less, as a lane's cut;
// while settling, to what it was let through if less, halving at most. It
// says whether it cut: a throttle within the last cut's guard costs a slot.
func (s *sharedLane) cut(now time.Time, sec actionSecond, laneCeiling float64) bool {
	floor := laneCeiling * floorShare
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ceiling = sec.ceiling
	rate := sec.rate
	if s.rate > 0 {
		if now.Sub(s.cutAt) < cutGuard {
			// As a region's lane: the throttle costs a slot.
			s.tat = latest(s.tat, now).Add(time.Duration(float64(time.Second) / s.rate))
			return false
		}
		// From what the action ran at, if less: a rate above it (the
		// regions' lanes slower) grew without being tried.
		rate = min(s.rate, max(rate, floor))
	} else {
		rate = max(rate, sec.working)
	}
	left := leaves(rate, laneCeiling, sec.throttled, sec.answered)
	next := rate * left
	if settled := max(sec.passed, rate*halfShare); sec.settling && settled < next {
		// The curve back from a settling cut, as from a tenth.
		next, left = settled, cutTo
	}
	s.rate = max(next, floor)
	s.peak, s.left, s.cutAt, s.asked = s.rate/left, left, now, now
	return true
}

// grow moves the shared lane along its curve on a call let through.
func (s *sharedLane) grow(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rate > 0 {
		s.rate = min(s.ceiling, max(s.rate, cubic(s.peak, s.left, now.Sub(s.cutAt))))
	}
}

// cubic is CUBIC's curve, since a cut from peak to the share left of it:
// peak·(1 + growth·(t − K)³), left·peak at the cut, peak at K, then slowly
// faster.
func cubic(peak, left float64, since time.Duration) float64 {
	x := (since - recoverIn(left)).Seconds()
	return peak * (1 + growth*x*x*x)
}

// actionSecond is what an action's lanes toward every region did in the
// last second, as a throttle of one of them (l) finds it.
type actionSecond struct {
	// rate: the calls started, over the ticks in which any lane was
	// asked for one.
	rate float64
	// working: for a lane of the run that starts the night, the rates of
	// the lanes asked for a call in the last tick (early in the night the
	// second's calls say too little, the lanes having only just begun).
	working float64
	// passed: the rate let through. The answers let through, or if more,
	// the rate started by their share of the answers: the first counts
	// the calls still on their way as not let through, and early on those
	// are a good part of them.
	passed float64
	// The answers of the second, and of those the throttled, this one
	// with them.
	answered, throttled int
	// ceiling: every region's lane at the ceiling.
	ceiling float64
	others  bool // a lane other than l was asked for a call
	// settling: l is in its first settleIn.
	settling bool
}

// actionRates is what the action's lanes did in the last second, for a
// throttle of l.
func (p *pace) actionRates(l *lane, now time.Time) actionSecond {
	p.mu.Lock()
	var lanes []*lane
	for k, s := range p.lanes {
		if k.a == l.a {
			lanes = append(lanes, s)
		}
	}
	p.mu.Unlock()
	var sec actionSecond
	var ticks [int(time.Second / tick)]tickCount
	ownRate := 0.0
	for _, s := range lanes {
		s.mu.Lock()
		s.tickOf(now)
		for i, c := range s.ticks {
			ticks[i].passed += c.passed
			ticks[i].throttled += c.throttled
			ticks[i].asked = ticks[i].asked || c.asked
		}
		sec.ceiling += s.ceiling
		lately := !s.asked.IsZero() && now.Sub(s.asked) <= time.Second
		sec.others = sec.others || s != l && lately
		if l.led && (s == l || lately && now.Sub(s.asked) <= tick) {
			sec.working += s.rate
		}
		if s == l {
			ownRate, sec.settling = s.rate, now.Sub(s.born) < settleIn
		}
		s.mu.Unlock()
	}
	sum, span := sumOf(ticks)
	replies, ok := sum.passed+sum.throttled, sum.passed
	sec.rate = float64(p.actions[l.a].startedSince(now)) / span
	if sec.rate == 0 { // no call started in the second: its answer came late
		sec.rate = ownRate
	}
	sec.answered, sec.throttled = replies+1, replies-ok+1
	sec.passed = float64(ok) / span
	if replies > 0 {
		sec.passed = max(sec.passed, sec.rate*float64(ok)/float64(replies))
	}
	return sec
}

type tickCount struct {
	passed, throttled int
	asked             bool
}

// sumOf sums a second of ticks: its answers let through and throttled,
// and the time of it in which calls were asked for, a tick at least.
func sumOf(ticks [int(time.Second / tick)]tickCount) (sum tickCount, span float64) {
	asked := 0
	for _, c := range ticks {
		sum.passed, sum.throttled = sum.passed+c.passed, sum.throttled+c.throttled
		if c.asked {
			asked++
		}
	}
	return sum, (time.Duration(max(1, asked)) * tick).Seconds()
}

// take takes the next start time, spaces the one after by the rate, and
// says whether the call takes a slot it missed (a burst: a throttle of it
// says the burst was too large, not the rate).
func (l *lane) take() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if idle := now.Sub(l.asked); !l.asked.IsZero() && idle > idleAfter && !l.cutAt.IsZero() {
		// Back from idle: the curve resumes where it stood.
		l.cutAt = l.cutAt.Add(idle)
	}
	// A slot missed by less than the lane's catch-up (a worker busy
	// elsewhere for a moment) may still be taken; one missed by more is
	// gone: a lane left idle saves up no burst.
	slot := l.next
	if floor := now.Add(-l.catchUp); slot.Before(floor) {
		slot = floor
		if l.next.IsZero() || now.Sub(l.next) > time.Second {
			slot = now // a new lane, or one idle for a while
		}
	}
	// Nor more than its action missed: a lane whose region's turn comes
	// again catches up only the slots after the next one of the lane that
	// called last (if the regions share a limit, a bucket refilled only
	// those; its own idle time it would burst past a small one).
	w := &l.pace.actions[l.a]
	if due := w.nextSlot(); slot.Before(now) && slot.Before(due) {
		slot = earliest(due, now)
	}
	l.asked = now
	l.tickOf(now).asked = true
	rate := l.rate
	if l.cutAt.IsZero() {
		l.climb(now)
		// Spaced by the rate at the slot's time: calls asked for together
		// early in the climb are not all spaced by its first rate.
		rate = max(l.rate, l.climbed(slot))
	}
	spacing := time.Duration(float64(time.Second) / rate)
	l.next = slot.Add(spacing)
	start, caughtUp := slot, false
	if !slot.After(now) {
		start, caughtUp = now, now.Sub(slot) > time.Millisecond
		if caughtUp {
			l.burstUntil = now.Add(l.catchUp)
		}
		// A slot caught up, only while the action's calls toward every
		// region in the last second are fewer than the rate: a lane
		// whose region's turn comes again must not burst into a limit
		// the regions may share. Nor does such a lane, idle or behind,
		// start beside the call the other region's lane just started:
		// it keeps the action's spacing from it. (The calls after a
		// refused catch-up keep the burst's mark: ending it measured no
		// better for eight instances, README.)
		if w.full(now, rate) {
			if after := w.lastBy(now).Add(spacing); after.After(now) {
				start = after
			}
			l.next, caughtUp = start.Add(spacing), false
		}
	}
	// Never more than the rate's calls in any one second: a slot caught
	// up may not make a window or a small bucket count one too many.
	if open := l.own.opens(start, rate); open.After(start) {
		start, l.next, caughtUp = open, open.Add(spacing), false
	}
	// Nor before the action's shared lane lets it through, once a
	// throttle said the regions may share a limit.
	if at := l.pace.shared[l.a].admit(start, now, l.catchUp); at.After(start) {
		start, l.next, caughtUp = at, at.Add(spacing), false
	}
	l.own.add(start, l.next)
	w.add(start, l.next)
	// The calls right after a burst find a bucket it emptied: theirs are
	// the burst's throttles too.
	return start, caughtUp || start.Before(l.burstUntil)
}

// window is the start times of the calls of the last second.
type window struct {
	mu      sync.Mutex
	started []time.Time // in order
	next    time.Time   // the next slot of the lane that took the newest
}

// nextSlot is the next slot of the lane whose call started last.
func (w *window) nextSlot() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// opens is when the second before a call starting at t holds fewer than
// rate calls.
func (w *window) opens(t time.Time, rate float64) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := 0
	for i < len(w.started) && !w.started[i].After(t.Add(-time.Second)) {
		i++
	}
	w.started = w.started[i:]
	n := max(1, int(rate))
	if len(w.started) < n {
		return t
	}
	return w.started[len(w.started)-n].Add(time.Second)
}

// startedSince is how many calls started in the second before t.
func (w *window) startedSince(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.started {
		if s.After(t.Add(-time.Second)) && !s.After(t) {
			n++
		}
	}
	return n
}

// full reports whether the second before t holds rate calls or more.
func (w *window) full(t time.Time, rate float64) bool { return w.opens(t, rate).After(t) }

// lastBy is when the newest call started by t (zero: none in the second).
func (w *window) lastBy(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.started) - 1; i >= 0; i-- {
		if !w.started[i].After(t) {
			return w.started[i]
		}
	}
	return time.Time{}
}

// add notes a call starting at t, and next, the slot after it of the lane
// that took it.
func (w *window) add(t, next time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.started); n > 0 && t.Before(w.started[n-1]) {
		t = w.started[n-1] // keeps the order; the count is what matters
	} else {
		w.next = next
	}
	w.started = append(w.started, t)
}

// climb is the slow start: the rate holds at startShare of the ceiling for
// startHold, then doubles every slowStart, until the first throttle.
func (l *lane) climb(now time.Time) {
	l.rate = max(l.rate, l.climbed(now))
}

// climbed is the slow start's rate at t.
func (l *lane) climbed(t time.Time) float64 {
	doublings := max(0, float64(t.Sub(l.born)-startHold)) / float64(slowStart)
	return min(l.ceiling, l.ceiling*startShare*math.Exp2(doublings))
}

// wait blocks until the lane lets a call start, or ctx ends.
// It reports whether the call takes a slot it missed.
func (l *lane) wait(ctx context.Context) (caughtUp bool, err error) {
	start, caughtUp := l.take()
	d := start.Sub(l.now())
	if d <= 0 {
		return caughtUp, ctx.Err()
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false, context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return caughtUp, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// tickOf moves the ticks on to now and returns the newest.
func (l *lane) tickOf(now time.Time) *tickCount {
	if now.Sub(l.tickAt) >= time.Second {
		l.tickAt, l.ticks = now.Truncate(tick), [len(l.ticks)]tickCount{}
	}
	for now.Sub(l.tickAt) >= tick {
		l.tickAt = l.tickAt.Add(tick)
		copy(l.ticks[1:], l.ticks[:len(l.ticks)-1])
		l.ticks[0] = tickCount{}
	}
	return &l.ticks[0]
}

// passedRate is the rate the lane was let through lately: its calls let
// through in the last second, over the ticks of it in which it was asked
// for calls.
func (l *lane) passedRate(now time.Time) float64 {
	l.tickOf(now)
	sum, span := sumOf(l.ticks)
	return float64(sum.passed) / span
}

// paced is what an answer did to the pacing.
type paced int

const (
	kept    paced = iota // the rates and catch-up as they were (or growing)
	trimmed              // a throttled burst: a slot off the lane's catch-up
	cutDown              // a throttle: the lane's rate cut, or the action's shared lane's
)

// answeredCall is answered for a call that took a slot it missed
// (caughtUp): its throttle takes a slot off the lane's catch-up and leaves
// the rate. It says what the answer did.
func (l *lane) answeredCall(throttled, caughtUp bool) paced {
	sh := &l.pace.shared[l.a]
	if throttled && caughtUp {
		l.mu.Lock()
		l.catchUp = max(0, l.catchUp-time.Duration(float64(time.Second)/l.rate))
		l.mu.Unlock()
		return trimmed
	}
	now := l.now()
	if !throttled {
		l.answer(false, false)
		sh.grow(now)
		return kept
	}
	// A throttle cuts the action's shared lane, and the region's: either
	// cut is a cut.
	sec := l.pace.actionRates(l, now)
	sharedCut := sh.cut(now, sec, l.ceiling)
	if laneCut := l.answer(true, sec.others); laneCut || sharedCut {
		return cutDown
	}
	return kept
}

// answer moves the lane's rate on an answer, and says whether it was cut.
// Beside the action's lanes toward other regions (others), a settling
// lane's cut is an ordinary one: what it was let through is its part of a
// limit the regions may share, which the action's shared lane paces.
func (l *lane) answer(throttled, others bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if throttled {
		l.tickOf(now).throttled++
		if !l.cutAt.IsZero() && now.Sub(l.cutAt) < cutGuard {
			l.next = l.next.Add(time.Duration(float64(time.Second) / l.rate))
			return false
		}
		// A slow start ends by half. Otherwise cut to cutTo; or, while
		// the lane settles alone and was let through less than that
		// lately (several instances finding their shares), to what was
		// let through, halving at most.
		rate, left := l.rate*halfShare, cutTo
		switch climbing := l.cutAt.IsZero() && l.rate < l.ceiling; {
		case climbing: // by half
		case now.Sub(l.born) < settleIn && !others:
			rate = min(l.rate*cutTo, max(l.passedRate(now), rate))
		default:
			sum, _ := sumOf(l.ticks) // moved on to now above
			left = leaves(l.rate, l.ceiling, sum.throttled, sum.passed+sum.throttled)
			rate = l.rate * left
		}
		l.rate = max(rate, l.ceiling*floorShare)
		// The curve back starts at the new rate: it comes back to
		// rate/left (the rate throttled, after an ordinary cut).
		l.peak, l.left, l.cutAt = l.rate/left, left, now
		return true
	}
	l.tickOf(now).passed++
	l.catchUp = min(catchUp, l.catchUp+catchUpBack)
	if l.rate >= l.ceiling {
		return false
	}
	if l.cutAt.IsZero() {
		l.climb(now)
		return false
	}
	l.rate = min(l.ceiling, max(l.rate, cubic(l.peak, l.left, now.Sub(l.cutAt))))
	return false
}

// current is the lane's rate, for logs and tests.
func (l *lane) current() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return math.Round(l.rate*100) / 100
}
