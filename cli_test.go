package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

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
	cmd := exec.Command(binary, "-simulate", "-serve", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := bufio.NewScanner(stderr)
	var exported []string
	for lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "export ") {
			exported = append(exported, l)
		}
		if strings.Contains(lines.Text(), "Interrupt") {
			break
		}
	}
	go func() { done <- cmd.Wait() }()
	joined := strings.Join(exported, "\n")
	for _, want := range []string{"SAG_ENDPOINT=http://127.0.0.1:", "MNS_ENDPOINT=", "OUTCOME_TOPIC=", "ALIBABA_CLOUD_ACCESS_KEY_ID="} {
		if !strings.Contains(joined, want) {
			t.Errorf("-serve does not print %q:\n%s", want, joined)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("-serve ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("-serve did not stop on an interrupt")
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
