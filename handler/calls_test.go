package handler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// reserve is take's start time alone, for the model tests.
func (l *lane) reserve() time.Time {
	start, _ := l.take()
	return start
}

// answered is an answer to a call that took no missed slot.
func (l *lane) answered(throttled bool) { l.answeredCall(throttled, false) }

// fakeTime is a clock a test moves by hand.
type fakeTime struct{ t time.Time }

func (f *fakeTime) now() time.Time          { return f.t }
func (f *fakeTime) advance(d time.Duration) { f.t = f.t.Add(d) }

func pacedAt(qps float64) (*pace, *fakeTime) {
	clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
	p := newPace(qps)
	p.now = clock.now
	return p, clock
}

// warm takes a new lane through its slow start, to the ceiling.
func warm(l *lane) {
	l.mu.Lock()
	l.born = l.born.Add(-time.Minute)
	l.mu.Unlock()
	for range 100 {
		l.answered(false)
	}
}

// twoRegions is an instance's version reads toward two regions, both lanes
// warm, at 100 a second.
func twoRegions() (clock *fakeTime, sh, hz *lane) {
	p, clock := pacedAt(100)
	sh, hz = p.lane("cn-shanghai", readVersions), p.lane("cn-hangzhou", readVersions)
	warm(sh)
	warm(hz)
	return clock, sh, hz
}

// Calls start evenly spaced at the rate, the first at once: no burst, which
// a one-second window or a small bucket would count against the function.
func TestLaneSpacesCallsEvenly(t *testing.T) {
	for _, qps := range []float64{100, 25, 0.5} {
		p, clock := pacedAt(qps)
		l := p.lane("cn-shanghai", readVersions)
		warm(l)
		t0 := clock.now()
		for i := range 5 {
			want := t0.Add(time.Duration(float64(i) * float64(time.Second) / qps))
			if got := l.reserve(); !got.Equal(want) {
				t.Fatalf("%v/s: call %d starts at +%v, want +%v", qps, i, got.Sub(t0), want.Sub(t0))
			}
		}
		// A lane left idle does not save up a burst. (A slot missed by
		// less than catchUp may still be taken.)
		clock.advance(time.Minute)
		l.reserve()
		if next := l.reserve(); next.Sub(clock.now()) != time.Duration(float64(time.Second)/qps) {
			t.Fatalf("%v/s: after an idle minute the second call starts at +%v", qps, next.Sub(clock.now()))
		}
	}
}

// The service counts each action's calls on its own, and nobody knows
// whether regions share a limit: each action toward each region has a lane.
func TestLanesByRegionAndAction(t *testing.T) {
	p, _ := pacedAt(100)
	c := newCaller(p, time.Time{}, time.Time{})
	if c.lane("cn-shanghai", readVersions) != c.lane("cn-shanghai", readVersions) {
		t.Fatal("one action toward one region has two lanes")
	}
	if c.lane("cn-shanghai", readVersions) == c.lane("cn-shanghai", requestUpgrade) ||
		c.lane("cn-shanghai", readVersions) == c.lane("eu-central-1", readVersions) {
		t.Fatal("two actions, or two regions, share a lane")
	}
	if (&caller{}).lane("cn-shanghai", readDevices) != nil {
		t.Error("a caller without a pace (the ledger's) is paced")
	}
}

// A throttled answer cuts the rate at once, once a window (by a tenth, one
// of the second's two answers throttled); successes bring it back to the
// rate that was throttled after recoverIn, never past the ceiling.
func TestLaneCutsOnThrottlingAndRecovers(t *testing.T) {
	p, clock := pacedAt(100)
	l := p.lane("cn-shanghai", readDevices)
	warm(l)
	clock.advance(time.Second)
	l.answered(false)
	if l.current() != 100 {
		t.Fatalf("success at the ceiling: %v", l.current())
	}
	if got := l.answeredCall(true, false); got != cutDown || l.current() != 100*cutTo {
		t.Fatalf("after a throttle: %v (%v), want %v (cut)", l.current(), got, 100*cutTo)
	}
	if got := l.answeredCall(true, false); got != kept || l.current() != 100*cutTo { // a call sent before the cut
		t.Fatalf("a second throttle in the same window cut again: %v", l.current())
	}
	clock.advance(recoverIn(cutTo) / 2)
	l.answered(false)
	if r := l.current(); r <= 100*cutTo || r >= 100 {
		t.Fatalf("half way back: %v", r)
	}
	clock.advance(recoverIn(cutTo) / 2)
	l.answered(false)
	if r := l.current(); r < 99.9 {
		t.Fatalf("after recoverIn: %v, want back at 100", r)
	}
	clock.advance(10 * recoverIn(cutTo))
	l.answered(false)
	if l.current() != 100 {
		t.Fatalf("past the ceiling: %v", l.current())
	}
	clock.advance(cutGuard)
	for range 100 {
		clock.advance(cutGuard)
		l.answered(true)
	}
	if l.current() != 1 {
		t.Fatalf("the floor is a hundredth of the ceiling: %v", l.current())
	}
}

