package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var runCmd = &command{
	name:    "run",
	args:    "ID...",
	summary: "sweep named gateways now",
	about: `Run sweeps the gateways named, now, through the operators' function: each
is upgraded if it is eligible, inside the maintenance window, let in by its
rollout's wave and its breaker is closed. --force passes the window and the
breaker (never the kill switch, a pause or an approval gate) and is
recorded in the logs, the events and the audit trail.`,
	examples: []string{
		"sagctl run sag-0ovhf732a9j sag-1xvz9ab2c",
		"sagctl run --dry-run sag-0ovhf732a9j",
		"sagctl run --force --target 2.3.1 --correlation-id CHG-4711 sag-0ovhf732a9j",
	},
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		force := fs.Bool("force", false, "pass the maintenance window and the breaker")
		dryRun := fs.Bool("dry-run", false, "plan only: no update call")
		target := fs.String("target", "", "upgrade to this `version` (it must be in the gateway's list) instead of the newest")
		types := fs.String("type", "", "version `types`: Device, Dpi or Device,Dpi (default the function's VERSION_TYPES)")
		regions := fs.String("regions", "", "the gateways' SAG `regions`, comma-separated (default the function's SAG_REGIONS)")
		return func(args []string) (events.Request, error) {
			if len(args) == 0 {
				return events.Request{}, fmt.Errorf("run names the gateways to sweep")
			}
			return events.Request{Kind: upgrade.KindSweep, GatewayIDs: args, Force: *force, DryRun: *dryRun,
				TargetVersion: *target, VersionTypes: versionTypes(*types), Regions: list(*regions)}, nil
		}
	},
	show: func(w io.Writer, r events.Report) error {
		results(w, r.Results)
		fmt.Fprintln(w)
		footer(w, r)
		return nil
	},
}
