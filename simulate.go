//go:build !fc

package main

// The simulator's wiring. The FC build (scripts/build.sh, -tags fc) leaves
// this file out, and with it internal/simulation and every emulator it
// links; nosimulator.go stands in.

import (
	"fmt"
	"io"
	"os"

	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// simulator runs -simulate: the function in-process on the simulated cloud,
// composed as -event composes it (newHandler), or with -serve the simulated
// cloud with the compiled function deployed on it, for sagctl. The report
// alone goes to stdout.
func simulator(o cliOptions, stdout, stderr io.Writer) int {
	if o.serve != "" {
		if err := simulation.Serve(simulation.ServeOptions{Fleet: o.fleet, Addr: o.serve, Getenv: os.LookupEnv}, stderr); err != nil {
			fmt.Fprintln(stderr, "sag-upgrade:", err)
			return 1
		}
		return 0
	}
	out, err := simulation.Command{Fleet: o.fleet, Event: o.event, Nights: o.nights, Audit: o.audit,
		NewHandler: newHandler, Getenv: os.LookupEnv}.Run(stderr)
	if out != nil {
		if werr := writeJSON(stdout, out); werr != nil {
			fmt.Fprintln(stderr, "sag-upgrade:", werr)
			return 1
		}
	}
	if err != nil {
		if out != nil {
			fmt.Fprintln(stderr) // apart from the summary above it
		}
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	return 0
}
