package main

// Tables shared by the subcommands.

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes one tab-separated line; an empty cell shows as "-".
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// when is a time for people: local, to the second; "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func itoa(n int) string { return strconv.Itoa(n) }

// versions is "from → to", or what there is of it.
func versions(from, to string) string {
	switch {
	case from == "" && to == "":
		return ""
	case to == "":
		return from
	}
	return firstOf(from, "?") + " → " + to
}

// results prints a run's results, one line per gateway and version type.
func results(w io.Writer, rs []upgrade.Result) {
	if len(rs) == 0 {
		return
	}
	tw := table(w)
	row(tw, "GATEWAY", "REGION", "TYPE", "VERSION", "OUTCOME", "REASON", "ERROR")
	for _, r := range rs {
		reason := r.Reason
		if r.Force {
			reason = strings.TrimPrefix(reason+" (forced)", " ")
		}
		row(tw, r.SmartAGID, r.RegionID, string(r.VersionType), versions(r.FromVersion, r.ToVersion), string(r.Outcome), reason,
			strings.TrimSpace(r.ErrorCode+" "+r.Error))
	}
	tw.Flush()
}

// counts prints the counts that are not zero.
func counts(w io.Writer, c upgrade.Counts) {
	var parts []string
	for _, p := range []struct {
		name string
		n    int
	}{{"scanned", c.Scanned}, {"requested", c.Requested}, {"planned", c.Planned}, {"skipped", c.Skipped}, {"deferred", c.Deferred},
		{"failed", c.Failed}, {"rejected", c.Rejected}, {"verified", c.Verified}, {"unverified", c.Unverified}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.name))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing"}
	}
	fmt.Fprintln(w, "Counts: "+strings.Join(parts, ", "))
}

// footer prints what a run report says besides its results.
func footer(w io.Writer, r events.Report) {
	counts(w, r.Counts)
	if r.KillSwitch {
		fmt.Fprintln(w, "The kill switch held back update calls.")
	}
	if len(r.RegionsClosed) > 0 {
		var closed []string
		for _, region := range slices.Sorted(maps.Keys(r.RegionsClosed)) {
			closed = append(closed, region+" (opens "+when(r.RegionsClosed[region])+")")
		}
		fmt.Fprintln(w, "Not swept, their windows closed: "+strings.Join(closed, ", "))
	}
	if r.Continuation != nil && r.Continuation.Enqueued {
		fmt.Fprintf(w, "%d gateways left for a continuation on the work queue.\n", r.Continuation.Remaining)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "Warning: "+warning)
	}
	fmt.Fprintf(w, "Run %s (%s), %s to %s.\n", r.RunID, r.Trigger, when(r.StartedAt), when(r.FinishedAt))
}

// controls prints what control requests changed, before → after.
func controls(w io.Writer, cs []upgrade.Control) {
	tw := table(w)
	row(tw, "SUBJECT", "CHANGE")
	for _, c := range cs {
		change := "unchanged: " + describe(c.After)
		if c.Changed {
			change = strings.Join(difference(c.Before, c.After), "; ")
		}
		row(tw, c.Subject, change)
	}
	tw.Flush()
}

// describe is a control subject's state in a few words.
func describe(s upgrade.State) string {
	switch {
	case s.KillSwitch != nil:
		return "kill switch " + onOff(*s.KillSwitch)
	case s.Rollout != nil:
		return strings.Join(rolloutFacts(*s.Rollout), ", ")
	}
	return "-"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// rolloutFacts are the parts of a rollout's state a control request moves.
func rolloutFacts(r upgrade.Rollout) []string {
	facts := []string{"wave " + wave(r.Wave), "breaker " + r.Breaker}
	if r.Paused {
		facts = append(facts, "paused")
	}
	if r.AwaitingApproval > 0 {
		facts = append(facts, "awaiting approval of wave "+itoa(r.AwaitingApproval))
	}
	if r.ApprovedWave > 0 {
		facts = append(facts, "approved up to wave "+itoa(r.ApprovedWave))
	}
	return facts
}

// difference lists what moved between two states, "name before → after".
func difference(before, after upgrade.State) []string {
	var out []string
	change := func(name, b, a string) {
		if b != a {
			out = append(out, name+" "+b+" → "+a)
		}
	}
	if before.KillSwitch != nil || after.KillSwitch != nil {
		change("kill switch", onOff(before.KillSwitch != nil && *before.KillSwitch), onOff(after.KillSwitch != nil && *after.KillSwitch))
	}
	if b, a := before.Rollout, after.Rollout; b != nil && a != nil {
		change("wave", wave(b.Wave), wave(a.Wave))
		change("wave limit", itoa(b.WaveLimit), itoa(a.WaveLimit))
		change("breaker", b.Breaker, a.Breaker)
		change("paused", yesNo(b.Paused), yesNo(a.Paused))
		change("awaiting approval", waveOrNone(b.AwaitingApproval), waveOrNone(a.AwaitingApproval))
		change("approved", waveOrNone(b.ApprovedWave), waveOrNone(a.ApprovedWave))
		change("done", yesNo(b.Done), yesNo(a.Done))
	}
	if len(out) == 0 {
		out = []string{describe(before) + " → " + describe(after)}
	}
	return out
}

func wave(n int) string {
	if n == 0 {
		return "0 (canary)"
	}
	return itoa(n)
}

func waveOrNone(n int) string {
	if n == 0 {
		return "none"
	}
	return "wave " + itoa(n)
}

// showControl prints a control request's answer: what it changed.
func showControl(w io.Writer, r events.Report) error {
	if len(r.Control) == 0 {
		return fmt.Errorf("the answer does not say what the request changed (run %s)", r.RunID)
	}
	controls(w, r.Control)
	return nil
}

// noArgs builds a request that takes no positional argument.
func noArgs(name string, req func() events.Request) func([]string) (events.Request, error) {
	return func(args []string) (events.Request, error) {
		if len(args) > 0 {
			return events.Request{}, fmt.Errorf("%s takes no arguments (got %q); a rollout is named by flags", name, args)
		}
		return req(), nil
	}
}
