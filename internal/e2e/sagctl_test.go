package e2e_test

// The operator's tool end to end: the built cmd/sagctl, through the official
// FC 3.0 SDK (and STS's GetCallerIdentity), against the simulated cloud's
// InvokeFunction, which runs s.yaml's three functions (the FC build) under
// the FC runtime emulator on the ledger and the work queue: what an operator
// sees in production.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

var (
	sagctlOnce sync.Once
	sagctlPath string
	sagctlErr  error
)

// sagctlBinary builds cmd/sagctl once, beside the function's binary.
func sagctlBinary(t testing.TB) string {
	t.Helper()
	sagctlOnce.Do(func() {
		sagctlPath = filepath.Join(filepath.Dir(binary), "sagctl")
		cmd := exec.Command("go", "build", "-o", sagctlPath, "./cmd/sagctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			sagctlErr = errors.New("building sagctl: " + err.Error() + "\n" + string(out))
		}
	})
	if sagctlErr != nil {
		t.Fatal(sagctlErr)
	}
	return sagctlPath
}

// fleetOps is a simulated cloud with s.yaml's three functions deployed and
// an operator, a RAM user, with sagctl pointed at it.
type fleetOps struct {
	*simulation.World
	t        testing.TB
	fns      simulation.Functions
	sweeps   []*fcsim.Runtime // the instances the triggers' function runs on
	operator auth.Credential
	out      *lockedBuffer
	nights   int
}

type opsOptions struct {
	fleet     *fleet.Fleet // default the demo fleet
	env       []string     // the functions' configuration
	instances int          // of the triggers' function; default 1
}

func newFleetOps(t testing.TB, o opsOptions) *fleetOps {
	t.Helper()
	sagctlBinary(t)
	if o.fleet == nil {
		var err error
		if o.fleet, err = fleet.Load(filepath.Join(root, "testdata/fleets/demo.json")); err != nil {
			t.Fatal(err)
		}
	}
	sim, err := simulation.Start(simulation.Options{Fleet: o.fleet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	w := &fleetOps{World: sim, t: t, out: &lockedBuffer{}}
	// Leases and deadlines run on the machine's clock, the devices on the
	// simulated one: a short UPGRADE_TIME lets a night's verifications
	// (night) find the upgrades done.
	env := []string{"API_QPS=200", "MAX_CONCURRENCY=8", "UPGRADE_TIME=" + opsUpgradeTime.String(), "VERIFY_TIMEOUT=2m", "LEDGER_LEASE=3m"}
	fn := simulation.Function{Binary: binary, Env: append(env, o.env...),
		Timeout: time.Minute, Output: w.out, MaxAsyncRetryAttempts: 2}
	if w.fns, err = w.DeployAll(fn); err != nil {
		t.Fatal(err)
	}
	w.sweeps = []*fcsim.Runtime{w.fns.Sweeps}
	for range max(o.instances, 1) - 1 {
		rt, err := w.Deploy(fn)
		if err != nil {
			t.Fatal(err)
		}
		w.sweeps = append(w.sweeps, rt)
	}
	w.operator = w.Cloud.Keyring.AddUserKey(o.fleet.AccountID, "oncall")
	return w
}

// sagctl runs the built sagctl with the operator's environment.
func (w *fleetOps) sagctl(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	var out, errs bytes.Buffer
	cmd := exec.Command(sagctlPath, args...)
	cmd.Env = []string{
		"HOME=" + w.t.TempDir(),
		"SAGCTL_ENDPOINT=" + w.Cloud.URL,
		"ALIBABA_CLOUD_REGION_ID=" + cloudsim.Region,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + w.operator.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + w.operator.AccessKeySecret,
	}
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		w.t.Fatalf("sagctl %q: %v", args, err)
	}
	if strings.Contains(out.String()+errs.String(), w.operator.AccessKeySecret) {
		w.t.Errorf("sagctl %q printed the access key secret", args)
	}
	return code, out.String(), errs.String()
}

// report runs sagctl with --json, wants exit 0 and decodes the report.
func (w *fleetOps) report(args ...string) events.Report {
	w.t.Helper()
	code, out, errs := w.sagctl(append(args, "--json")...)
	if code != 0 {
		w.t.Fatalf("sagctl %q: exit %d\n%s", args, code, errs)
	}
	var r events.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		w.t.Fatalf("sagctl %q --json: %v\n%s", args, err, out)
	}
	return r
}