// A lane settling (in its first settleIn) and throttled while let through
// much less than its rate lately falls to what it was let through, halving
// at most: instances joining others find their shares fast. A settled lane
// cuts to cutTo whatever one second let through: a deep cut on one bad
// second, climbed back from along the lane's own curve, left eight
// instances' shares far apart by the end of a night, and the slowest
// one's last batch was the night's tail.
func TestASettledLaneCutsByATenth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		settled bool
		want    float64
	}{
		{"settling", false, 100 * halfShare},
		{"settled", true, 100 * cutTo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clock := pacedAt(100)
			l := p.laneFor("cn-shanghai", readVersions, true) // at the ceiling
			if tc.settled {
				clock.advance(settleIn)
			}
			// A second of calls at the rate, a fifth of them let through.
			for i := range 100 {
				clock.advance(10 * time.Millisecond)
				l.reserve()
				if i%5 == 0 {
					l.answered(false)
				}
			}
			if l.answered(true); l.current() != tc.want {
				t.Fatalf("throttled, let through 20 calls in the last second: %v, want %v", l.current(), tc.want)
			}
		})
	}
}

// A throttle while the lane's cut waits out its window does not cut again,
// but its call's slot is lost: the lane's next call starts a spacing later.
// While most of its calls are throttled (the window full of calls from
// before the cut, or from other instances) the lane sends about half as
// many; a throttle now and then costs it nothing more than the call.
func TestAThrottleAfterACutCostsTheLaneASlot(t *testing.T) {
	p, _ := pacedAt(100)
	l := p.lane("cn-shanghai", readVersions)
	warm(l)
	l.answered(true)
	spacing := time.Duration(float64(time.Second) / l.rate)
	a := l.reserve()
	if got := l.answeredCall(true, false); got != kept {
		t.Fatalf("a throttle in the cut's window: %v, want kept", got)
	}
	if b := l.reserve(); b.Sub(a) != 2*spacing {
		t.Fatalf("after a throttle in the cut's window the next call starts %v after the one before, want %v (a slot lost)", b.Sub(a), 2*spacing)
	}
}

// A throttle that cuts the action's shared lane but not its region's lane
// (still in the guard of its own cut) is a cut: the run's rateCuts says what
// throttling did to the pacing, every lane's share of it.
func TestAThrottleThatCutsOnlyTheSharedLaneIsACut(t *testing.T) {
	clock, sh, hz := twoRegions()
	shared := &sh.pace.shared[readVersions]
	clock.advance(time.Second)
	sh.answered(true) // Shanghai's lane and the shared lane cut
	clock.advance(cutGuard / 2)
	hz.answered(true) // Hangzhou's lane cut; the shared lane is in its guard
	clock.advance(cutGuard/2 + time.Millisecond)
	before := shared.rate
	got := hz.answeredCall(true, false) // Hangzhou's lane in its guard, the shared lane past its own
	if shared.rate >= before {
		t.Fatalf("the shared lane was not cut: %v, was %v", shared.rate, before)
	}
	if got != cutDown {
		t.Fatalf("a throttle that cut the shared lane: %v, want cutDown", got)
	}
}

// Near its ceiling, a lane throttled once among a second's hundred answers
// (a window that counted one call too many) is cut by twice the share
// throttled; throttled more, by a tenth at most. Below it, by a tenth.
func TestAThrottleNearTheCeilingCutsByTheShareThrottled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		qps       float64
		throttled int // of the second's hundred answers, this one with them
		want      float64
	}{
		{"one at the ceiling", 100, 1, 98},
		{"many at the ceiling", 100, 20, 90},
		{"one below it", 200, 1, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clock := pacedAt(tc.qps)
			l := p.lane("cn-shanghai", readVersions)
			l.mu.Lock()
			// At 100 a second since a cut long ago, and the second's answers.
			l.rate, l.peak, l.left, l.cutAt, l.born = 100, 100, cutTo, clock.now().Add(-time.Minute), clock.now().Add(-time.Minute)
			l.tickAt, l.ticks[0] = clock.now(), tickCount{passed: 100 - tc.throttled, throttled: tc.throttled - 1, asked: true}
			l.mu.Unlock()
			if l.answered(true); l.current() != tc.want {
				t.Fatalf("cut to %v, want %v", l.current(), tc.want)
			}
		})
	}
}

// A slow start ends as TCP's does: the first throttle halves the rate. The
// lane doubled its rate within the last slowStart, and a window lets its
// first calls through whatever their rate, so the rate let through says
// nothing yet of the lane's share. Here the lane's calls came in a burst
// after a pause (its first chunk's upgrades, say): all let through, at
// nearly the lane's rate.
func TestASlowStartEndsByHalf(t *testing.T) {
	p, clock := pacedAt(100)
	l := p.lane("cn-shanghai", readVersions)
	clock.advance(2 * slowStart)
	for burst := clock.now().Add(tick); clock.now().Before(burst); {
		l.reserve()
		l.answered(false)
		clock.advance(time.Duration(float64(time.Second) / l.rate))
	}
	rate := l.rate
	if l.answered(true); l.current() != math.Round(rate*halfShare*100)/100 {
		t.Fatalf("a slow start at %.2f/s throttled: %v, want half", rate, l.current())
	}
	// At the ceiling the climb is over: a throttle is an ordinary cut.
	l2 := p.lane("cn-shanghai", requestUpgrade)
	warm(l2)
	clock.advance(time.Second) // the only answer of its second: by a tenth
	if l2.answered(true); l2.current() != 100*cutTo {
		t.Fatalf("a lane at its ceiling throttled: %v, want %v", l2.current(), 100*cutTo)
	}
}

