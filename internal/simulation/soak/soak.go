// Package soak runs the soak (scripts/soak.sh, and at a smaller size the
// end-to-end tests): a fan-out night of the compiled function on the
// simulated cloud with injected SAG faults and processes killed in the
// middle of their batches, then the verifications, and checks that every
// gateway ends with exactly one final outcome and none is called twice.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// Times of the soak. The function keeps leases and deadlines by the
// machine's clock, so they are short here: a redelivery comes after the dead
// run's claims expired (EventBridge's BACKOFF_RETRY waits 10-20 s; with the
// deployed 30 min lease the next night would settle them instead).
const (
	soakLease       = 3 * time.Second
	soakRetryDelay  = soakLease + 500*time.Millisecond
	soakUpgradeTime = time.Second
	// soakDeviceReboot is how long a device reboots on the simulated clock.
	soakDeviceReboot = 30 * time.Second
)

// Config describes a soak: a fan-out night with injected SAG faults and
// processes killed in the middle of their batches, then the verifications.
type Config struct {
	Binary    string
	Gateways  int
	Seed      uint64
	Runtimes  int     // default 4
	Kills     int     // processes killed during the night; default 1
	FaultRate float64 // share of SAG calls that fail; default 0.1
	Output    io.Writer
	Progress  io.Writer // a line per phase; nil: none
}

// Result is what the soak saw. Problems lists every broken promise; a
// good soak has none.
type Result struct {
	Gateways    int              // visible to the function (the fleet less other accounts')
	Night       simulation.Night // the fan-out night
	Settle      []events.Report  // the verify runs for the gateways a killed run left in progress
	Crashes     int              // invocations whose process was killed
	Calls       simulation.Calls // SAG calls of both phases
	Updates     int              // update calls that reached the service
	Applied     int              // upgrades started
	Outcomes    map[string]int   // each gateway's one final outcome, by outcome/reason
	Settled     int              // of those, verified by a redelivered batch or a verify run (during the night or after it)
	Unconfirmed int              // upgrades started whose night reported failed/unconfirmed
	Held        int              // HA pairs a killed run claimed just before its call: held by the claim, not called
	Problems    []string
}

