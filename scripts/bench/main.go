// Command bench measures the compiled function on the simulated cloud
// (scripts/bench.sh builds it and runs this). Three modes:
//
//	bench [flags] [SIZES]                  sweeps of simulated fleets (default 1000 10000 100000 gateways),
//	                                       then the cold start and the binary size
//	bench -distributed [flags] [SIZE]      one fan-out night on N = 1, 2, 4, 8 instances (default 10000 gateways)
//	bench -soak [flags] [SIZE]             faults, killed processes, redeliveries (default 100000 gateways)
//
// A night is the nightly timer invocation and, when it fans out, the work
// queue drained by the queue trigger over the instances. Verify requests stay
// on the queue: they are due simulated minutes later and are not the night's
// throughput (cloudsim.Trigger with a zero Until).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation/soak"
)

type options struct {
	binary, sizeOf, jsonOut, logFile string
	latency                          time.Duration
	qps                              float64
	runtimes, concurrency            int
	batch, threshold                 int
	seed                             uint64
	coldStarts                       int
	trace                            bool
	spans                            string
	topicDown                        string
	flows                            []sagsim.Flow // the emulator's flow control shapes, each a night
	burst                            int

	distributed bool
	instances   string
	instanceQPS float64

	soak         bool
	soakRuntimes int
	kills        int
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "the compiled function (`PATH`; required)")
	flag.StringVar(&o.sizeOf, "size-of", "", "report the size of this build (`PATH`; default -binary)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to `FILE`")
	flag.StringVar(&o.logFile, "log", "", "append the function's output to `FILE` (default: discarded)")
	flag.DurationVar(&o.latency, "latency", 30*time.Millisecond, "SAG API latency of every call")
	flag.Float64Var(&o.qps, "qps", 100, "the SAG emulator's limit per action, calls a second")
	flag.IntVar(&o.runtimes, "runtimes", 1, "function instances K; each gets API_QPS = qps/K")
	flag.IntVar(&o.concurrency, "concurrency", 8, "MAX_CONCURRENCY")
	flag.IntVar(&o.batch, "batch", 0, "BATCH_SIZE (0: the function's default)")
	flag.IntVar(&o.threshold, "threshold", 0, "FANOUT_THRESHOLD (0: the function's default)")
	flag.Uint64Var(&o.seed, "seed", 1, "fleet seed")
	flag.IntVar(&o.coldStarts, "coldstarts", 10, "fresh processes for the cold start median (0: skip)")
	flag.StringVar(&o.topicDown, "topic-down", "", "the outcome topic fails every publish the whole night: `error` (500 InternalError) or drop (the connection closes unanswered)")
	flag.BoolVar(&o.trace, "trace", false, "time every request through a proxy and say where the unused API capacity went")
	flag.StringVar(&o.spans, "spans", "", "with -trace: write the night's timeline to `FILE`, a line per invocation (INV start end instance) and request (service action start end status instance), µs from the first invocation's start, instances numbered from 0 in the order deployed")
	flag.BoolVar(&o.distributed, "distributed", false, "distributed mode: one night on each number of -instances")
	flag.StringVar(&o.instances, "instances", "1,2,4,8", "distributed mode: instance counts")
	flag.Float64Var(&o.instanceQPS, "instance-qps", 0, "distributed mode: API_QPS of each instance (0: -qps, the whole limit: the instances find their shares)")
	flows := flag.String("flow", "bucket,fixed,sliding", "the emulator's flow control: `bucket`, fixed (one-second windows of the clock), sliding (any one second), comma-separated: a night each")
	flag.IntVar(&o.burst, "burst", 0, "the bucket's burst (0: a tenth of a second's calls)")
	flag.BoolVar(&o.soak, "soak", false, "soak mode: faults, killed processes and redeliveries")
	flag.IntVar(&o.soakRuntimes, "soak-runtimes", 4, "soak mode: function instances")
	flag.IntVar(&o.kills, "kills", 2, "soak mode: processes killed during the night")
	flag.Parse()
	if o.binary == "" {
		fmt.Fprintln(os.Stderr, "bench: -binary is required (scripts/bench.sh builds it)")
		os.Exit(2)
	}
	if o.instanceQPS == 0 {
		o.instanceQPS = o.qps
	}
	if o.qps <= 0 || o.instanceQPS <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -qps and -instance-qps must be above 0")
		os.Exit(2)
	}
	for _, f := range strings.Split(*flows, ",") {
		f := sagsim.Flow(strings.TrimSpace(f))
		if !slices.Contains(sagsim.Flows, f) {
			fmt.Fprintf(os.Stderr, "bench: -flow %q: want bucket, fixed or sliding\n", f)
			os.Exit(2)
		}
		o.flows = append(o.flows, f)
	}
	if o.sizeOf == "" {
		o.sizeOf = o.binary
	}
	var sizes []int
	for _, a := range flag.Args() {
		n, err := strconv.Atoi(strings.ReplaceAll(a, ",", ""))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: %q is not a number of gateways\n", a)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	var err error
	switch {
	case o.soak:
		err = soakMode(o, sizes)
	case o.distributed:
		err = distributedMode(o, sizes)
	default:
		err = benchMode(o, sizes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// output is where the function's logs go.
func (o options) output() (io.Writer, func(), error) {
	if o.logFile == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// env is the function's configuration for a throughput night: every due
// gateway upgraded at once (no waves, no breaker, no run cap), the API
// budget shared by the instances.
func (o options) env(apiQPS float64) []string {
	env := []string{
		"API_QPS=" + strconv.FormatFloat(apiQPS, 'f', -1, 64),
		"MAX_CONCURRENCY=" + strconv.Itoa(o.concurrency),
		"ROLLOUT_CANARY=1000000",
		// Nor the breaker: a throughput night measures calls, and reseller
		// gateways always fail (PermissionError).
		"ROLLOUT_MIN_SAMPLE=1000000",
		"MAX_UPGRADES_PER_RUN=1000000",
	}
	if o.batch > 0 {
		env = append(env, "BATCH_SIZE="+strconv.Itoa(o.batch))
	}
	if o.threshold > 0 {
		env = append(env, "FANOUT_THRESHOLD="+strconv.Itoa(o.threshold))
	}
	return env
}

// sizeResult is the measurement of one night.
type sizeResult struct {
	Gateways    int            `json:"gateways"`
	Instances   int            `json:"instances"`
	APIQPS      float64        `json:"apiQpsPerInstance"`
	Concurrency int            `json:"maxConcurrency"`
	LatencyMs   float64        `json:"latencyMs"`
	LimitQPS    float64        `json:"limitQpsPerAction"`
	Flow        sagsim.Flow    `json:"flow"` // how the emulator counted the limit
	WallS       float64        `json:"wallSeconds"`
	Calls       int            `json:"calls"`
	ByAction    map[string]int `json:"callsByAction"`
	Throttled   int            `json:"throttled"`
	BoundS      float64        `json:"boundSeconds"` // the busiest action's answered calls / its limit
	Ratio       float64        `json:"ratio"`
	PeakRSSMB   float64        `json:"peakRssMB"`
	// The timer invocation's process when that invocation ended (its
	// VmHWM): the planner's own peak when the sweep fans out, before any
	// batch runs on that process.
	PlannerRSSMB   float64        `json:"plannerRssMB,omitempty"`
	UpToDate       int            `json:"upToDate"`
	CallsPerUpToDt float64        `json:"callsPerUpToDate"`
	Invocations    int            `json:"invocations"`
	Failed         int            `json:"failedInvocations"`
	Batches        int            `json:"batches"`
	VerifyLeft     int            `json:"verifyRequestsLeft"`
	Outcomes       map[string]int `json:"outcomes"`
	LedgerCalls    map[string]int `json:"ledgerCallsByAction"` // Tablestore
	QueueCalls     map[string]int `json:"mnsCallsByOperation"`
	// Events summed over the night's reports: published, kept for a later
	// run (the topic was down), failed.
	Events events.Publishing `json:"events"`
	// With -trace: the API capacity left unused (seconds in which a call
	// could have started and none did), by what was going on.
	UnusedAction string             `json:"unusedAction,omitempty"`
	UnusedS      float64            `json:"unusedSeconds,omitempty"`
	UnusedBy     map[string]float64 `json:"unusedSecondsBy,omitempty"`
	// With -trace: time in requests by service and action (summed over
	// requests in parallel).
	RequestS map[string]float64 `json:"requestSeconds,omitempty"`
	// With -trace: the same for each invocation (exact with one instance,
	// where invocations do not overlap), in the order they started.
	PerInvocation []invocationTrace `json:"perInvocation,omitempty"`
}

type invocationTrace struct {
	Planner   bool               `json:"planner,omitempty"`
	DurationS float64            `json:"durationSeconds"`
	SAGCalls  int                `json:"sagCalls"`
	UnusedS   float64            `json:"unusedSeconds"`
	UnusedBy  map[string]float64 `json:"unusedSecondsBy"`
	// From the invocation's start to its first call of the busiest action,
	// and from its last such call's start to its end.
	HeadS float64 `json:"headSeconds"`
	TailS float64 `json:"tailSeconds"`
}

// measure runs one night of n gateways on k instances of apiQPS each,
// against flow control of the shape.
func measure(o options, flow sagsim.Flow, n, k int, apiQPS float64) (sizeResult, error) {
	out, closeOut, err := o.output()
	if err != nil {
		return sizeResult{}, err
	}
	defer closeOut()
	f := fleet.Generate(fleet.Options{Gateways: n, Seed: o.seed})
	w, err := simulation.Start(simulation.Options{Fleet: f, SAG: sagsim.Options{Latency: o.latency, DefaultQPS: o.qps, Flow: flow, Burst: o.burst}})
	if err != nil {
		return sizeResult{}, err
	}
	defer w.Close()
	env := o.env(apiQPS)
	var tr *tracer
	if o.trace {
		if tr, err = startTracer(w.Cloud.URL); err != nil {
			return sizeResult{}, err
		}
		defer tr.Close()
	}
	for i := range k {
		env := env
		if tr != nil {
			traced, err := tr.env(i)
			if err != nil {
				return sizeResult{}, err
			}
			env = append(slices.Clip(env), traced...)
		}
		if _, err := w.Deploy(simulation.Function{Binary: o.binary, Env: env, Output: out}); err != nil {
			return sizeResult{}, err
		}
	}
	switch o.topicDown {
	case "":
	case "error":
		w.Cloud.MNS.SetFaults(mnssim.Faults{Seed: 1, Rate: 1, Ops: []string{"PublishMessage"}, Kinds: []mnssim.FaultKind{mnssim.FaultInternalError}})
	case "drop":
		w.Cloud.MNS.SetFaults(mnssim.Faults{Seed: 1, Rate: 1, Ops: []string{"PublishMessage"}, Kinds: []mnssim.FaultKind{mnssim.FaultDrop}})
	default:
		return sizeResult{}, fmt.Errorf("-topic-down %q: want error or drop", o.topicDown)
	}

	stop := progress(w, n)
	var plannerRSS int64
	nt, err := w.RunNight(context.Background(), simulation.TimerEvent(w.Cloud.Clock.Now()), cloudsim.Trigger{}, func(inv simulation.Invocation) {
		if inv.Delivery.Kickoff {
			plannerRSS = vmHWM(w.Runtimes()[inv.Delivery.Runtime].PID())
		}
	})
	stop()
	if err != nil {
		return sizeResult{}, err
	}
	calls := simulation.CountCalls(w.Cloud)
	r := sizeResult{
		Gateways: n, Instances: k, APIQPS: apiQPS, Concurrency: o.concurrency, Flow: flow,
		LatencyMs: float64(o.latency) / 1e6, LimitQPS: o.qps,
		WallS: nt.Wall.Seconds(), Calls: calls.Total, ByAction: calls.ByAction, Throttled: calls.Throttled,
		PeakRSSMB: float64(w.PeakRSS()) / 1e6, PlannerRSSMB: float64(plannerRSS) / 1e6, Invocations: nt.Trigger.Invocations, Failed: nt.Trigger.Failures,
		VerifyLeft: nt.Trigger.Left, Outcomes: map[string]int{},
		LedgerCalls: w.Cloud.OTS.Calls(), QueueCalls: w.Cloud.MNS.Calls(),
	}
	// The service limits each action to o.qps calls a second, so no
	// schedule, however many instances, does the busiest action's answered
	// calls faster than this.
	busiest, answered := calls.Busiest()
	r.BoundS = float64(answered) / o.qps
	r.Ratio = r.WallS / r.BoundS
	reports := nt.Reports()
	for _, rep := range reports {
		if rep.Fanout != nil {
			r.Batches += rep.Fanout.Batches
		}
		r.Events.Published += rep.Publishing.Published
		r.Events.Kept += rep.Publishing.Kept
		r.Events.Failed += rep.Publishing.Failed
		for _, res := range rep.Results {
			r.Outcomes[string(res.Outcome)+"/"+res.Reason]++
		}
	}
	if len(reports) == 0 {
		return r, fmt.Errorf("%d gateways: no invocation answered", n)
	}
	r.UpToDate, r.CallsPerUpToDt = upToDateCost(w.Cloud, reports)
	if spans := tr.Spans(); spans != nil {
		first := slices.MinFunc(nt.Invocations, func(a, b simulation.Invocation) int { return a.Started.Compare(b.Started) })
		last := slices.MaxFunc(nt.Invocations, func(a, b simulation.Invocation) int { return a.Finished.Compare(b.Finished) })
		interval := time.Duration(float64(time.Second) / o.qps) // the limit's spacing
		r.UnusedAction = busiest
		unused, by := Starved(spans, nt.Invocations, busiest, first.Started, last.Finished, interval)
		r.UnusedS, r.UnusedBy, r.RequestS = unused.Seconds(), map[string]float64{}, map[string]float64{}
		for k, d := range by {
			r.UnusedBy[k] = d.Seconds()
		}
		for _, s := range spans {
			r.RequestS[s.Service+" "+s.Action] += s.End.Sub(s.Start).Seconds()
		}
		if o.spans != "" {
			if err := writeSpans(o.spans, first.Started, nt.Invocations, spans); err != nil {
				return r, err
			}
		}
		invs := slices.Clone(nt.Invocations)
		slices.SortFunc(invs, func(a, b simulation.Invocation) int { return a.Started.Compare(b.Started) })
		for _, inv := range invs {
			t := invocationTrace{Planner: inv.Report != nil && inv.Report.Fanout != nil,
				DurationS: inv.Finished.Sub(inv.Started).Seconds(), UnusedBy: map[string]float64{}}
			var firstCall, lastCall time.Time
			for _, s := range spans {
				if s.Service == "SAG" && !s.Start.Before(inv.Started) && s.Start.Before(inv.Finished) {
					t.SAGCalls++
					if s.Action == busiest {
						if firstCall.IsZero() {
							firstCall = s.Start // spans are by start
						}
						lastCall = s.Start
					}
				}
			}
			if !firstCall.IsZero() {
				t.HeadS, t.TailS = firstCall.Sub(inv.Started).Seconds(), inv.Finished.Sub(lastCall).Seconds()
			}
			unused, by := Starved(spans, []simulation.Invocation{inv}, busiest, inv.Started, inv.Finished, interval)
			t.UnusedS = unused.Seconds()
			for k, d := range by {
				t.UnusedBy[k] = d.Seconds()
			}
			r.PerInvocation = append(r.PerInvocation, t)
		}
	}
	return r, nil
}

// upToDateCost is what the gateways found up to date cost: the SAG calls
// naming them plus their share of the list calls, shared by every listing of
// a gateway (the planner lists the fleet, each worker its batch again).
func upToDateCost(cloud *cloudsim.Cloud, reports []events.Report) (int, float64) {
	upToDate := map[string]bool{}
	scanned, appearances := 0, 0
	for _, rep := range reports {
		scanned += rep.Counts.Scanned
		for _, res := range rep.Results {
			if res.Outcome == upgrade.OutcomeSkipped && res.Reason == "up_to_date" {
				upToDate[res.SmartAGID] = true
				appearances++
			}
		}
	}
	if len(upToDate) == 0 || scanned == 0 {
		return 0, 0
	}
	for _, rep := range reports {
		if rep.Fanout != nil {
			appearances += len(upToDate) // the planner listed them and sent them on
		}
	}
	naming, lists := 0, 0
	for _, c := range cloud.SAG.Calls() {
		switch {
		case c.Action == "DescribeSmartAccessGateways":
			lists++
		case upToDate[c.SmartAGID]:
			naming++
		}
	}
	share := float64(lists) * float64(appearances) / float64(scanned)
	return len(upToDate), (float64(naming) + share) / float64(len(upToDate))
}

// progress prints a line to stderr every 30 s until stopped.
func progress(w *simulation.World, n int) func() {
	done := make(chan struct{})
	began := time.Now()
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "  … %d gateways: %v, %d SAG calls, %d messages queued\n", n,
					time.Since(began).Round(time.Second), len(w.Cloud.SAG.Calls()), len(w.Cloud.MNS.Messages(cloudsim.WorkQueue)))
			}
		}
	}()
	return func() { close(done) }
}