// A new instance does not start at its ceiling (others may be sharing the
// limit at their full shares): its lanes start at startShare of it and
// climb fast while nothing is throttled, the rate doubling every
// slowStart after a hold of half a second, so that a lone instance is at
// its ceiling within a second and a half. A throttle ends the climb.
func TestLaneStartsSlowAndClimbs(t *testing.T) {
	p, clock := pacedAt(100)
	l := p.lane("cn-shanghai", readVersions)
	if l.current() != 100*startShare {
		t.Fatalf("a new lane starts at %v", l.current())
	}
	// It holds its start rate for half a window first: a window lets its
	// first calls through whatever their rate.
	clock.advance(startHold - tick)
	if l.answered(false); l.current() != 100*startShare {
		t.Fatalf("%v into its hold a new lane is at %v", startHold-tick, l.current())
	}
	clock.advance(tick + slowStart)
	if l.answered(false); l.current() != 2*100*startShare {
		t.Fatalf("a slowStart after its hold a new lane is at %v, want double its start", l.current())
	}
	// Calls answered at the lane's rate.
	var took time.Duration
	for l.current() < 100 && took < time.Minute {
		d := time.Duration(float64(time.Second) / l.rate)
		clock.advance(d)
		took += d
		l.answered(false)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("the climb from %v/s to the ceiling took %v", 100*startShare, took)
	}
	l2 := p.lane("cn-shanghai", requestUpgrade)
	clock.advance(slowStart)
	l2.answered(true)
	climbed := l2.current()
	clock.advance(time.Second)
	l2.reserve()
	l2.answered(false)
	if climbed > 2*100*startShare || l2.current() > climbed/cutTo {
		t.Fatalf("after a throttle the lane still climbs fast: %v, then %v", climbed, l2.current())
	}
}

// The run that starts the night (the timer's) shares the limit with no
// instance of the function yet: its new lanes start at the ceiling. Every
// new lane of a run that follows (a worker's, which may join others)
// starts slow.
func TestTheNightsFirstRunStartsAtTheCeiling(t *testing.T) {
	p, _ := pacedAt(100)
	if r := p.laneFor("cn-shanghai", readVersions, true).current(); r != 100 {
		t.Fatalf("the night's first lane starts at %v, want the ceiling", r)
	}
	if r := p.lane("cn-shanghai", requestUpgrade).current(); r != 100*startShare {
		t.Fatalf("a worker's new lane starts at %v, want %v", r, 100*startShare)
	}
	c := newCaller(p, time.Time{}, time.Time{})
	c.leads = true
	if r := c.lane("cn-shanghai", readDevices).current(); r != 100 {
		t.Fatalf("a leading caller's new lane starts at %v, want the ceiling", r)
	}
}

// Regions may share a limit: a lane toward a new region starts where the
// slowest lane of its action stands, and throttles beside another region's
// lane pace the action's calls toward every region together at what they
// were let through together (its shared lane). A lane beside others is cut
// by a tenth, settling or not: what it was let through there is its part of
// the shared lane, and alone it may use the whole. Other actions keep their
// rates.
func TestThrottlesBesideAnotherRegionPaceTheActionTogether(t *testing.T) {
	p, clock := pacedAt(100)
	sh := p.laneFor("cn-shanghai", readVersions, true) // at the ceiling, settling
	hz := p.laneFor("cn-hangzhou", readVersions, true)
	up := p.lane("cn-shanghai", requestUpgrade)
	warm(up)
	// Two seconds of both regions' calls asked for at 100 a second each,
	// against one limit of 100 counted in fixed windows.
	flow := fixed()
	for i := range 400 {
		clock.advance(5 * time.Millisecond)
		l := sh
		if i%2 == 1 {
			l = hz
		}
		start, caughtUp := l.take()
		l.answeredCall(!flow(start), caughtUp)
	}
	for _, l := range []*lane{sh, hz} {
		if l.current() < 100*cutTo*cutTo {
			t.Fatalf("after throttles beside the other region: %v here, %v in the other, want cut by a tenth at most once a second", sh.current(), hz.current())
		}
	}
	if up.current() != 100 {
		t.Fatalf("another action's lane was cut: %v", up.current())
	}
	if bj := p.lane("cn-beijing", readVersions); bj.current() != min(sh.current(), hz.current()) {
		t.Fatalf("a third region's lane starts at %v", bj.current())
	}
	// Together, the two regions' calls keep near the 100 let through (the
	// shared lane climbs back along its curve, and catches up a tenth of a
	// second's slots after a pause), not at their lanes' rates, over 160
	// a second: 131 calls take a second.
	clock.advance(time.Second)
	first := sh.reserve()
	last := first
	for i := range 130 {
		if i%2 == 0 {
			last = hz.reserve()
		} else {
			last = sh.reserve()
		}
	}
	if got := last.Sub(first); got < time.Second {
		t.Fatalf("131 calls of both regions together took %v, want at least a second", got)
	}
	// Alone, a region's lane runs at its own rate, not at half of it.
	clock.advance(2 * time.Second)
	rate := sh.current()
	first = sh.reserve()
	for range int(rate) {
		last = sh.reserve()
	}
	if got := last.Sub(first); got > 1010*time.Millisecond {
		t.Fatalf("%d calls of one region alone took %v, want a second at its rate of %v", int(rate)+1, got, rate)
	}
}

