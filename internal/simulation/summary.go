package simulation

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
)

// combine sums the reports of a planner and its workers into one, for the
// summary.
func combine(reports []events.Report) events.Report {
	out := reports[0]
	out.Results = []upgrade.Result{}                                // [] on the wire, as the handler's reports
	out.Counts = upgrade.Counts{Scanned: reports[0].Counts.Scanned} // the planner listed the fleet
	seen := map[string]bool{}
	for _, r := range reports {
		out.Results = append(out.Results, r.Results...)
		c := r.Counts
		out.Counts.Requested += c.Requested
		out.Counts.Planned += c.Planned
		out.Counts.Skipped += c.Skipped
		out.Counts.Deferred += c.Deferred
		out.Counts.Failed += c.Failed
		out.Counts.Rejected += c.Rejected
		out.Counts.Verified += c.Verified
		out.Counts.Unverified += c.Unverified
		out.Publishing.Published += r.Publishing.Published
		out.Publishing.Failed += r.Publishing.Failed
		for _, ro := range r.Rollouts {
			if !seen[ro.ID] {
				seen[ro.ID] = true
				out.Rollouts = append(out.Rollouts, ro)
			}
		}
		if r.FinishedAt.After(out.FinishedAt) {
			out.FinishedAt = r.FinishedAt
		}
	}
	out.Publishing.Published -= reports[0].Publishing.Published // counted twice above
	out.Publishing.Failed -= reports[0].Publishing.Failed
	return out
}

// summarizeNight prints one line per invocation of a night, then where the
// rollouts stand at its end.
func summarizeNight(w io.Writer, night int, reports []events.Report, rollouts []upgrade.Rollout) {
	fmt.Fprintf(w, "\nNight %d:\n", night)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tTRIGGER\tREQUESTED\tVERIFIED\tUNVERIFIED\tSKIPPED\tDEFERRED\tFAILED\tIN PROGRESS\tPENALTY")
	for _, r := range reports {
		inProgress, penalty := 0, 0
		for _, res := range r.Results {
			switch res.Reason {
			case upgrade.ReasonInProgress:
				inProgress++
			case upgrade.ReasonPenalty:
				penalty++
			}
		}
		c := r.Counts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.RunID, r.Trigger, c.Requested, c.Verified, c.Unverified,
			c.Skipped, c.Deferred, c.Failed, inProgress, penalty)
	}
	tw.Flush()
	printRollouts(w, rollouts)
}

// latestRollouts is each rollout as the last run that touched it left it:
// after a night, its state at the end of that night, not at the start of its
// sweep (so a breaker that opened or a wave verified later that night shows).
func latestRollouts(reports []events.Report) []upgrade.Rollout {
	var out []upgrade.Rollout
	at := map[string]int{}
	for _, r := range reports {
		for _, ro := range r.Rollouts {
			if i, ok := at[ro.ID]; ok {
				out[i] = ro
				continue
			}
			at[ro.ID] = len(out)
			out = append(out, ro)
		}
	}
	return out
}

// printRollouts shows where each rollout stands.
func printRollouts(w io.Writer, rollouts []upgrade.Rollout) {
	if len(rollouts) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLLOUT\tWAVE\tLET IN\tVERIFIED\tFAILED\tBREAKER\tWHY")
	for _, ro := range rollouts {
		wave := fmt.Sprint(ro.Wave)
		if ro.Wave == 0 {
			wave = "canary"
		}
		if ro.Done {
			wave = "done"
		}
		fmt.Fprintf(tw, "%s %s → %s\t%s\t%d (wave: %d of %d)\t%d\t%d\t%s\t%s\n", ro.VersionType, ro.Model, ro.Target, wave,
			ro.LetIn, ro.WaveLimit, ro.Population, ro.Verified, ro.Failed, ro.Breaker, ro.Reason)
	}
	tw.Flush()
}