func benchMode(o options, sizes []int) error {
	if len(sizes) == 0 {
		sizes = []int{1000, 10000, 100000}
	}
	results := map[string]any{}
	var nights []sizeResult
	for _, flow := range o.flows {
		for _, n := range sizes {
			fmt.Fprintf(os.Stderr, "bench: %d gateways, flow control %s…\n", n, flow)
			r, err := measure(o, flow, n, o.runtimes, o.qps/float64(o.runtimes))
			if err != nil {
				return err
			}
			printSize(os.Stdout, r)
			nights = append(nights, r)
		}
	}
	if len(o.flows)*len(sizes) > 1 {
		printSummary(os.Stdout, nights)
	}
	results["sizes"] = nights

	if o.coldStarts > 0 {
		cs, err := coldStart(o)
		if err != nil {
			return err
		}
		fmt.Printf("cold start      median %.1f ms of %d fresh processes (process start → first invocation answered; min %.1f, max %.1f)\n",
			cs.MedianMs, cs.N, cs.MinMs, cs.MaxMs)
		fmt.Printf("                of which process start → first poll of the runtime API %.1f ms, the invocation %.1f ms (medians);\n", cs.InitMs, cs.InvokeMs)
		fmt.Printf("                the same invocation on the warm process %.1f ms\n", cs.WarmMs)
		results["coldStart"] = cs
	}
	if st, err := os.Stat(o.sizeOf); err == nil {
		fmt.Printf("binary          %d bytes (%.1f MiB): %s\n", st.Size(), float64(st.Size())/(1<<20), o.sizeOf)
		results["binaryBytes"] = st.Size()
	}
	// The last line: the largest fleet on the strictest shape measured.
	largest := slices.MaxFunc(nights, func(a, b sizeResult) int {
		return cmp.Or(a.Gateways-b.Gateways, slices.Index(sagsim.Flows, a.Flow)-slices.Index(sagsim.Flows, b.Flow))
	})
	fmt.Printf("bench: flow=%s gateways=%d calls=%d throttled=%d wall_s=%.1f bound_s=%.1f ratio=%.3f rss_mb=%.1f\n",
		largest.Flow, largest.Gateways, largest.Calls, largest.Throttled, largest.WallS, largest.BoundS, largest.Ratio, largest.PeakRSSMB)
	return writeJSON(o.jsonOut, results)
}