// The night's first run makes its first cut of a shared lane from the rate
// its lanes at work run at. Early in the night its second of calls says too
// little: in a traced night of 1,000 gateways (1.211 × the bound, the token
// bucket), one region's version reads had run for 180 ms and both regions'
// for 90 ms when a read was throttled; the second's rate said 87.5 a second,
// the shared lane was cut to 79, and the reads went at about 80 a second to
// the night's end.
func TestTheNightsFirstSharedCutGoesFromTheLanesAtWork(t *testing.T) {
	p, clock := pacedAt(100)
	sh := p.laneFor("cn-shanghai", readVersions, true)
	hz := p.laneFor("cn-hangzhou", readVersions, true)
	clock.advance(70 * time.Millisecond) // the first listing page
	for range 18 {
		clock.advance(10 * time.Millisecond)
		sh.reserve()
		sh.answered(false)
	}
	for range 9 {
		clock.advance(10 * time.Millisecond)
		for _, l := range []*lane{sh, hz} {
			l.reserve()
			l.answered(false)
		}
	}
	sh.answered(true)
	// The shared lane is cut from the lanes' 200 a second to 100 (halving at
	// most while settling), so 100 calls of both regions take a second.
	clock.advance(time.Second)
	first, last := sh.reserve(), time.Time{}
	for i := range 99 {
		if i%2 == 0 {
			last = hz.reserve()
		} else {
			last = sh.reserve()
		}
	}
	if got := last.Sub(first); got > time.Second {
		t.Fatalf("100 calls of both regions took %v, want at most a second (the shared lane at 100)", got)
	}
}

// One instance alone at its ceiling, which is the limit: the service counts
// a call when it arrives, and arrivals wander by a few milliseconds from
// the starts the lane spaced, so a window now and then holds one call too
// many. Such a throttle says the rate is about right. Over ten minutes of
// eight workers taking the two regions in turns (a batch each, as one
// instance sweeps a fan-out night), on sliding windows that count both
// together, at least 98% of the limit gets through. (Cut by a tenth at each
// stray throttle, and back in 7.9 s, the lanes ran at 96.8% of it.)
func TestStrayThrottlesAtTheLimitCostLittle(t *testing.T) {
	p, clock := pacedAt(100)
	begin := clock.now()
	flow := sliding()
	regions := []string{"cn-shanghai", "cn-hangzhou"}
	rng := rand.New(rand.NewPCG(5, 6))
	const length = 10 * time.Minute
	through, throttled := runWorkers(clock, 8, length, func(now time.Time) (*lane, flowModel, time.Duration) {
		region := int(now.Sub(begin)/(500*time.Millisecond)) % 2
		// On its way for 13 to 17 ms.
		return p.laneFor(regions[region], readVersions, true), flow, 13*time.Millisecond + time.Duration(rng.IntN(5))*time.Millisecond
	})
	share := float64(through) / length.Seconds() / 100
	thr := float64(throttled) / float64(through+throttled)
	t.Logf("%.1f%% of the limit through, %.2f%% throttled", 100*share, 100*thr)
	if share < 0.98 || thr > 0.01 {
		t.Fatalf("%.1f%% of the limit through, %d of %d calls throttled", 100*share, throttled, through+throttled)
	}
}

// Regions called at once (a sweep's chunks mix them), as one instance's
// workers call them: eight at a time, each call to a region drawn at random,
// 30 ms of latency, a throttled call counted and not retried. The timer's
// run starts at the ceiling. If the regions share one limit of 100, the
// instance gets at least 95 a second through with at most 1% of its calls
// throttled over a minute, on every shape (with a lane settling beside the
// other cut to what it was let through, and the other capped at that cut:
// 90.0, 93.0 and 95.8). If each region's limit is its own, 100 and 50, it
// gets more than 70% of both through: were the larger held to the smaller,
// two thirds. (Each throttle of the smaller region beside the other's calls
// cuts the shared lane, which comes back only over seconds: 71-74%, and
// 66-76% with the cut capping the other lane.)
func TestRegionsCalledTogetherFindTheirLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flow   func() flowModel
		half   func() flowModel // the second region's own limit
		shared bool
	}{
		{"sliding/shared", sliding, nil, true},
		{"fixed/shared", fixed, nil, true},
		{"bucket/shared", bucket, nil, true},
		{"sliding/own", sliding, func() flowModel { return sagsim.NewLimiter(sagsim.SlidingWindow, 50, 0) }, false},
		{"bucket/own", bucket, func() flowModel { return sagsim.NewLimiter(sagsim.TokenBucket, 50, 5) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clock := pacedAt(100)
			regions := []string{"cn-shanghai", "cn-hangzhou"}
			// The calls go to the regions as their limits let them.
			flows, limit, toSecond := []flowModel{tc.flow(), tc.flow()}, 100.0, 0.5
			if tc.shared {
				flows[1] = flows[0]
			} else {
				flows[1], limit, toSecond = tc.half(), 150, 1.0/3
			}
			rng := rand.New(rand.NewPCG(1, 2))
			through, throttled := runWorkers(clock, 8, time.Minute, func(time.Time) (*lane, flowModel, time.Duration) {
				region := 0
				if rng.Float64() < toSecond {
					region = 1
				}
				return p.laneFor(regions[region], readVersions, true), flows[region], modelLatency / 2
			})
			share := float64(through) / 60 / limit
			thr := float64(throttled) / float64(through+throttled)
			t.Logf("%.1f%% of the limits through, %.2f%% throttled", 100*share, 100*thr)
			if min := map[bool]float64{true: 0.95, false: 0.70}[tc.shared]; share < min || thr > 0.01 {
				t.Fatalf("%.1f%% of the limits through, %d of %d calls throttled", 100*share, throttled, through+throttled)
			}
		})
	}
}

