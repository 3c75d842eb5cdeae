package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var planCmd = &command{
	name:    "plan",
	args:    "[ID...]",
	summary: "what a sweep would upgrade, defer or skip, and why",
	about: `Plan is a dry run as a table: for every gateway (or those named) what a
sweep would do and why it would not. It is evaluated as at each region's
next maintenance window opening, and without fan-out (a real night may
send batches to the work queue and so spread the work); it calls no update.`,
	examples: []string{
		"sagctl plan",
		"sagctl plan --regions eu-central-1 --type Device,Dpi",
		"sagctl plan --target 2.3.1 sag-0ovhf732a9j",
	},
	query: true,
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		regions := fs.String("regions", "", "only these SAG `regions`, comma-separated (default the function's SAG_REGIONS)")
		types := fs.String("type", "", "version `types`: Device, Dpi or Device,Dpi (default the function's VERSION_TYPES)")
		target := fs.String("target", "", "plan for this `version` instead of the newest release")
		return func(args []string) (events.Request, error) {
			return events.Request{Kind: upgrade.KindPlan, Regions: list(*regions), GatewayIDs: args,
				VersionTypes: versionTypes(*types), TargetVersion: *target}, nil
		}
	},
	show: showPlan,
}

func showPlan(w io.Writer, r events.Report) error {
	if r.Plan == nil {
		return errors.New("the answer does not say how the plan was evaluated: is the function older than sagctl?")
	}
	var at []string
	for _, region := range slices.Sorted(maps.Keys(r.Plan.At)) {
		at = append(at, region+" "+when(r.Plan.At[region]))
	}
	fmt.Fprintf(w, "Evaluated as at the next window opening: %s.\n", firstOf(strings.Join(at, ", "), "no region"))
	if r.Plan.NoFanout {
		fmt.Fprintln(w, "Without fan-out: a real night may hand batches to the work queue instead.")
	}
	fmt.Fprintln(w, "Nothing was called: a dry run.")
	fmt.Fprintln(w)
	results(w, r.Results)
	fmt.Fprintln(w)
	counts(w, r.Counts)
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "Warning: "+warning)
	}
	return nil
}