// wants runs sagctl and wants its exit status and each text on stdout or
// stderr.
func (w *fleetOps) wants(code int, texts []string, args ...string) string {
	w.t.Helper()
	got, out, errs := w.sagctl(args...)
	if got != code {
		w.t.Fatalf("sagctl %q: exit %d, want %d\n%s%s", args, got, code, out, errs)
	}
	for _, text := range texts {
		if !strings.Contains(out+errs, text) {
			w.t.Errorf("sagctl %q: no %q in\n%s%s", args, text, out, errs)
		}
	}
	return out
}

// opsUpgradeTime is the functions' UPGRADE_TIME (machine time).
const opsUpgradeTime = time.Second

// night runs the next simulated night on the triggers' function: the
// timer's sweep and the batches it fans out; then, the upgrades done on
// both clocks, the work queue's verifications for four hours of simulated
// time.
func (w *fleetOps) night() simulation.Night {
	w.t.Helper()
	fired := w.Cloud.Fleet.Start.Add(time.Duration(w.nights) * 24 * time.Hour)
	w.nights++
	w.Cloud.Clock.Set(fired)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := w.RunNight(ctx, simulation.TimerEvent(fired), cloudsim.Trigger{Runtimes: w.sweeps, Until: fired}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	time.Sleep(opsUpgradeTime)
	w.Cloud.Clock.Advance(11 * time.Minute) // sagsim's reboot: 10 min
	verifications, err := w.RunNight(ctx, nil, cloudsim.Trigger{Runtimes: w.sweeps, Until: fired.Add(4 * time.Hour)}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	n.Invocations = append(n.Invocations, verifications.Invocations...)
	for _, inv := range n.Invocations {
		if inv.Report == nil {
			w.t.Fatalf("night %d: an invocation failed: %s", w.nights, inv.Result.Body)
		}
	}
	return n
}

// updates counts the update calls that reached SAG, by the gateway's model.
func (w *fleetOps) updates() map[string]int {
	model := map[string]string{}
	for _, g := range w.Cloud.Fleet.Gateways {
		model[g.SmartAGID] = g.HardwareVersion
	}
	n := map[string]int{}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction && simulation.Reached(c) {
			n[model[c.SmartAGID]]++
			n[""]++
		}
	}
	return n
}

// accepted counts the update calls that started an upgrade.
func (w *fleetOps) accepted() int {
	n := 0
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction && c.Applied {
			n++
		}
	}
	return n
}

// updated is the set of gateways of a model an update call reached.
func (w *fleetOps) updated(model string) map[string]bool {
	of := map[string]bool{}
	for _, g := range w.Cloud.Fleet.Gateways {
		of[g.SmartAGID] = g.HardwareVersion == model
	}
	ids := map[string]bool{}
	for _, c := range w.Cloud.SAG.Calls() {
		if c.Action == simulation.UpdateAction && simulation.Reached(c) && of[c.SmartAGID] {
			ids[c.SmartAGID] = true
		}
	}
	return ids
}

// outdated returns n outdated gateways of a model.
func (w *fleetOps) outdated(model string, n int) []string {
	var ids []string
	for _, g := range w.Cloud.Fleet.Gateways {
		if len(ids) < n && g.Case == fleet.CaseOutdated && g.HardwareVersion == model {
			ids = append(ids, g.SmartAGID)
		}
	}
	return ids
}

// steadyFleet is a fleet whose every upgrade goes through: outdated gateways
// (of two models) and up-to-date ones, none lost, reverting or paired, so a
// wave is verified the night it starts.
func steadyFleet() *fleet.Fleet {
	return fleet.Generate(fleet.Options{Seed: 5, Counts: map[fleet.Case]int{fleet.CaseOutdated: 100, fleet.CaseUpToDate: 20}})
}

func rollout(t testing.TB, st *events.Status, model string) upgrade.Rollout {
	t.Helper()
	if st == nil {
		t.Fatal("no status")
	}
	for _, ro := range st.Rollouts {
		if ro.Model == model && ro.VersionType == upgrade.VersionDevice {
			return ro
		}
	}
	t.Fatalf("no Device rollout of %s in %+v", model, st.Rollouts)
	return upgrade.Rollout{}
}