// The curve back measures how long a rate held without a throttle: time a
// lane spent idle (its region's batch done, the next one elsewhere) does not
// count, so it does not come back at a rate it never tried.
func TestIdleTimeDoesNotCountTowardGrowth(t *testing.T) {
	p, clock := pacedAt(100)
	l := p.lane("cn-shanghai", readVersions)
	warm(l)
	l.reserve()
	l.answered(true)
	cutRate := l.current()
	clock.advance(time.Minute) // idle
	l.reserve()
	l.answered(false)
	if l.current() != cutRate {
		t.Fatalf("an idle minute raised the rate from %v to %v", cutRate, l.current())
	}
	for range 20 { // busy: the curve goes on
		clock.advance(time.Second)
		l.reserve()
		l.answered(false)
	}
	if l.current() <= cutRate {
		t.Fatalf("20 busy seconds left the rate at %v", l.current())
	}
}

// However calls are asked for (bursts, pauses under catchUp, pauses over
// it), a lane never starts more than its rate's calls in any one second,
// which is what a sliding window counts; and a slot caught up toward one
// region does not take the action over the rate when another region's
// calls fill the last second.
func TestNoSecondHoldsMoreThanTheRate(t *testing.T) {
	p, clock := pacedAt(50)
	l := p.lane("cn-shanghai", readVersions)
	warm(l)
	var starts []time.Time
	pauses := []time.Duration{0, 0, 3 * time.Millisecond, 0, 70 * time.Millisecond, 0, 0, 0, 120 * time.Millisecond, 5 * time.Millisecond}
	for i := range 2000 {
		clock.advance(pauses[i%len(pauses)])
		at := l.reserve()
		if at.After(clock.now()) {
			clock.t = at
		}
		starts = append(starts, at)
	}
	for i := range starts {
		j := i
		for j < len(starts) && starts[j].Sub(starts[i]) < time.Second {
			j++
		}
		if j-i > 50 {
			t.Fatalf("%d calls started in the second from +%v, rate 50", j-i, starts[i].Sub(starts[0]))
		}
	}
	// The other region's lane, its turn come again: the last second holds
	// the rate's calls of the action already, so it catches up no slot,
	// and its first call keeps the rate's spacing from the action's last.
	hz := p.lane("cn-hangzhou", readVersions)
	hz.reserve()
	clock.advance(300 * time.Millisecond)
	var last time.Time
	var reserved []time.Time
	for range 60 {
		clock.advance(10 * time.Millisecond)
		reserved = append(reserved, l.reserve())
	}
	for _, at := range reserved {
		if !at.After(clock.now()) {
			last = at
		}
	}
	a, b := hz.reserve(), hz.reserve()
	if a != last.Add(20*time.Millisecond) || b.Sub(a) != 20*time.Millisecond {
		t.Fatalf("back to the other region: calls at +%v and +%v after the action's last, want +20ms and +40ms (no slot caught up)", a.Sub(last), b.Sub(last))
	}
}

// A lane whose region's turn comes again, idle or a few slots behind,
// while the other region's calls fill the action's second: its first call
// keeps the spacing from the call the other lane just started, rather than
// starting beside it (two calls at once, one too many for a limit the
// regions share: in the model below, one instance whose regions take turns
// was throttled so at most of its turns).
func TestARegionTakingOverKeepsTheActionsSpacing(t *testing.T) {
	clock, sh, hz := twoRegions()
	hz.reserve()
	clock.advance(50 * time.Millisecond)
	turn := func(d time.Duration) {
		t.Helper()
		var just time.Time
		for range int(d/(10*time.Millisecond)) + 1 { // each call as its slot comes
			just = sh.reserve()
			clock.t = just
		}
		if at := hz.reserve(); !at.Equal(just.Add(10 * time.Millisecond)) {
			t.Fatalf("hangzhou's turn after %v: its call starts %v after shanghai's last, want 10ms", d, at.Sub(just))
		}
	}
	turn(time.Second)            // idle a second: a fresh start
	turn(500 * time.Millisecond) // idle half a second: slots missed
}

// A lane whose region's turn comes again catches up only the slots its
// action missed since the other region's lane called: if the regions share
// a limit, those are all a token bucket refilled. Catching up its own idle
// time, it burst up to a tenth of a second's calls, past a bucket of that
// size (one instance, 2,000 gateways on a bucket of ten: most batches' first
// version reads went eight to eleven at once, and four of them were
// throttled in the night, each taking a slot off the catch-up).
func TestARegionsTurnCatchesUpOnlyTheActionsMissedSlots(t *testing.T) {
	clock, sh, hz := twoRegions()
	hz.reserve()
	clock.advance(400 * time.Millisecond)
	for range 30 { // shanghai's batch, each call as its slot comes
		clock.t = sh.reserve()
	}
	clock.advance(60 * time.Millisecond) // the batch's edge
	n := 0
	for hz.reserve().Equal(clock.now()) {
		n++
	}
	if n != 6 {
		t.Fatalf("hangzhou's turn 60 ms after shanghai's last call: %d calls start at once, want 6 (the slots the action missed)", n)
	}
}