// Run runs the scenario and checks: every gateway ends with exactly one
// final outcome (a result other than skipped/in_progress) across the night's
// reports, or, an HA pair a killed run claimed just before its call, is held
// by that claim (the API shows no upgrade of a pair until it is done, so the
// function cannot tell yet whether the call was made); no upgrade is applied
// twice; no update call reaches the service twice for one gateway; a
// requested outcome is an applied upgrade.
//
// A killed run takes its report along, and its redelivery finds the
// gateways the dead run upgraded in progress. Those must have a verify
// request on the queue (the function settles them by itself); the soak then
// runs verify requests naming just them, once the devices are back, and
// their one final outcome is that verification's. (The other queued verify
// requests check the night's other upgrades, which already have theirs.)
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Runtimes <= 0 {
		c.Runtimes = 4
	}
	if c.Kills <= 0 {
		c.Kills = 1
	}
	if c.FaultRate == 0 {
		c.FaultRate = 0.1
	}
	say := func(format string, args ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, format+"\n", args...)
		}
	}
	f := fleet.Generate(fleet.Options{Gateways: c.Gateways, Seed: c.Seed})
	w, err := simulation.Start(simulation.Options{Fleet: f,
		SAG: sagsim.Options{
			// Devices are back 30 simulated seconds after an update, before
			// the verification the function asks for a minute later.
			UpgradeTime: soakDeviceReboot,
			DefaultQPS:  2000,
			Faults: sagsim.Faults{Seed: c.Seed, Rate: c.FaultRate, SlowDelay: 50 * time.Millisecond, Kinds: []sagsim.FaultKind{
				sagsim.InternalError, sagsim.ServiceUnavailable, sagsim.BadGateway, sagsim.Drop, sagsim.LostReply, sagsim.Slow}},
		}})
	if err != nil {
		return Result{}, err
	}
	defer w.Close()
	fn := simulation.Function{Binary: c.Binary, Output: c.Output, Timeout: 300 * time.Second,
		Env: []string{
			"API_QPS=400", "MAX_CONCURRENCY=8",
			"ROLLOUT_CANARY=1000000", "ROLLOUT_MIN_SAMPLE=1000000", "MAX_UPGRADES_PER_RUN=1000000",
			// Leases and deadlines run on the machine's clock: a short
			// UPGRADE_TIME lets a redelivery read the device of a gateway
			// the dead run requested. LEDGER_LEASE must cover UPGRADE_TIME
			// + VERIFY_TIMEOUT, so VERIFY_TIMEOUT takes the rest of it.
			"UPGRADE_TIME=" + soakUpgradeTime.String(), "VERIFY_TIMEOUT=" + (soakLease - soakUpgradeTime).String(), "LEDGER_LEASE=" + soakLease.String(),
		}}
	for range c.Runtimes {
		if _, err := w.Deploy(fn); err != nil {
			return Result{}, err
		}
	}
	runtimes := w.Runtimes()

	// Kill processes in the middle of their batches, at evenly spaced
	// points of the night: once some of the batch's gateways have been
	// upgraded and some not yet, so a redelivery meets both.
	var batches, workersDone, crashes atomic.Int64
	var mu sync.Mutex
	running := map[int]events.Request{} // the batch each runtime works on
	dispatch := func(d cloudsim.Delivery) {
		var req events.Request
		json.Unmarshal([]byte(d.Body), &req)
		if d.Attempt > 1 {
			// A redelivery comes after the dead run's leases, which cover
			// UPGRADE_TIME + VERIFY_TIMEOUT: the devices that run upgraded
			// are back by then, as they would be in the cloud.
			w.Cloud.Clock.Advance(soakDeviceReboot)
		}
		mu.Lock()
		running[d.Runtime] = req
		mu.Unlock()
	}
	watch := func(inv simulation.Invocation) {
		mu.Lock()
		delete(running, inv.Runtime) // done: no longer mid-batch
		mu.Unlock()
		if inv.Report != nil && inv.Report.Fanout != nil {
			batches.Store(int64(inv.Report.Fanout.Batches))
		}
		if !inv.Kickoff {
			workersDone.Add(1)
		}
		if inv.Result.Crashed {
			crashes.Add(1)
		}
	}
	midBatch := func(r int) bool {
		mu.Lock()
		req := running[r]
		mu.Unlock()
		if req.Kind != upgrade.KindSweep {
			return false
		}
		upgraded := 0
		for _, id := range req.GatewayIDs {
			upgraded += w.Cloud.SAG.Applied(id)
		}
		return upgraded >= 3 && upgraded <= len(req.GatewayIDs)/2
	}
	// The killer stops with the night: a night too small to fan out, or
	// one that ends before a kill lands, must not leave Run waiting.
	killCtx, nightOver := context.WithCancel(ctx)
	defer nightOver()
	killer := make(chan struct{})
	go func() {
		defer close(killer)
		for k := 1; k <= c.Kills; k++ {
			r := k % len(runtimes)
			deadline := time.Time{}
			for crashes.Load() < int64(k) {
				if killCtx.Err() != nil {
					return
				}
				if batches.Load() == 0 || workersDone.Load() < int64(k)*batches.Load()/int64(c.Kills+1) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if deadline.IsZero() {
					deadline = time.Now().Add(30 * time.Second)
				}
				if midBatch(r) || time.Now().After(deadline) {
					runtimes[r].Kill()
					time.Sleep(100 * time.Millisecond) // the trigger sees the crash
				}
				time.Sleep(time.Millisecond)
			}
			say("soak: kill %d done, %d crashed invocations so far", k, crashes.Load())
		}
	}()

	res := Result{Outcomes: map[string]int{}}
	say("soak: the night (%d gateways, %d instances, %.0f%% SAG faults)…", c.Gateways, c.Runtimes, 100*c.FaultRate)
	res.Night, err = w.RunNight(ctx, simulation.TimerEvent(w.Cloud.Clock.Now()), cloudsim.Trigger{RetryDelay: soakRetryDelay, OnDispatch: dispatch}, watch)
	nightOver()
	<-killer
	if err != nil {
		return res, err
	}
	res.Crashes = int(crashes.Load())
	say("soak: night done in %v: %d invocations, %d crashed, %d redelivered",
		res.Night.Wall.Round(time.Second), res.Night.Trigger.Invocations, res.Crashes, res.Night.Trigger.Redeliveries)
	tallies := res.tally()
	if err := res.settle(ctx, w, tallies); err != nil {
		return res, err
	}
	res.Calls = simulation.CountCalls(w.Cloud)
	res.check(w.Cloud, f, tallies)
	return res, nil
}

