//go:build !fc

package main

// The simulator's wiring. The FC build (scripts/build.sh, -tags fc) leaves
// this file out, and with it internal/simulation and every emulator it
// links; nosimulator.go stands in.

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// simulator runs -simulate: the function in-process on the simulated cloud,
// composed as -event composes it (newHandler), or with -serve the simulated
// cloud with the compiled function deployed on it, for sagctl. The report
// goes to -report's file, or to stdout unless stdout is a terminal, where
// it would bury the summary.
func simulator(o cliOptions, stdout, stderr io.Writer) int {
	if o.serve != "" {
		if err := simulation.Serve(simulation.ServeOptions{Fleet: o.fleet, Addr: o.serve, Getenv: os.LookupEnv}, stderr); err != nil {
			fmt.Fprintln(stderr, "sag-upgrade:", err)
			return 1
		}
		return 0
	}
	onTerminal, columns := terminal(stderr)
	out, err := simulation.Command{Fleet: o.fleet, Event: o.event, Nights: o.nights, Audit: o.audit,
		Terminal: onTerminal, Columns: columns, NewHandler: newHandler, Getenv: os.LookupEnv}.Run(stderr)
	var usageErr *simulation.UsageError
	if errors.As(err, &usageErr) {
		fmt.Fprintf(stderr, "sag-upgrade: %v\n%s\n", err, usage)
		return 2
	}
	if out != nil {
		what := "The run report is"
		if _, many := out.([]events.Report); many { // nights, or a fan-out's batches
			what = "The reports of every run (a JSON array) are"
		}
		stdoutTerminal, _ := terminal(stdout)
		if o.report != "" || !stdoutTerminal {
			if werr := writeReport(o.report, stdout, out); werr != nil {
				fmt.Fprintln(stderr, "sag-upgrade:", werr)
				return 1
			}
		}
		switch {
		case o.report != "":
			fmt.Fprintf(stderr, "%s in %s.\n", what, o.report)
		case stdoutTerminal:
			fmt.Fprintf(stderr, "%s not printed on a terminal: pipe stdout (| jq .) or give -report FILE.\n", what)
		default:
			fmt.Fprintf(stderr, "%s on stdout.\n", what)
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

// terminal reports whether w is a terminal, and its width in columns (0 when
// it cannot tell).
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	columns, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		columns = 0
	}
	return true, columns
}