// Run, stop, resume and reset through the control function; a reset or a
// pause of a rollout that does not exist is rejected; a query function
// steers nothing.
func TestSagctlSteers(t *testing.T) {
	w := newFleetOps(t, opsOptions{env: []string{"ROLLOUT_CANARY=10000"}})
	ids := w.outdated("sag-1000", 3)
	r := w.report(append([]string{"run", "--correlation-id", "CHG-1"}, ids...)...)
	if r.Counts.Requested != 3 || w.updates()[""] != 3 {
		t.Fatalf("run: counts %+v, %d update calls", r.Counts, w.updates()[""])
	}
	// A second run finds them rebooting: nothing more is called.
	w.wants(0, []string{ids[0], "in_progress"}, "run", ids[0], ids[1], ids[2])
	if n := w.updates()[""]; n != 3 {
		t.Fatalf("the second run made %d more update calls", n-3)
	}

	w.wants(0, []string{"killSwitch", "kill switch off → on"}, "stop", "--correlation-id", "INC-7")
	w.wants(0, []string{"unchanged: kill switch on"}, "stop")
	more := w.outdated("sag-1000", 6)[3:]
	w.wants(0, []string{"deferred", "kill_switch"}, append([]string{"run"}, more...)...)
	if n := w.updates()[""]; n != 3 {
		t.Fatalf("%d update calls with the kill switch on", n-3)
	}
	w.wants(0, []string{"Kill switch: ON"}, "status")
	w.wants(0, []string{"kill switch on → off"}, "resume")
	w.wants(0, []string{"requested"}, append([]string{"run"}, more...)...)
	if n := w.updates()[""]; n != 6 {
		t.Fatalf("%d update calls after resume, want 6", n)
	}

	// The run made rollouts; one that does not exist is refused, and sagctl
	// says the function rejected it.
	for _, args := range [][]string{{"reset", "--target", "9.9.9"}, {"pause", "--target", "9.9.9"}, {"unpause", "--target", "9.9.9", "--model", "sag-1000"},
		{"approve", "--target", "9.9.9", "--model", "sag-1000", "--wave", "1"}} {
		w.wants(1, []string{"sag-upgrade-control rejected the request (RejectedRequest)", "9.9.9"}, args...)
	}
	target := rollout(t, w.report("status").Status, "sag-1000").Target
	w.wants(0, []string{"rollout#Device#sag-1000#" + target}, "reset", "--target", target, "--model", "sag-1000")

	// The look-only function answers no control request.
	w.wants(1, []string{"sag-upgrade-query rejected the request (RejectedRequest)", "QUERY_ENDPOINT"}, "stop", "--control-function", simulation.QueryFunctionName)
	if st := w.report("status").Status; st.KillSwitch.KillSwitch != nil && *st.KillSwitch.KillSwitch {
		t.Fatal("the query function turned the kill switch on")
	}
	// Nor does a triggers' function (a topic message looks like sagctl).
	w.wants(1, []string{"RejectedRequest", "control function"}, "stop", "--control-function", simulation.FunctionName)
}

// Status, history and plan read the ledger: status and history make no SAG
// call at all, plan no update call; all three say what the runs did.
func TestSagctlLooks(t *testing.T) {
	w := newFleetOps(t, opsOptions{env: []string{"ROLLOUT_CANARY=10000"}})
	n := w.night()
	sweep := n.Invocations[0].Report
	ids := w.outdated("sag-1000", 1)

	calls := len(w.Cloud.SAG.Calls())
	st := w.report("status").Status
	ro := rollout(t, st, "sag-1000")
	if ro.Verified == 0 || ro.Breaker != "closed" {
		t.Errorf("rollout after a night: %+v", ro)
	}
	if len(st.Runs) == 0 || st.Fleet == nil || len(st.Fleet.Regions) == 0 {
		t.Errorf("status: runs %+v, fleet %+v", st.Runs, st.Fleet)
	}
	// The last runs, newest first: the night's sweeps (the timer's and its
	// batches), not the verifications that followed each upgrade.
	for _, r := range st.Runs {
		if r.Kind != upgrade.KindSweep {
			t.Errorf("a %s run among the last runs: %+v", r.Kind, r)
		}
	}
	if len(st.Runs) < 30 && !slices.ContainsFunc(st.Runs, func(r upgrade.RunSummary) bool { return r.RunID == sweep.RunID }) {
		t.Errorf("the timer's sweep %s is not among the last runs %+v", sweep.RunID, st.Runs)
	}
	w.wants(0, []string{"Kill switch: off", "Rollouts:", "sag-1000", ro.Target, "Last runs:", st.Runs[0].RunID, "Fleet versions"}, "status")
	h := w.report("history", ids[0]).History
	if h == nil || h.SmartAGID != ids[0] || len(h.Records) == 0 || h.Records[0].State != "verified" || len(h.Trail) < 2 {
		t.Fatalf("history of %s: %+v", ids[0], h)
	}
	w.wants(0, []string{"Gateway " + ids[0], "verified", "requested", sweep.RunID}, "history", ids[0])
	w.wants(1, []string{"RejectedRequest", "the ledger holds nothing of sag-nothinghere"}, "history", "sag-nothinghere")
	if n := len(w.Cloud.SAG.Calls()); n != calls {
		t.Fatalf("status and history made %d SAG calls", n-calls)
	}

	updates := w.updates()[""]
	p := w.report("plan")
	if p.Plan == nil || !p.Plan.NoFanout || len(p.Plan.At) == 0 || !p.DryRun || p.Counts.Requested != 0 {
		t.Fatalf("plan: %+v, counts %+v", p.Plan, p.Counts)
	}
	w.wants(0, []string{"Evaluated as at the next window opening", "Without fan-out", "Nothing was called"}, "plan")
	if n := w.updates()[""]; n != updates {
		t.Fatalf("plan made %d update calls", n-updates)
	}
	// At the alias the triggers run, as at LATEST.
	w.wants(0, []string{"Kill switch"}, "status", "--qualifier", simulation.Alias)
	if calls := w.Cloud.FC.Calls(); calls[len(calls)-1].Qualifier != simulation.Alias {
		t.Fatalf("the last invocation was of %q", calls[len(calls)-1].Qualifier)
	}
}

