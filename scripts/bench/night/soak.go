package night

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

const update = "UpdateSmartAccessGatewayVersion"

// Times of the soak. The function keeps leases and deadlines by the
// machine's clock, so they are short here: a redelivery comes after the dead
// run's claims expired (EventBridge's BACKOFF_RETRY waits 10-20 s; with the
// deployed 30 min lease the next night would settle them instead).
const (
	soakLease      = 3 * time.Second
	soakRetryDelay = soakLease + 500*time.Millisecond
)

// SoakConfig describes a soak: a fan-out night with injected SAG faults and
// processes killed in the middle of their batches, then the verifications.
type SoakConfig struct {
	Binary    string
	Gateways  int
	Seed      uint64
	Runtimes  int     // default 4
	Kills     int     // processes killed during the night; default 1
	FaultRate float64 // share of SAG calls that fail; default 0.1
	Output    io.Writer
	Progress  io.Writer // a line per phase; nil: none
}

// SoakResult is what the soak saw. Problems lists every broken promise; a
// good soak has none.
type SoakResult struct {
	Gateways      int            // visible to the function (the fleet less other accounts')
	Night, Verify Night          // the sweep night, then the verifications
	Crashes       int            // invocations whose process was killed
	Calls         Calls          // SAG calls of both phases
	Updates       int            // update calls that reached the service
	Applied       int            // upgrades started
	Outcomes      map[string]int // each gateway's one final outcome, by outcome/reason
	Settled       int            // of those, left in_progress by a killed run and settled by the verifications
	Unconfirmed   int            // upgrades started whose night reported failed/unconfirmed
	Problems      []string
}

