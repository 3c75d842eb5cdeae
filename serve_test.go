package main_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// "-simulate -serve" runs s.yaml's three functions behind FC 3.0's
// InvokeFunction on the simulated cloud's address: sagctl, given only what
// it prints, finds the functions, learns who it is from STS, and looks and
// steers as in production.
func TestSagctlAgainstTheServedFunctions(t *testing.T) {
	exported, stop := serveSimulated(t)
	sagctl := filepath.Join(t.TempDir(), "sagctl")
	if out, err := exec.Command("go", "build", "-o", sagctl, "./cmd/sagctl").CombinedOutput(); err != nil {
		t.Fatalf("building sagctl: %v\n%s", err, out)
	}
	// What sagctl needs comes first; the function's own environment (run
	// by hand) follows and has another key.
	env := []string{"HOME=" + t.TempDir()}
	seen := map[string]bool{}
	var secret string
	for _, kv := range exported {
		name, value, _ := strings.Cut(kv, "=")
		if !seen[name] {
			seen[name] = true
			env = append(env, kv)
			if name == "ALIBABA_CLOUD_ACCESS_KEY_SECRET" {
				secret = value
			}
		}
	}
	if !seen["SAGCTL_ENDPOINT"] || secret == "" {
		t.Fatalf("-serve does not say how to point sagctl at it:\n%s", strings.Join(exported, "\n"))
	}
	run := func(args ...string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(sagctl, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		code := 0
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), secret) {
			t.Errorf("sagctl %q printed the secret", args)
		}
		return code, out.String()
	}
	const id = "sag-xhlyhgshtqqag" // outdated in the demo fleet
	for _, step := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status"}, 0, "Rollouts:\n  none"},
		{[]string{"plan", id}, 0, "planned"},
		{[]string{"run", id}, 0, "requested"},
		{[]string{"status"}, 0, "sag-1000"},
		{[]string{"history", id}, 0, "requested"},
		{[]string{"stop"}, 0, "kill switch off → on"},
		{[]string{"status"}, 0, "Kill switch: ON"},
		{[]string{"resume"}, 0, "kill switch on → off"},
		{[]string{"reset", "--target", "9.9.9"}, 1, "no such rollout"},
		{[]string{"stop", "--control-function", "sag-upgrade-query"}, 1, "QUERY_ENDPOINT"},
	} {
		code, out := run(step.args...)
		if code != step.code || !strings.Contains(out, step.want) {
			t.Errorf("sagctl %q: exit %d, want %d and %q in\n%s", step.args, code, step.code, step.want, out)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Once it is stopped, sagctl cannot reach the function.
	if code, out := run("status"); code != 3 {
		t.Errorf("after -serve stopped: exit %d\n%s", code, out)
	}
}
