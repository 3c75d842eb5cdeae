package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// binary is the command as `go run .` builds it: the command line with its
// simulator. (internal/e2e runs the FC build.)
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sag-upgrade-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "main")
	if err := simulation.Build(".", binary); err != nil {
		fmt.Fprintln(os.Stderr, "building the command:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The README's first command: a sweep of the demo fleet on the simulated
// cloud, the report alone on stdout, a readable summary on stderr, exit 0.
func TestSimulate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "-simulate")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-simulate: %v\n%s", err, stderr.String())
	}
	var report events.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("stdout is not the report alone: %v", err)
	}
	if report.Counts.Scanned != 198 || report.Counts.Requested == 0 || len(report.Results) != report.Counts.Scanned {
		t.Fatalf("report counts %+v", report.Counts)
	}
	for _, want := range []string{"OUTCOME", "requested", "skipped", "up_to_date", "Outcome events published", "→ 2.3.1: requested"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the summary on stderr lacks %q", want)
		}
	}
}

func TestSimulateWithAnEventFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "-simulate", "-event", "testdata/events/direct-dry-run.json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var report events.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || !report.DryRun || report.Counts.Requested != 0 {
		t.Fatalf("dry run report %+v, %v", report.Counts, err)
	}

	cmd = exec.Command(binary, "-simulate", "-event", "testdata/events/malformed-bad-gateway-id.json")
	stderr.Reset()
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "gatewayIds") {
		t.Fatalf("a malformed event: %v\n%s", err, stderr.String())
	}
}

func TestServeSimulatedCloud(t *testing.T) {
	exported, stop := serveSimulated(t)
	joined := strings.Join(exported, "\n")
	for _, want := range []string{"SAG_ENDPOINT=http://127.0.0.1:", "MNS_ENDPOINT=", "OUTCOME_TOPIC=", "ALIBABA_CLOUD_ACCESS_KEY_ID="} {
		if !strings.Contains(joined, want) {
			t.Errorf("-serve does not print %q:\n%s", want, joined)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// serveSimulated starts "-simulate -serve" and returns the environment it
// prints (NAME=value), and stop, which interrupts it and says how it ended.
func serveSimulated(t *testing.T) (env []string, stop func() error) {
	t.Helper()
	cmd := exec.Command(binary, "-simulate", "-serve", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "export ") {
			env = append(env, strings.TrimPrefix(l, "export "))
		}
		if strings.Contains(lines.Text(), "Interrupt") {
			break
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("-serve ended with %v", err)
			}
			return nil
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			return errors.New("-serve did not stop on an interrupt")
		}
	}
	t.Cleanup(func() { stop() })
	return env, stop
}

// "-event FILE" is the real-cloud mode: pointed by its environment at the
// simulated cloud served by another process, the dry-run event plans the
// same gateways as the in-process simulation does, and calls nothing.
func TestEventFileAgainstAServedCloud(t *testing.T) {
	env, _ := serveSimulated(t)
	const event = "testdata/events/direct-dry-run.json"
	run := func(args ...string) events.Report {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, args...)
		// The emulator is local: no need for the default, cautious rate.
		cmd.Env = append(append(cmd.Environ(), env...), "API_QPS=100")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		for _, kv := range env {
			if k, v, _ := strings.Cut(kv, "="); k == "ALIBABA_CLOUD_ACCESS_KEY_SECRET" &&
				(strings.Contains(stdout.String(), v) || strings.Contains(stderr.String(), v)) {
				t.Errorf("%v: the access key secret was printed", args)
			}
		}
		var report events.Report
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("%v: stdout is not a report: %v", args, err)
		}
		return report
	}
	planned := func(r events.Report) map[string]string {
		m := map[string]string{}
		for _, res := range r.Results {
			if res.Outcome == upgrade.OutcomePlanned {
				m[res.SmartAGID+"/"+string(res.VersionType)] = res.ToVersion
			}
		}
		return m
	}
	want := planned(run("-simulate", "-event", event))
	if len(want) == 0 {
		t.Fatal("the simulated dry run planned nothing")
	}
	// Twice: had the first called for an upgrade, its gateway would be
	// rebooting, not planned again.
	for i := range 2 {
		report := run("-event", event)
		if !report.DryRun || report.Trigger != events.TriggerDirect || report.Counts.Requested != 0 || report.Counts.Failed != 0 {
			t.Fatalf("run %d: dry run %v, trigger %q, counts %+v", i, report.DryRun, report.Trigger, report.Counts)
		}
		if got := planned(report); !maps.Equal(got, want) {
			t.Fatalf("run %d: planned %d gateways %v, want the simulation's %d %v", i, len(got), got, len(want), want)
		}
	}
}

