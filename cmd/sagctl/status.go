package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var statusCmd = &command{
	name:    "status",
	summary: "how the rollouts, the kill switch and the last runs stand",
	about: `Status reads the ledger alone (no SAG call): every rollout (version type,
model, target, wave, how many the wave lets in, verified, failed, in flight,
breaker, paused, awaiting approval, when the next wave may start), the kill
switch, the last runs, the events kept for later publication, the fleet's
versions as the last full sweep saw them, and tonight's upgrades against
MAX_UPGRADES_PER_NIGHT.`,
	examples: []string{
		"sagctl status",
		"sagctl status --json | jq '.status.rollouts[] | select(.breaker == \"open\")'",
	},
	query: true,
	flags: func(*flag.FlagSet) func([]string) (events.Request, error) {
		return func(args []string) (events.Request, error) {
			if len(args) > 0 {
				return events.Request{}, fmt.Errorf("status takes no arguments (got %q)", args)
			}
			return events.Request{Kind: upgrade.KindStatus}, nil
		}
	},
	show: showStatus,
}

func showStatus(w io.Writer, r events.Report) error {
	st := r.Status
	if st == nil {
		return errors.New("the answer has no status: is the function older than sagctl?")
	}
	ks := "off"
	if st.KillSwitch.KillSwitch != nil && *st.KillSwitch.KillSwitch {
		ks = "ON: no update call anywhere until resume"
	}
	if st.KillSwitch.SetBy != "" {
		ks += fmt.Sprintf(" (set by %s at %s)", st.KillSwitch.SetBy, when(st.KillSwitch.SetAt))
	}
	fmt.Fprintln(w, "Kill switch: "+ks)
	if st.NightLimit > 0 {
		fmt.Fprintf(w, "Tonight: %d of %d upgrades (MAX_UPGRADES_PER_NIGHT)\n", st.NightUsed, st.NightLimit)
	} else {
		fmt.Fprintln(w, "Tonight: no cap (MAX_UPGRADES_PER_NIGHT is 0), so no count")
	}
	kept := itoa(st.KeptEvents)
	if st.KeptAtLeast {
		kept = "at least " + kept
	}
	fmt.Fprintf(w, "Events kept for later publication: %s\n", kept)

	fmt.Fprintln(w, "\nRollouts:")
	if len(st.Rollouts) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := table(w)
		row(tw, "TYPE", "MODEL", "TARGET", "WAVE", "WAVE LIMIT", "VERIFIED", "FAILED", "IN FLIGHT", "BREAKER", "PAUSED", "AWAITING APPROVAL", "NEXT WAVE AT")
		for _, ro := range st.Rollouts {
			paused := yesNo(ro.Paused)
			if ro.Paused && ro.PausedBy != "" {
				paused += ", by " + ro.PausedBy
			}
			awaiting := ""
			if ro.AwaitingApproval > 0 {
				awaiting = "wave " + itoa(ro.AwaitingApproval)
			}
			breaker := ro.Breaker
			if ro.Done {
				breaker += ", done"
			}
			row(tw, string(ro.VersionType), ro.Model, ro.Target, wave(ro.Wave), itoa(ro.WaveLimit), itoa(ro.Verified), itoa(ro.Failed),
				itoa(ro.InFlight), breaker, paused, awaiting, when(ro.NextWaveAt))
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nLast runs:")
	if len(st.Runs) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := table(w)
		row(tw, "RUN", "KIND", "TRIGGER", "CORRELATION", "STARTED", "FINISHED", "SCANNED", "REQUESTED", "VERIFIED", "DEFERRED", "FAILED")
		for _, run := range st.Runs {
			c := run.Counts
			row(tw, run.RunID, string(run.Kind), run.Trigger, run.CorrelationID, when(run.StartedAt), when(run.FinishedAt),
				itoa(c.Scanned), itoa(c.Requested), itoa(c.Verified), itoa(c.Deferred), itoa(c.Failed+c.Unverified))
		}
		tw.Flush()
	}

	if st.Fleet != nil && len(st.Fleet.Regions) > 0 {
		fmt.Fprintln(w, "\nFleet versions (each region as its last full sweep saw it):")
		tw := table(w)
		row(tw, "REGION", "TYPE", "MODEL", "VERSION", "GATEWAYS", "SEEN", "RUN")
		for _, region := range st.Fleet.Regions {
			for _, v := range region.Versions {
				row(tw, region.Region, string(v.VersionType), v.Model, v.Version, itoa(v.Gateways), when(region.SeenAt), region.RunID)
			}
		}
		tw.Flush()
	}
	return nil
}