// ROLLOUT_APPROVAL=manual: the canary starts by itself; the next wave waits
// night after night, its gateways deferred as awaiting approval and no
// update call made, until sagctl approves exactly that wave; then it moves
// one wave and waits again.
func TestSagctlManualApproval(t *testing.T) {
	w := newFleetOps(t, opsOptions{fleet: steadyFleet(), env: []string{"ROLLOUT_APPROVAL=manual", "ROLLOUT_CANARY=2", "ROLLOUT_SOAK=0s"}})
	w.night()
	if n := w.updates()["sag-1000"]; n != 2 {
		t.Fatalf("the canary made %d update calls, want 2", n)
	}
	var awaiting upgrade.Rollout
	for night := 2; night <= 3; night++ {
		n := w.night()
		if got := w.updates()["sag-1000"]; got != 2 {
			t.Fatalf("night %d: %d update calls for sag-1000 while its wave awaits approval", night, got-2)
		}
		held := 0
		for _, res := range n.Invocations[0].Report.Results {
			if res.Reason == upgrade.ReasonAwaitingApproval {
				held++
			}
		}
		if held == 0 {
			t.Fatalf("night %d: no gateway deferred as awaiting approval", night)
		}
		awaiting = rollout(t, w.report("status").Status, "sag-1000")
		if awaiting.Wave != 0 || awaiting.AwaitingApproval != 1 {
			t.Fatalf("night %d: rollout %+v, want wave 0 awaiting approval of wave 1", night, awaiting)
		}
	}
	w.wants(0, []string{"AWAITING APPROVAL", "wave 1"}, "status")
	target := awaiting.Target
	// Only the next wave may be approved.
	w.wants(1, []string{"RejectedRequest"}, "approve", "--target", target, "--model", "sag-1000", "--wave", "2")
	w.wants(0, []string{"rollout#Device#sag-1000#" + target, "approved none → wave 1"},
		"approve", "--target", target, "--model", "sag-1000", "--wave", "1", "--correlation-id", "CAB-9")

	// Exactly wave 1 moves: its gateways, and no more, until it is verified
	// and wave 2 waits for its own approval.
	canary := w.updated("sag-1000")
	var wave1 map[string]bool
	for night := 1; ; night++ {
		w.night()
		ro := rollout(t, w.report("status").Status, "sag-1000")
		got := w.updated("sag-1000")
		if night == 1 {
			wave1 = got
			if ro.Wave != 1 || ro.LetIn != ro.WaveLimit || len(got)-len(canary) != ro.WaveLimit-2 {
				t.Fatalf("after the approval: %d more gateways updated, rollout %+v; want wave 1 filled, %d more", len(got)-len(canary), ro, ro.WaveLimit-2)
			}
		}
		if len(got) != len(wave1) || ro.Wave != 1 {
			t.Fatalf("night %d after the approval: %d gateways updated (wave 1 made %d), rollout %+v", night, len(got), len(wave1), ro)
		}
		if ro.AwaitingApproval == 2 {
			break
		}
		if night == 3 {
			t.Fatalf("wave 1 never verified: %+v", ro)
		}
	}
}