// tally holds one gateway's results.
type tally struct {
	finals     []upgrade.Result
	inProgress int
}

// tally collects the night's results by gateway and version type.
func (res *Result) tally() map[string]*tally {
	byGateway := map[string]*tally{}
	for _, inv := range res.Night.Invocations {
		if inv.Kickoff && inv.Report == nil {
			res.problem("the planner failed: %s", inv.Result.Body)
		}
		if inv.Report == nil {
			continue
		}
		for _, r := range inv.Report.Results {
			if r.SmartAGID == "" {
				res.problem("a result without a gateway: %s/%s %s", r.Outcome, r.Reason, r.Error)
				continue
			}
			key := r.SmartAGID + "/" + string(r.VersionType)
			t := byGateway[key]
			if t == nil {
				t = &tally{}
				byGateway[key] = t
			}
			if final(r) {
				t.finals = append(t.finals, r)
			} else {
				t.inProgress++
			}
		}
	}
	return byGateway
}

// settle verifies the gateways the night left in progress only: each must
// have a verify request queued; once the last of those is due (the devices
// are back), verify runs naming them give their final outcome.
func (res *Result) settle(ctx context.Context, w *simulation.World, tallies map[string]*tally) error {
	due := map[string]time.Time{}
	for _, m := range w.Cloud.MNS.Messages(cloudsim.WorkQueue) {
		var req events.Request
		if json.Unmarshal([]byte(m.Body), &req) != nil || req.Kind != upgrade.KindVerify {
			continue
		}
		for _, id := range req.GatewayIDs {
			if m.NextVisibleTime.After(due[id]) {
				due[id] = m.NextVisibleTime
			}
		}
	}
	var left []string
	var latest time.Time
	for key, t := range tallies {
		id := strings.TrimSuffix(key, "/Device")
		if len(t.finals) > 0 || t.inProgress == 0 {
			continue
		}
		if due[id].IsZero() {
			res.problem("%s: left in progress, and no verify request for it is queued", id)
			continue
		}
		left = append(left, id)
		if due[id].After(latest) {
			latest = due[id]
		}
	}
	sort.Strings(left)
	if len(left) == 0 {
		return nil
	}
	// Faults are the night's subject; these runs only read.
	w.Cloud.SAG.SetFaults(sagsim.Faults{})
	w.Cloud.Clock.Set(latest)
	// The devices are back on the simulated clock; the function dates its
	// records by the machine's, and a redelivery late in the night may have
	// found its gateway rebooting just now: wait out its UPGRADE_TIME too,
	// as the delayed verify request would.
	time.Sleep(soakUpgradeTime)
	for start := 0; start < len(left); start += 50 {
		body, _ := json.Marshal(events.Request{Kind: upgrade.KindVerify, GatewayIDs: left[start:min(start+50, len(left))], CorrelationID: "soak"})
		out, err := w.Runtimes()[0].Invoke(ctx, body, fcsim.InvokeOptions{})
		if err != nil {
			return err
		}
		rep, err := simulation.ReportOf(out)
		if err != nil {
			res.problem("a verify run failed: %s", out.Body)
			continue
		}
		res.Settle = append(res.Settle, rep)
	}
	return nil
}

func (res *Result) problem(format string, args ...any) {
	if len(res.Problems) < 50 {
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
	} else if len(res.Problems) == 50 {
		res.Problems = append(res.Problems, "… and more")
	}
}

func final(r upgrade.Result) bool {
	return !(r.Outcome == upgrade.OutcomeSkipped && r.Reason == "in_progress")
}