// summarizeLedger prints the ledger's records by state, and one gateway's
// audit trail when asked.
func (s *Local) summarizeLedger(w io.Writer, auditID string) {
	ctx := context.Background()
	cloud, err := s.Handler.Connect(ctx, s.inv)
	if err != nil || cloud.Ledger == nil {
		return
	}
	all := []handler.State{handler.StateClaimed, handler.StateRequested, handler.StateVerified, handler.StateUnverified, handler.StateFailed, handler.StateReleased}
	recs, err := cloud.Ledger.Scan(ctx, all...)
	if err != nil {
		fmt.Fprintln(w, "ledger:", err)
		return
	}
	byState := map[handler.State]int{}
	inBox := 0
	for _, r := range recs {
		byState[r.State]++
		if s.Cloud.Clock.Now().Before(r.PenaltyUntil) {
			inBox++
		}
	}
	var parts []string
	for _, st := range all {
		if byState[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, byState[st]))
		}
	}
	fmt.Fprintf(w, "\nLedger: %s; %d in the penalty box\n", strings.Join(parts, ", "), inBox)
	if auditID == "" {
		return
	}
	history, err := cloud.Ledger.History(ctx, auditID)
	if err != nil {
		fmt.Fprintln(w, "ledger:", err)
		return
	}
	if len(history) == 0 {
		fmt.Fprintf(w, "\nAudit trail of %s: empty, nothing was claimed, requested or verified for it\n", auditID)
		return
	}
	fmt.Fprintf(w, "\nAudit trail of %s:\n", auditID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tVERSIONS\tTRIGGER\tRUN\tFC REQUEST\tAPI REQUEST\tERROR")
	for _, e := range history {
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\t%s\t%s\t%s\t%s\n", localTime(e.Time), e.Event, e.From, e.Target, e.Trigger,
			e.RunID, e.RequestID, e.APIRequestID, e.Error)
	}
	tw.Flush()
}

func localTime(t time.Time) string { return t.In(shanghai()).Format("2006-01-02 15:04 MST") }

// summarize prints a table of the outcomes and their reasons of a run
// invoked at a time on the simulated clock.
func summarize(w io.Writer, r events.Report, at time.Time, cloud *cloudsim.Cloud) {
	reasons := map[upgrade.Outcome]map[string]int{}
	for _, res := range r.Results {
		if reasons[res.Outcome] == nil {
			reasons[res.Outcome] = map[string]int{}
		}
		reason := res.Reason
		if res.ErrorCode != "" {
			reason += "/" + res.ErrorCode
		}
		reasons[res.Outcome][strings.TrimPrefix(reason, "/")]++
	}
	fmt.Fprintf(w, "\nRun %s (%s) at %s, %d gateways scanned\n\n", r.RunID, r.Trigger, localTime(at), r.Counts.Scanned)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTCOME\tCOUNT\tREASONS")
	c := r.Counts
	for _, row := range []struct {
		o upgrade.Outcome
		n int
	}{
		{upgrade.OutcomeRequested, c.Requested}, {upgrade.OutcomePlanned, c.Planned}, {upgrade.OutcomeSkipped, c.Skipped},
		{upgrade.OutcomeDeferred, c.Deferred}, {upgrade.OutcomeFailed, c.Failed}, {upgrade.OutcomeRejected, c.Rejected},
		{upgrade.OutcomeVerified, c.Verified}, {upgrade.OutcomeUnverified, c.Unverified},
	} {
		if row.n == 0 {
			continue
		}
		var parts []string
		for reason, n := range reasons[row.o] {
			if reason == "" {
				reason = "-"
			}
			parts = append(parts, fmt.Sprintf("%s %d", reason, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(tw, "%s\t%d\t%s\n", row.o, row.n, strings.Join(parts, ", "))
	}
	tw.Flush()
	printRollouts(w, r.Rollouts)
	fmt.Fprintf(w, "\nOutcome events published to %s: %d (%d failed)\n", cloudsim.OutcomeTopic, r.Publishing.Published, r.Publishing.Failed)
	if cloud != nil {
		calls := map[string]int{}
		for _, call := range cloud.SAG.Calls() {
			calls[call.Action]++
		}
		var parts []string
		for a, n := range calls {
			parts = append(parts, fmt.Sprintf("%s %d", a, n))
		}
		slices.Sort(parts)
		fmt.Fprintf(w, "SAG API calls: %s\n", strings.Join(parts, ", "))
	}
}

func shanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.UTC
	}
	return loc
}