// A paused rollout's gateways get no update call, across nights and even
// forced, until unpaused; the other models' rollouts go on.
func TestSagctlPause(t *testing.T) {
	w := newFleetOps(t, opsOptions{fleet: steadyFleet(), env: []string{"ROLLOUT_CANARY=2", "ROLLOUT_SOAK=0s"}})
	w.night()
	target := rollout(t, w.report("status").Status, "sag-1000").Target
	w.wants(0, []string{"paused no → yes"}, "pause", "--target", target, "--model", "sag-1000", "--operator", "alice@noc")
	before := w.updates()
	for night := 2; night <= 3; night++ {
		n := w.night()
		if got := w.updates()["sag-1000"]; got != before["sag-1000"] {
			t.Fatalf("night %d: %d update calls for the paused rollout", night, got-before["sag-1000"])
		}
		paused := 0
		for _, res := range n.Invocations[0].Report.Results {
			if res.Reason == upgrade.ReasonPaused {
				paused++
			}
		}
		if paused == 0 {
			t.Fatalf("night %d: no gateway deferred as paused", night)
		}
	}
	if got := w.updates()["sag-vcpe"]; got == before["sag-vcpe"] {
		t.Error("the sag-vcpe rollout did not go on while sag-1000's was paused")
	}
	ro := rollout(t, w.report("status").Status, "sag-1000")
	if !ro.Paused || ro.PausedBy == "" {
		t.Fatalf("status: %+v", ro)
	}
	w.wants(0, []string{"yes, by " + ro.PausedBy}, "status")
	// Force passes the window and the breaker, never a pause.
	id := w.outdated("sag-1000", 120)[60]
	w.wants(0, []string{"deferred", "paused"}, "run", "--force", id)
	if got := w.updates()["sag-1000"]; got != before["sag-1000"] {
		t.Fatal("a forced run called for a paused rollout's gateway")
	}

	w.wants(0, []string{"paused yes → no"}, "unpause", "--target", target, "--model", "sag-1000")
	w.night()
	if got := w.updates()["sag-1000"]; got == before["sag-1000"] {
		t.Fatal("no update call for sag-1000 after unpause")
	}
}

// MAX_UPGRADES_PER_NIGHT holds across the batches a planner fans out and
// the instances that sweep them, and status counts it.
func TestSagctlNightCap(t *testing.T) {
	const limit = 15
	w := newFleetOps(t, opsOptions{instances: 3, env: []string{"ROLLOUT_CANARY=10000", "FANOUT_THRESHOLD=20", "BATCH_SIZE=10",
		"MAX_UPGRADES_PER_NIGHT=15"}})
	n := w.night()
	batches, capped := 0, 0
	for _, inv := range n.Invocations {
		if inv.Report.Fanout != nil {
			batches += inv.Report.Fanout.Batches
		}
		for _, res := range inv.Report.Results {
			if res.Reason == upgrade.ReasonNightLimit {
				capped++
			}
		}
	}
	if batches < 3 || capped == 0 {
		t.Fatalf("%d batches, %d gateways deferred for the night's limit", batches, capped)
	}
	// The cap counts upgrades the service accepted: a refused call
	// (a reseller's gateway) gives its share back.
	if got := w.accepted(); got != limit {
		for _, inv := range n.Invocations {
			for _, res := range inv.Report.Results {
				if res.Outcome != upgrade.OutcomeSkipped && res.Reason != upgrade.ReasonNightLimit {
					t.Logf("%s: %s/%s %s", res.SmartAGID, res.Outcome, res.Reason, res.Error)
				}
			}
		}
		t.Fatalf("%d upgrades started in a night capped at %d", got, limit)
	}
	st := w.report("status").Status
	if st.NightUsed != limit || st.NightLimit != limit {
		t.Fatalf("status: night %d of %d", st.NightUsed, st.NightLimit)
	}
	w.wants(0, []string{"Tonight: 15 of 15 upgrades"}, "status")
	// A run by hand that night is held too.
	id := w.outdated("sag-1000", 107)[100]
	calls := w.updates()[""]
	w.wants(0, []string{"deferred", "night_limit"}, "run", id)
	if got := w.updates()[""]; got != calls {
		t.Fatalf("a run by hand passed the night's cap: %d update calls", got-calls)
	}
}