// A burst of caught-up slots can overflow a token bucket smaller than
// catchUp's worth of calls: each caught-up call throttled takes one missed
// slot off what the lane catches up, and leaves the rate (the burst was too
// large, not the rate), as does one right after such a burst; so one burst
// too large finds the bucket's size. Calls let through give the catch-up
// back slowly.
func TestAThrottledBurstShrinksTheCatchUp(t *testing.T) {
	p, clock := pacedAt(100)
	l := p.lane("cn-shanghai", readVersions)
	warm(l)
	caught := func() int {
		l.reserve()
		clock.advance(200 * time.Millisecond) // a pause
		n := 0
		for l.reserve().Equal(clock.now()) {
			n++
		}
		clock.advance(2 * time.Second)
		return n
	}
	if n := caught(); n != 11 {
		t.Fatalf("after a pause %d calls start at once, want 11 (the one due and 100 ms of missed slots)", n)
	}
	l.reserve()
	clock.advance(200 * time.Millisecond)
	if _, caughtUp := l.take(); !caughtUp {
		t.Fatal("a call after a pause does not take a missed slot")
	}
	if got := l.answeredCall(true, true); got != trimmed {
		t.Fatalf("a throttled burst: %v, want trimmed", got)
	}
	clock.advance(2 * time.Second)
	if l.current() != 100 {
		t.Fatalf("a throttled burst cut the rate to %v", l.current())
	}
	if n := caught(); n != 10 {
		t.Fatalf("after a burst with one call throttled %d calls start at once, want 10 (a slot less)", n)
	}
	// A bucket of five: five of a burst of ten are throttled.
	for range 5 {
		l.answeredCall(true, true)
	}
	if n := caught(); n != 5 {
		t.Fatalf("after a burst with five calls throttled %d calls start at once, want 5", n)
	}
	// A slot comes back in four seconds of calls let through: a sliding
	// window's edge throttles a caught-up call now and then, and a long
	// night's catch-up must not wear away between them.
	for range 400 {
		l.answered(false)
	}
	if n := caught(); n != 6 {
		t.Fatalf("400 calls let through later, %d start at once, want 6 (a slot back)", n)
	}
	for range 10000 {
		l.answered(false)
	}
	if n := caught(); n != 11 {
		t.Fatalf("10,000 calls let through later, %d start at once: the catch-up did not come back", n)
	}
	// A call right after a burst finds the bucket the burst emptied: its
	// throttle is the burst's too. One long after is the rate's.
	l.reserve()
	clock.advance(200 * time.Millisecond)
	for l.reserve().Equal(clock.now()) {
	}
	if _, burst := l.take(); !burst {
		t.Fatal("a call just after a burst is not taken for part of it")
	}
	clock.advance(2 * time.Second)
	l.reserve()
	if _, burst := l.take(); burst {
		t.Fatal("a call two seconds after a burst is taken for part of it")
	}
}

// API_QPS is per instance: every run of one process draws on one pace, so an
// invocation right after another keeps the spacing (and what throttling
// taught it).
func TestRunsOfOneInstanceShareItsPace(t *testing.T) {
	h := &Handler{Config: Config{APIQPS: 100}}
	first := h.instancePace()
	warm(first.lane("cn-shanghai", requestUpgrade))
	first.lane("cn-shanghai", requestUpgrade).answered(true)
	second := h.instancePace()
	if second != first || second.lane("cn-shanghai", requestUpgrade).current() >= 100 {
		t.Error("the second run got a fresh pace: the instance would exceed API_QPS")
	}
	h.Config.APIQPS = 20
	if third := h.instancePace(); third == first || third.lane("cn-shanghai", readVersions).current() != 20*startShare {
		t.Error("a changed API_QPS keeps the old rate")
	}
}

// flowModel is a service's flow control in the models below: the
// emulator's own limiters (sagsim), asked whether a call arriving at t is
// let through.
type flowModel = func(t time.Time) bool

// modelLatency is a model call's time from its start to its answer.
const modelLatency = 30 * time.Millisecond

// modelWorker is a worker of a model instance, one call at a time: its call
// reaches the service (flow) at arrives and is answered modelLatency after
// its start.
type modelWorker struct {
	l              *lane // nil: no call
	flow           flowModel
	start, arrives time.Time
	caughtUp       bool // the call took a slot it missed
	sent, ok       bool
}

// runWorkers runs n model workers for length, each taking its next call
// from next when it has none, and counts their calls let through and
// throttled.
func runWorkers(clock *fakeTime, n int, length time.Duration, next func(now time.Time) (*lane, flowModel, time.Duration)) (through, throttled int) {
	workers := make([]modelWorker, n)
	for end := clock.now().Add(length); clock.now().Before(end); clock.advance(time.Millisecond) {
		now := clock.now()
		for i := range workers {
			w := &workers[i]
			if answered, ok := w.step(now); answered && ok {
				through++
			} else if answered {
				throttled++
			}
			if w.l == nil {
				w.call(next(now))
			}
		}
	}
	return through, throttled
}

