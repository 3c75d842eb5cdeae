package e2e_test

import (
	"bytes"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

const module = "github.com/sag-upgrade/sag-upgrade"

// The code package FC runs links no emulator: what scripts/build.sh's go
// build (its environment and flags, read by running the script) lists holds
// no internal/cloudsim package and not the simulation harness.
func TestFCBuildLinksNoEmulator(t *testing.T) {
	build, err := simulation.ReadFCBuild(root)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := build.Deps(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(deps, module+"/handler") {
		t.Fatalf("go list -deps %v lists no handler: not the function's build\n%s", build.Args, strings.Join(deps, "\n"))
	}
	for _, p := range deps {
		for _, banned := range []string{module + "/internal/cloudsim", module + "/internal/simulation"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("the FC build (%v %v) links %s", build.Env, build.Args, p)
			}
		}
	}
}

// The FC build says it has no simulator, rather than run without one.
func TestFCBuildHasNoSimulator(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "-simulate")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "no simulator") || stdout.Len() != 0 {
		t.Fatalf("-simulate on the FC build: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