// Soak runs the scenario and checks: every gateway ends with exactly one
// final outcome (a result other than skipped/in_progress) across the night's
// reports, or, when a killed run took its report along, from the
// verification its redelivery queued; no upgrade is applied twice; no update
// call reaches the service twice for one gateway; a requested outcome is an
// applied upgrade.
func Soak(ctx context.Context, c SoakConfig) (SoakResult, error) {
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
	w, err := Start(Config{Binary: c.Binary, Fleet: f, Runtimes: c.Runtimes, Output: c.Output, Timeout: 300 * time.Second,
		SAG: sagsim.Options{
			// Devices are back 30 simulated seconds after an update, before
			// the verification the function asks for a minute later.
			UpgradeTime: 30 * time.Second,
			DefaultQPS:  2000,
			Faults: sagsim.Faults{Seed: c.Seed, Rate: c.FaultRate, SlowDelay: 50 * time.Millisecond, Kinds: []sagsim.FaultKind{
				sagsim.InternalError, sagsim.ServiceUnavailable, sagsim.BadGateway, sagsim.Drop, sagsim.LostReply, sagsim.Slow}},
		},
		Env: []string{
			"API_QPS=400", "MAX_CONCURRENCY=8",
			"ROLLOUT_CANARY=1000000", "ROLLOUT_MIN_SAMPLE=1000000", "MAX_UPGRADES_PER_RUN=1000000",
			// Leases and deadlines run on the machine's clock: a short
			// UPGRADE_TIME lets a redelivery read the device of a gateway
			// the dead run requested, and VERIFY_TIMEOUT stays long, so
			// a device still rebooting is verified later, not unverified.
			"UPGRADE_TIME=1s", "VERIFY_TIMEOUT=10m", "LEDGER_LEASE=" + soakLease.String(),
		}})
	if err != nil {
		return SoakResult{}, err
	}
	defer w.Close()

	// Kill a process in the middle of a batch at evenly spaced points of
	// the night; a kill that finds its process idle is tried again.
	var batches, workersDone, crashes atomic.Int64
	watch := func(inv Invocation) {
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
	killer := make(chan struct{})
	go func() {
		defer close(killer)
		for k := 1; k <= c.Kills; k++ {
			for batches.Load() == 0 || workersDone.Load() < int64(k)*batches.Load()/int64(c.Kills+1) {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			rt := w.Runtimes[k%len(w.Runtimes)]
			for try := 0; try < 50 && crashes.Load() < int64(k); try++ {
				rt.Kill()
				time.Sleep(200 * time.Millisecond)
			}
			say("soak: kill %d done, %d crashed invocations so far", k, crashes.Load())
		}
	}()

	res := SoakResult{Outcomes: map[string]int{}}
	say("soak: the night (%d gateways, %d instances, %.0f%% SAG faults)…", c.Gateways, c.Runtimes, 100*c.FaultRate)
	res.Night, err = w.Run(ctx, Timer, cloudsim.Trigger{RetryDelay: soakRetryDelay}, watch)
	<-killer
	if err != nil {
		return res, err
	}
	res.Crashes = int(crashes.Load())
	updatesAfterNight := w.Cloud.SAG.Calls()
	say("soak: night done in %v: %d invocations, %d crashed, %d redelivered; the verifications…",
		res.Night.Wall.Round(time.Second), res.Night.Trigger.Invocations, res.Crashes, res.Night.Trigger.Redeliveries)
	// The verifications only settle what the night left; without faults
	// they take seconds (a verify run reads its gateways one by one, and
	// every fault costs a backoff).
	w.Cloud.SAG.SetFaults(sagsim.Faults{})
	res.Verify, err = w.Run(ctx, nil, cloudsim.Trigger{RetryDelay: soakRetryDelay, Until: w.Cloud.Clock.Now().Add(2 * time.Hour)}, nil)
	if err != nil {
		return res, err
	}
	say("soak: verifications done in %v: %d invocations", res.Verify.Wall.Round(time.Second), res.Verify.Trigger.Invocations)

	res.Calls = CountCalls(w.Cloud)
	res.check(w.Cloud, f, updatesAfterNight)
	return res, nil
}

func (res *SoakResult) problem(format string, args ...any) {
	if len(res.Problems) < 50 {
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
	} else if len(res.Problems) == 50 {
		res.Problems = append(res.Problems, "… and more")
	}
}

func final(r events.Result) bool {
	return !(r.Outcome == events.OutcomeSkipped && r.Reason == "in_progress")
}

func (res *SoakResult) check(cloud *cloudsim.Cloud, f *fleet.Fleet, nightCalls []sagsim.Call) {
	type tally struct {
		finals     []events.Result
		inProgress int
		verified   []events.Result
	}
	byGateway := map[string]*tally{}
	at := func(id string) *tally {
		if byGateway[id] == nil {
			byGateway[id] = &tally{}
		}
		return byGateway[id]
	}
	if res.Crashes == 0 {
		res.problem("no invocation was killed: the soak did not test a crash")
	}
	for _, d := range res.Night.Trigger.DeadLetters {
		res.problem("message %s given up after %d deliveries: %s", d.MessageID, d.Attempt, d.Result.ErrorMessage)
	}
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
			t := at(r.SmartAGID + "/" + string(r.VersionType))
			if final(r) {
				t.finals = append(t.finals, r)
			} else {
				t.inProgress++
			}
		}
	}
	for _, rep := range res.Verify.Reports() {
		for _, r := range rep.Results {
			if final(r) {
				t := at(r.SmartAGID + "/" + string(r.VersionType))
				t.verified = append(t.verified, r)
			}
		}
	}

	reached := map[string]int{}
	for _, c := range cloud.SAG.Calls() {
		if c.Action == update && !strings.HasPrefix(c.Code, "Throttling") &&
			(c.Fault == "" || c.Fault == sagsim.LostReply || c.Fault == sagsim.Slow) {
			reached[c.SmartAGID]++
			res.Updates++
		}
	}
	if total := res.Calls.ByAction[update]; total != len(filter(nightCalls, update)) {
		res.problem("%d update calls during the verifications", total-len(filter(nightCalls, update)))
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
		t := at(id + "/Device")
		var outcome events.Result
		switch {
		case len(t.finals) == 1:
			outcome = t.finals[0]
		case len(t.finals) > 1:
			res.problem("%s (%s): %d final outcomes: %s", id, g.Case, len(t.finals), describe(t.finals))
			continue
		case t.inProgress == 0:
			res.problem("%s (%s): no outcome at all", id, g.Case)
			continue
		case len(t.verified) != 1:
			res.problem("%s (%s): in progress after the night (a killed run's), then %d final outcomes from the verifications: %s",
				id, g.Case, len(t.verified), describe(t.verified))
			continue
		default:
			outcome = t.verified[0]
			res.Settled++
		}
		res.Outcomes[string(outcome.Outcome)+"/"+outcome.Reason]++
		if outcome.Outcome == events.OutcomeRequested && applied != 1 {
			res.problem("%s (%s): requested, but %d upgrades applied", id, g.Case, applied)
		}
		switch {
		case applied == 0 || outcome.Outcome == events.OutcomeRequested || len(t.finals) == 0:
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

func filter(calls []sagsim.Call, action string) []sagsim.Call {
	var out []sagsim.Call
	for _, c := range calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

func describe(rs []events.Result) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s/%s", r.Outcome, r.Reason))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