// call starts the worker's next call on l, toward flow, onWay to it.
func (w *modelWorker) call(l *lane, flow flowModel, onWay time.Duration) {
	w.l, w.flow = l, flow
	w.start, w.caughtUp = l.take()
	w.arrives, w.sent = w.start.Add(onWay), false
}

// step moves the worker's call on to now: it reaches the service, or its
// answer comes (answered; ok: let through).
func (w *modelWorker) step(now time.Time) (answered, ok bool) {
	if w.l != nil && !w.sent && !w.arrives.After(now) {
		w.sent, w.ok = true, w.flow(w.arrives)
	}
	if w.l == nil || !w.sent || w.start.Add(modelLatency).After(now) {
		return false, false
	}
	w.l.answeredCall(!w.ok, w.caughtUp)
	w.l = nil
	return true, w.ok
}

func sliding() flowModel { return sagsim.NewLimiter(sagsim.SlidingWindow, 100, 0) }
func fixed() flowModel   { return sagsim.NewLimiter(sagsim.FixedWindow, 100, 0) }
func bucket() flowModel  { return sagsim.NewLimiter(sagsim.TokenBucket, 100, 10) }

// The lanes of one instance, or of several with the whole limit as each
// one's ceiling (or above it), find the limit of a service that counts in
// sliding or fixed windows and share it. In a model of a minute of calls (30
// ms of latency; a throttled call is counted, not retried): one instance
// gets at least 95% of the limit through (94% when its ceiling is above
// the limit, as its slow start finds it) with at most 4% of its calls
// throttled (none when its ceiling is the limit); four get 90% through with
// at most 8% throttled, most of it in the first two seconds, when all four
// start at the whole limit.
func TestLanesFindAndShareTheLimit(t *testing.T) {
	for _, tc := range []struct {
		flow      func() flowModel
		name      string
		instances int
		ceiling   float64
	}{
		{sliding, "sliding", 1, 100},
		{fixed, "fixed", 1, 100},
		{sliding, "sliding", 4, 100},
		{sliding, "sliding", 1, 150},
	} {
		t.Run(fmt.Sprintf("%s/%d×%v", tc.name, tc.instances, tc.ceiling), func(t *testing.T) {
			clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
			flow := tc.flow()
			lanes := make([]*lane, tc.instances)
			next := make([]time.Time, tc.instances)
			caughtUp := make([]bool, tc.instances)
			for i := range lanes {
				p := newPace(tc.ceiling)
				p.now = clock.now
				lanes[i] = p.lane("cn-shanghai", readVersions)
				next[i], caughtUp[i] = lanes[i].take()
			}
			const latency = 30 * time.Millisecond
			end := clock.now().Add(time.Minute)
			var through, throttled int
			type pending struct {
				at       time.Time
				lane     int
				ok       bool
				caughtUp bool
			}
			var inFlight []pending
			for clock.now().Before(end) {
				clock.advance(time.Millisecond)
				for i, l := range lanes {
					for !next[i].After(clock.now()) {
						inFlight = append(inFlight, pending{next[i].Add(latency), i, flow(next[i].Add(latency / 2)), caughtUp[i]})
						next[i], caughtUp[i] = l.take()
					}
				}
				kept := inFlight[:0]
				for _, c := range inFlight {
					if c.at.After(clock.now()) {
						kept = append(kept, c)
						continue
					}
					lanes[c.lane].answeredCall(!c.ok, c.caughtUp)
					if c.ok {
						through++
					} else {
						throttled++
					}
				}
				inFlight = kept
			}
			share := float64(through) / 6000
			minShare, maxThrottled := 0.95, 0.04
			if tc.instances > 1 {
				minShare, maxThrottled = 0.9, 0.08
			}
			if tc.ceiling == 100 && tc.instances == 1 {
				maxThrottled = 0
			}
			if tc.ceiling > 100 && tc.instances == 1 {
				minShare = 0.94 // 95.5% before the slow start's hold: half a second at an eighth of the ceiling
			}
			if share < minShare || float64(throttled) > maxThrottled*float64(through+throttled) {
				t.Fatalf("%.1f%% of the limit through, %d of %d calls throttled", 100*share, throttled, through+throttled)
			}
			t.Logf("%.1f%% of the limit through, %.2f%% throttled", 100*share, 100*float64(throttled)/float64(through+throttled))
		})
	}
}