func (res *Result) check(cloud *cloudsim.Cloud, f *fleet.Fleet, tallies map[string]*tally) {
	if res.Crashes == 0 {
		res.problem("no invocation was killed: the soak did not test a crash")
	}
	for _, d := range res.Night.Trigger.DeadLetters {
		res.problem("message %s given up after %d deliveries: %s", d.MessageID, d.Attempt, d.Result.ErrorMessage)
	}
	verified := map[string][]upgrade.Result{}
	lastSeen := map[string]upgrade.Result{}
	for _, rep := range res.Settle {
		for _, r := range rep.Results {
			lastSeen[r.SmartAGID] = r
			if final(r) {
				verified[r.SmartAGID] = append(verified[r.SmartAGID], r)
			}
		}
	}

	reached := map[string]int{}
	for _, c := range cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction && simulation.Reached(c) {
			reached[c.SmartAGID]++
			res.Updates++
		}
	}

	for _, g := range f.Gateways {
		if g.Case == fleet.CaseOtherAccount {
			continue
		}
		res.Gateways++
		id := g.SmartAGID
		applied := cloud.SAG.Applied(id)
		res.Applied += applied
		if applied > 1 {
			res.problem("%s (%s): %d upgrades applied", id, g.Case, applied)
		}
		if reached[id] > 1 {
			res.problem("%s (%s): %d update calls reached the service", id, g.Case, reached[id])
		}
		t := tallies[id+"/Device"]
		if t == nil {
			t = &tally{}
		}
		finals := confirmed(t.finals)
		var outcome upgrade.Result
		switch {
		case len(finals) == 1:
			outcome = finals[0]
		case len(finals) > 1:
			res.problem("%s (%s): %d final outcomes: %s", id, g.Case, len(finals), describe(finals))
			continue
		case t.inProgress == 0:
			res.problem("%s (%s): no outcome at all", id, g.Case)
			continue
		case len(verified[id]) == 0 && applied == 0 && reached[id] == 0 && !final(lastSeen[id]) && g.Case == fleet.CaseHAPair:
			// Claimed by a killed run just before its call: an HA pair
			// shows no upgrade until its standby is back, so the claim
			// holds the gateway until an upgrade the call might have
			// started would show; a later run then releases and upgrades
			// it. Not called twice, not lost: held.
			res.Held++
			res.Outcomes["skipped/in_progress (held)"]++
			continue
		case len(verified[id]) != 1:
			res.problem("%s (%s): in progress after the night (a killed run's), then %d final outcomes from its verification: %s (%d upgrades applied; the verification said %s/%s %s)",
				id, g.Case, len(verified[id]), describe(verified[id]), applied, lastSeen[id].Outcome, lastSeen[id].Reason, lastSeen[id].Error)
			continue
		default:
			outcome = verified[id][0]
			res.Settled++
		}
		res.Outcomes[string(outcome.Outcome)+"/"+outcome.Reason]++
		if (outcome.Outcome == upgrade.OutcomeRequested || outcome.Outcome == upgrade.OutcomeVerified) && applied != 1 {
			res.problem("%s (%s): %s, but %d upgrades applied", id, g.Case, outcome.Outcome, applied)
		}
		switch {
		case applied == 0 || outcome.Outcome == upgrade.OutcomeRequested || len(finals) == 0:
		case outcome.Outcome == upgrade.OutcomeVerified:
			// Left in progress by a killed run: its redelivery comes after
			// the lease (UPGRADE_TIME + VERIFY_TIMEOUT), when the device is
			// back, and verifies it. Or requested, and confirmed by its
			// verify request: each redelivery moves the simulated clock on
			// by a reboot, and over the night that can bring verify
			// requests due.
			res.Settled++
		case outcome.Reason == "unconfirmed":
			// The update's answer was lost and the read after it could not
			// tell: an HA pair stays Active while its standby reboots, and
			// the rebooting device still reports the old version. The
			// function says so, keeps the claim and looks again later.
			res.Unconfirmed++
		default:
			res.problem("%s (%s): upgraded, but the night reported %s/%s", id, g.Case, outcome.Outcome, outcome.Reason)
		}
	}
}

// confirmed drops a requested result that a verified one to the same
// version follows: that is one upgrade and its confirmation, not two
// outcomes. Each verification pairs with one request only, so a gateway
// requested twice still shows two.
func confirmed(finals []upgrade.Result) []upgrade.Result {
	verified := map[string]int{}
	for _, r := range finals {
		if r.Outcome == upgrade.OutcomeVerified {
			verified[r.ToVersion]++
		}
	}
	return slices.DeleteFunc(slices.Clone(finals), func(r upgrade.Result) bool {
		if r.Outcome == upgrade.OutcomeRequested && verified[r.ToVersion] > 0 {
			verified[r.ToVersion]--
			return true
		}
		return false
	})
}

func describe(rs []upgrade.Result) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s/%s", r.Outcome, r.Reason))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