// printSummary is a line a night: each shape and size side by side.
func printSummary(out io.Writer, nights []sizeResult) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flow\tgateways\twall s\tbound s\twall/bound\tthrottled %\tcalls by action\tpeak RSS MB\t")
	for _, r := range nights {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.3f\t%.2f\t%s\t%.1f\t\n", r.Flow, r.Gateways, r.WallS, r.BoundS, r.Ratio,
			100*float64(r.Throttled)/float64(max(r.Calls, 1)), callsByAction(r), r.PeakRSSMB)
	}
	tw.Flush()
}

// callsByAction is a night's SAG calls of each action, in short.
func callsByAction(r sizeResult) string {
	var by []string
	for _, a := range slices.Sorted(maps.Keys(r.ByAction)) {
		short := map[string]string{"DescribeSmartAccessGateways": "list", "DescribeSmartAccessGatewayVersions": "versions",
			"DescribeSmartAccessGatewayAttribute": "attribute", "UpdateSmartAccessGatewayVersion": "update"}[a]
		by = append(by, fmt.Sprintf("%s %d", cmp.Or(short, a), r.ByAction[a]))
	}
	return strings.Join(by, ", ")
}

func printSize(out io.Writer, r sizeResult) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "== %d gateways: latency %v, limit %.0f/s per action (%s), %d instance(s) × API_QPS %.4g, MAX_CONCURRENCY %d\n",
		r.Gateways, time.Duration(r.LatencyMs*1e6), r.LimitQPS, r.Flow, r.Instances, r.APIQPS, r.Concurrency)
	fmt.Fprintf(tw, "wall\t%.1f s\t(timer invocation start → queue drained, every invocation answered)\n", r.WallS)
	fmt.Fprintf(tw, "invocations\t%d\t(%d failed; %d batches; %d verify requests left queued)\n", r.Invocations, r.Failed, r.Batches, r.VerifyLeft)
	fmt.Fprintf(tw, "API calls\t%d\n", r.Calls)
	actions := make([]string, 0, len(r.ByAction))
	for a := range r.ByAction {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		fmt.Fprintf(tw, "  %s\t%d\n", a, r.ByAction[a])
	}
	fmt.Fprintf(tw, "throttled\t%d\t(%.2f%% of calls)\n", r.Throttled, 100*float64(r.Throttled)/float64(max(r.Calls, 1)))
	fmt.Fprintf(tw, "bound\t%.1f s\t(the busiest action's answered calls / its limit of %.0f per s)\n", r.BoundS, r.LimitQPS)
	fmt.Fprintf(tw, "wall/bound\t%.3f\n", r.Ratio)
	fmt.Fprintf(tw, "peak RSS\t%.1f MB\t(max VmHWM of the function processes)\n", r.PeakRSSMB)
	if r.PlannerRSSMB > 0 {
		fmt.Fprintf(tw, "timer run RSS\t%.1f MB\t(VmHWM of its process as it ended: the planner's peak when it fanned out)\n", r.PlannerRSSMB)
	}
	fmt.Fprintf(tw, "up to date\t%d gateways\t%.3f API calls each\n", r.UpToDate, r.CallsPerUpToDt)
	fmt.Fprintf(tw, "outcomes\t%s\n", outcomeList(r.Outcomes))
	fmt.Fprintf(tw, "Tablestore\t%s\n", inline(r.LedgerCalls))
	fmt.Fprintf(tw, "MNS\t%s\n", inline(r.QueueCalls))
	fmt.Fprintf(tw, "events\t%d published, %d kept for a later run, %d failed\n", r.Events.Published, r.Events.Kept, r.Events.Failed)
	if r.UnusedBy != nil {
		fmt.Fprintf(tw, "unused API\t%.1f s\t(could have started a %s call, the busiest action, and did not; by what was going on:)\n", r.UnusedS, r.UnusedAction)
		for _, k := range byValue(r.UnusedBy) {
			fmt.Fprintf(tw, "  %s\t%.1f s\n", k, r.UnusedBy[k])
		}
		printTrend(tw, r)
		fmt.Fprintf(tw, "request time\t(seconds summed over requests, the largest)\n")
		for i, k := range byValue(r.RequestS) {
			if i < 8 {
				fmt.Fprintf(tw, "  %s\t%.1f s\n", k, r.RequestS[k])
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// printTrend shows how the planner and the workers at the start and at the
// end of the night left API capacity unused, per invocation.
func printTrend(tw io.Writer, r sizeResult) {
	var workers []invocationTrace
	for _, t := range r.PerInvocation {
		if t.Planner {
			fmt.Fprintf(tw, "  planner\t%.2f s of %.2f s\t(%d SAG calls; %s)\n", t.UnusedS, t.DurationS, t.SAGCalls, top(t.UnusedBy, 3))
		} else {
			workers = append(workers, t)
		}
	}
	if len(workers) == 0 {
		return
	}
	var head, tail float64
	for _, t := range workers {
		head, tail = head+t.HeadS, tail+t.TailS
	}
	n := float64(len(workers))
	fmt.Fprintf(tw, "  workers' head and tail\t%.1f ms, %.1f ms\t(mean, from the start to the first %s call and from the last one to the end)\n",
		1000*head/n, 1000*tail/n, r.UnusedAction)
	if len(workers) < 10 {
		return
	}
	tenth := len(workers) / 10
	for _, part := range []struct {
		name string
		ts   []invocationTrace
	}{{"first tenth of workers", workers[:tenth]}, {"last tenth of workers", workers[len(workers)-tenth:]}} {
		var dur, unused float64
		calls := 0
		by := map[string]float64{}
		for _, t := range part.ts {
			dur += t.DurationS
			unused += t.UnusedS
			calls += t.SAGCalls
			for k, v := range t.UnusedBy {
				by[k] += v / float64(len(part.ts))
			}
		}
		n := float64(len(part.ts))
		fmt.Fprintf(tw, "  %s\t%.3f s of %.3f s each\t(%.0f SAG calls; %s)\n", part.name, unused/n, dur/n, float64(calls)/n, top(by, 4))
	}
}

// top names the largest values of m with their seconds.
func top(m map[string]float64, n int) string {
	var parts []string
	for i, k := range byValue(m) {
		if i < n {
			parts = append(parts, fmt.Sprintf("%s %.3f s", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// byValue returns the keys, largest value first.
func byValue(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}

// inline prints counts by name in name order.
func inline(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

type coldStartResult struct {
	N        int     `json:"processes"`
	MedianMs float64 `json:"medianMs"`
	MinMs    float64 `json:"minMs"`
	MaxMs    float64 `json:"maxMs"`
	InitMs   float64 `json:"initMedianMs"`
	InvokeMs float64 `json:"invokeMedianMs"`
	WarmMs   float64 `json:"warmInvokeMedianMs"` // the same invocation again on the warm process
}

// coldStart starts fresh processes, each for one trivial invocation (a dry
// run naming the only gateway of a one-gateway fleet, on an emulator
// without latency), and times process start → answer.
func coldStart(o options) (coldStartResult, error) {
	f := fleet.Generate(fleet.Options{Seed: o.seed, Counts: map[fleet.Case]int{fleet.CaseUpToDate: 1}})
	out, closeOut, err := o.output()
	if err != nil {
		return coldStartResult{}, err
	}
	defer closeOut()
	w, err := simulation.Start(simulation.Options{Fleet: f})
	if err != nil {
		return coldStartResult{}, err
	}
	defer w.Close()
	for range o.coldStarts {
		if _, err := w.Deploy(simulation.Function{Binary: o.binary, Env: o.env(o.qps), Output: out}); err != nil {
			return coldStartResult{}, err
		}
	}
	payload := fmt.Appendf(nil, `{"dryRun":true,"gatewayIds":[%q]}`, f.Gateways[0].SmartAGID)
	var total, init, invoke, warm []float64
	for _, rt := range w.Runtimes() {
		began := time.Now()
		res, err := rt.Invoke(context.Background(), payload, fcsim.InvokeOptions{})
		took := time.Since(began)
		if err != nil {
			return coldStartResult{}, err
		}
		if res.Failed || !res.ColdStart {
			return coldStartResult{}, fmt.Errorf("cold start invocation: failed %v, cold %v: %s", res.Failed, res.ColdStart, res.Body)
		}
		total = append(total, ms(took))
		init = append(init, ms(res.InitDuration))
		invoke = append(invoke, ms(res.Duration))
		// The same again on the warm process: what the first invocation
		// spent on first use (clients, connections, lazy tables).
		res, err = rt.Invoke(context.Background(), payload, fcsim.InvokeOptions{})
		if err != nil || res.Failed || res.ColdStart {
			return coldStartResult{}, fmt.Errorf("warm invocation: %v %s", err, res.Body)
		}
		warm = append(warm, ms(res.Duration))
	}
	return coldStartResult{N: len(total), MedianMs: median(total), MinMs: slices.Min(total), MaxMs: slices.Max(total),
		InitMs: median(init), InvokeMs: median(invoke), WarmMs: median(warm)}, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func distributedMode(o options, sizes []int) error {
	n := 10000
	if len(sizes) > 0 {
		n = sizes[0]
	}
	var counts []int
	for _, s := range strings.Split(o.instances, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k <= 0 {
			return fmt.Errorf("-instances: %q is not a count", s)
		}
		counts = append(counts, k)
	}
	// One shape: the strictest asked for.
	flow := o.flows[len(o.flows)-1]
	var rows []sizeResult
	for _, k := range counts {
		fmt.Fprintf(os.Stderr, "distributed: %d gateways on %d instance(s) × API_QPS %.4g, flow control %s…\n", n, k, o.instanceQPS, flow)
		r, err := measure(o, flow, n, k, o.instanceQPS)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	fmt.Printf("distributed: %d gateways, latency %v, limit %.0f/s per action (%s), API_QPS %.4g per instance, MAX_CONCURRENCY %d\n",
		n, o.latency, o.qps, flow, o.instanceQPS, o.concurrency)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tasked/s per action\twall s\tcalls\tthrottled\tthrottled %\tbound s\twall/bound\tcalls by action\tpeak RSS MB\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.1f\t%d\t%d\t%.2f\t%.1f\t%.3f\t%s\t%.1f\t\n", r.Instances, float64(r.Instances)*r.APIQPS, r.WallS,
			r.Calls, r.Throttled, 100*float64(r.Throttled)/float64(max(r.Calls, 1)), r.BoundS, r.Ratio, callsByAction(r), r.PeakRSSMB)
	}
	tw.Flush()
	fmt.Println("bound: the busiest action's answered calls / the limit per action, the floor however many instances ask.")
	last := rows[len(rows)-1]
	fmt.Printf("bench: distributed flow=%s gateways=%d instances=%d calls=%d throttled=%d wall_s=%.1f bound_s=%.1f ratio=%.3f rss_mb=%.1f\n",
		flow, n, last.Instances, last.Calls, last.Throttled, last.WallS, last.BoundS, last.Ratio, last.PeakRSSMB)
	return writeJSON(o.jsonOut, map[string]any{"distributed": rows})
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func soakMode(o options, sizes []int) error {
	n := 100000
	if len(sizes) > 0 {
		n = sizes[0]
	}
	out, closeOut, err := o.output()
	if err != nil {
		return err
	}
	defer closeOut()
	began := time.Now()
	const faultRate = 0.1
	res, err := soak.Run(context.Background(), soak.Config{Binary: o.binary, Gateways: n, Seed: o.seed, FaultRate: faultRate,
		Runtimes: o.soakRuntimes, Kills: o.kills, Output: out, Progress: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf("soak: %d gateways (%d visible), %d instances, %.0f%% SAG faults of every kind, %d invocations crashed by SIGKILL\n",
		n, res.Gateways, o.soakRuntimes, 100*faultRate, res.Crashes)
	fmt.Printf("night           %.1f s, %d invocations (%d failed, %d redelivered, %d given up)\n", res.Night.Wall.Seconds(),
		res.Night.Trigger.Invocations, res.Night.Trigger.Failures, res.Night.Trigger.Redeliveries, len(res.Night.Trigger.DeadLetters))
	fmt.Printf("SAG calls       %d (%d with an injected fault, %d throttled); %d update calls reached the service, %d upgrades applied\n",
		res.Calls.Total, res.Calls.Faults, res.Calls.Throttled, res.Updates, res.Applied)
	fmt.Printf("final outcomes  %s\n", outcomeList(res.Outcomes))
	fmt.Printf("                (%d of them verified by a redelivered batch or a verify run, during the night or after it)\n", res.Settled)
	fmt.Printf("                (%d upgrades started although reported failed/unconfirmed: lost answer, and the read after it could not tell)\n", res.Unconfirmed)
	fmt.Printf("                (%d HA pairs claimed by a killed run just before its call: held by the claim until an upgrade would show, not called)\n", res.Held)
	fmt.Printf("total           %.1f s\n", time.Since(began).Seconds())
	if err := writeJSON(o.jsonOut, map[string]any{"soak": map[string]any{"gateways": res.Gateways, "crashes": res.Crashes,
		"calls": res.Calls, "updates": res.Updates, "applied": res.Applied, "outcomes": res.Outcomes, "settled": res.Settled, "unconfirmedButApplied": res.Unconfirmed, "held": res.Held,
		"problems": res.Problems}}); err != nil {
		return err
	}
	if len(res.Problems) > 0 {
		for _, p := range res.Problems {
			fmt.Println("PROBLEM:", p)
		}
		return fmt.Errorf("soak: %d problems", len(res.Problems))
	}
	fmt.Printf("soak: ok: every gateway has exactly one final outcome (%d HA pairs held by a killed run's claim), none was upgraded or called twice\n", res.Held)
	return nil
}

// outcomeList prints counts by "outcome/reason" in order, "requested 5,
// skipped/offline 2" (an outcome without a reason loses its slash).
func outcomeList(counts map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimSuffix(k, "/"), counts[k]))
	}
	return strings.Join(parts, ", ")
}

// vmHWM reads a process's peak resident set size from /proc (Linux; 0
// elsewhere).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