// Instances as the fan-out runs them: each starts a little after the one
// before, with a fresh pace, and its batches take the two regions in turns,
// so a region's lane works for a while and then waits idle while the other's
// works. The service counts both regions against one limit (which is what
// per-region lanes must survive: nobody knows whether regions share one).
// Over a minute of calls they get 90% of the limit through with at most 2.5%
// of the calls throttled (1% for one instance), on every shape of flow
// control. (Without the slow start, the cut to the rate let through, the
// regions' shared cut and idle time set aside, four instances had 11–16%
// throttled here and eight 24-26%; with a region's turn starting its call
// beside the other's, up to 4.8%.) With a lead, the first instance is
// the planner, at the ceiling from its start, and the others join it
// together a moment later, as a fan-out night starts.
func TestInstancesThatStartLateAndSwitchRegionsShareTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flow      func() flowModel
		instances int
		lead      bool
	}{
		{"sliding", sliding, 1, false},
		{"sliding", sliding, 4, false},
		{"sliding", sliding, 8, false},
		{"sliding", sliding, 8, true},
		{"fixed", fixed, 4, false},
		{"fixed", fixed, 8, true},
		{"bucket", bucket, 4, false},
		{"bucket", bucket, 8, false},
	} {
		name := fmt.Sprintf("%s/%d", tc.name, tc.instances)
		if tc.lead {
			name += "/lead"
		}
		t.Run(name, func(t *testing.T) {
			clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
			begin := clock.now()
			flow := tc.flow()
			regions := []string{"cn-shanghai", "cn-hangzhou"}
			type instance struct {
				pace   *pace
				starts time.Time
				every  time.Duration // a batch's length
				region int
				next   time.Time
				// caughtUp: the next call takes a slot it missed.
				caughtUp bool
			}
			insts := make([]*instance, tc.instances)
			for i := range insts {
				p := newPace(100)
				p.now = clock.now
				insts[i] = &instance{pace: p, starts: begin.Add(time.Duration(i) * 400 * time.Millisecond),
					every: time.Duration(500+70*i) * time.Millisecond, region: i % 2}
				if tc.lead && i > 0 {
					insts[i].starts = begin.Add(350 * time.Millisecond)
				}
			}
			const latency = 30 * time.Millisecond
			end := begin.Add(time.Minute)
			var through, throttled int
			type pending struct {
				at       time.Time
				lane     *lane
				ok       bool
				caughtUp bool
			}
			var inFlight []pending
			for clock.now().Before(end) {
				clock.advance(time.Millisecond)
				for _, in := range insts {
					if clock.now().Before(in.starts) {
						continue
					}
					region := (in.region + int(clock.now().Sub(in.starts)/in.every)) % 2
					l := in.pace.laneFor(regions[region], readVersions, tc.lead && in == insts[0])
					if in.next.IsZero() {
						in.next, in.caughtUp = l.take()
					}
					for !in.next.After(clock.now()) {
						inFlight = append(inFlight, pending{in.next.Add(latency), l, flow(in.next.Add(latency / 2)), in.caughtUp})
						in.next, in.caughtUp = l.take()
					}
				}
				kept := inFlight[:0]
				for _, c := range inFlight {
					if c.at.After(clock.now()) {
						kept = append(kept, c)
						continue
					}
					c.lane.answeredCall(!c.ok, c.caughtUp)
					if c.ok {
						through++
					} else {
						throttled++
					}
				}
				inFlight = kept
			}
			share := float64(through) / 6000
			thr := float64(throttled) / float64(through+throttled)
			t.Logf("%.1f%% of the limit through, %.2f%% throttled", 100*share, 100*thr)
			maxThrottled := 0.01
			if tc.instances > 1 {
				// The goal is 2%, not reached here. Cut N times
				// as often as one (a tenth of one instance's share each
				// time), eight instances had 2.5-2.7% throttled with a
				// curve back in 5.8 s; 1.8-2.4% in 7.9 s.
				maxThrottled = 0.025
			}
			if share < 0.9 || thr > maxThrottled {
				t.Fatalf("%.1f%% of the limit through, %d of %d calls throttled", 100*share, throttled, through+throttled)
			}
		})
	}
}

// A call's first throttle is retried at its lane's next slot, with no
// backoff on top: the lane has slowed already, and a backoff would hold
// the call's whole chunk back. Later throttles back off as other errors do.
func TestAFirstThrottleIsRetriedAtTheLanesPace(t *testing.T) {
	p := newPace(1000)
	c := newCaller(p, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	c.initial, c.maxWait = time.Hour, time.Hour // a backoff would outlast the test
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tries := 0
	got, err := readSAG(ctx, c, "cn-shanghai", readVersions, func(context.Context) (string, error) {
		if tries++; tries == 1 {
			return "", &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "Throttling.User", Status: 400}
		}
		return "ok", nil
	})
	if err != nil || got != "ok" || tries != 2 {
		t.Fatalf("got %q, %v after %d tries; want ok after 2", got, err, tries)
	}
	// Throttled every time: the second throttle backs off (here past the
	// deadline), and the error is still the throttle.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = readSAG(ctx2, c, "cn-shanghai", readVersions, func(context.Context) (string, error) {
		return "", &APIError{Action: "DescribeSmartAccessGatewayVersions", Code: "Throttling.User", Status: 400}
	})
	var ae *APIError
	if err == nil || errors.As(err, &ae) && ae.Code != "Throttling.User" {
		t.Fatalf("always throttled: %v", err)
	}
}

// The timer's run leads the night; a run of any other trigger follows.
func TestOnlyTheTimersRunLeads(t *testing.T) {
	for _, tc := range []struct {
		payload string
		leads   bool
	}{
		{`{"triggerTime":"2026-11-22T18:00:00Z","triggerName":"nightly","payload":"{}"}`, true},
		{`{}`, false},
	} {
		sag := newFakeSAG(gateway("sag-a", "2.3.1"))
		sag.offered = catalog()
		hs := newHarness(t, sag, nil)
		if _, err := hs.invoke(t, tc.payload); err != nil {
			t.Fatal(err)
		}
		// The run took milliseconds: a lane that started slow is still
		// far below the ceiling.
		if r := hs.h.pace.lane("cn-shanghai", readVersions).current(); (r == 1000) != tc.leads || r < 1000*startShare {
			t.Errorf("%s: the version reads' lane is at %v of 1000, leading %v", tc.payload, r, tc.leads)
		}
	}
}