func TestUsageAndDebugRefusal(t *testing.T) {
	if err := exec.Command(binary).Run(); err == nil {
		t.Error("no flags: want a usage error")
	}
	cmd := exec.Command(binary, "-simulate")
	cmd.Env = append(cmd.Environ(), "DEBUG=sdk")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DEBUG=sdk") {
		t.Fatalf("DEBUG=sdk was not refused: %v %s", err, out)
	}
}

// The usage line names every flag that -h lists, and a command line with
// none says it and exits 2.
func TestUsageListsEveryFlag(t *testing.T) {
	out, err := exec.Command(binary, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	usage, defaults, _ := strings.Cut(string(out), "\n\n")
	flags := regexp.MustCompile(`(?m)^  -([a-z]+)`).FindAllStringSubmatch(defaults, -1)
	if len(flags) < 7 {
		t.Fatalf("-h lists %d flags:\n%s", len(flags), out)
	}
	for _, f := range flags {
		if !regexp.MustCompile(`-` + f[1] + `\b`).MatchString(usage) {
			t.Errorf("the usage line lacks -%s:\n%s", f[1], usage)
		}
	}
	out, err = exec.Command(binary).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || strings.TrimSpace(string(out)) != usage {
		t.Errorf("no flags: %v\n%s", err, out)
	}
}

// -audit prints a trail only after nights, and only of a gateway the fleet
// has: otherwise the command says so, runs nothing and exits 2.
func TestAuditNeedsNightsAndAGatewayOfTheFleet(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-simulate", "-audit", "sag-xhlyhgshtqqag"}, "sag-upgrade: -audit needs -nights N"},
		{[]string{"-simulate", "-nights", "2", "-audit", "sag-nosuchgateway"}, "sag-upgrade: -audit sag-nosuchgateway: no such gateway in testdata/fleets/demo.json"},
		{[]string{"-audit", "sag-xhlyhgshtqqag", "-nights", "2"}, "sag-upgrade: -nights needs -simulate"},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, c.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.HasPrefix(stderr.String(), c.want) ||
			strings.Contains(stderr.String(), "Night 1") || stdout.Len() != 0 {
			t.Errorf("%q: %v, want exit 2 and %q first, no night and no report\nstdout: %q\nstderr: %s", c.args, err, c.want, stdout.String(), stderr.String())
		}
	}
}

// -nights runs simulated nights and -audit prints a gateway's audit trail
// from the emulated Tablestore: who triggered each step, in which run and FC
// request, with which API request id, and what was verified, in order.
func TestSimulateNightsAndAudit(t *testing.T) {
	const id = "sag-xhlyhgshtqqag" // outdated in the demo fleet
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "-simulate", "-nights", "2", "-audit", id)
	cmd.Env = append(os.Environ(), "ROLLOUT_CANARY=10000", "LOG_LEVEL=warn") // every gateway on night 1
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var reports []events.Report
	if err := json.Unmarshal(stdout.Bytes(), &reports); err != nil || len(reports) < 2 {
		t.Fatalf("stdout: %d reports, %v", len(reports), err)
	}
	out := stderr.String()
	for _, want := range []string{"=== Night 1,", "\nNight 1:", "=== Night 2,", "\nNight 2:", "\nLedger: verified "} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	_, trail, ok := strings.Cut(out, "Audit trail of "+id+":\n")
	if !ok {
		t.Fatalf("no audit trail on stderr:\n%s", out)
	}
	// Where the reports went is said after the trail.
	trail, _, _ = strings.Cut(trail, "The reports of every run (a JSON array) are on stdout.")
	rows := strings.Split(strings.TrimSpace(trail), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], "TIME") {
		t.Fatalf("audit trail:\n%s", trail)
	}
	// TIME (date, hour, zone) EVENT FROM → TO TRIGGER RUN FC-REQUEST [API-REQUEST]
	var apiRequest string
	for i, want := range []struct{ event, trigger string }{{"claimed", "timer"}, {"requested", "timer"}, {"verified", "mns-queue"}} {
		f := strings.Fields(rows[i+1])
		if len(f) < 10 || f[3] != want.event || f[4] != "2.0.8" || f[6] != "2.3.1" || f[7] != want.trigger ||
			!strings.HasPrefix(f[8], "run-") || !strings.HasPrefix(f[9], "sim-") {
			t.Fatalf("entry %d: %q, want %s by %s with its run and FC request", i, rows[i+1], want.event, want.trigger)
		}
		switch {
		case i == 0 && len(f) != 10:
			t.Errorf("the claim has an API request id: %q", rows[i+1])
		case i == 1:
			apiRequest = f[10]
		case i == 2 && f[10] != apiRequest:
			t.Errorf("verified names API request %s, the request was %s", f[10], apiRequest)
		}
	}
}
