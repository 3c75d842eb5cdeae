package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var historyCmd = &command{
	name:    "history",
	args:    "ID",
	summary: "one gateway's ledger records and audit trail",
	about: `History reads one gateway's ledger records (one per version type: state,
versions, attempts, penalty box, when it was requested and verified) and
its audit trail, oldest first: every claim, request, verification, failure
and release, with the run, trigger and correlation id behind it.`,
	examples: []string{
		"sagctl history sag-0ovhf732a9j",
		"sagctl history sag-0ovhf732a9j --type Dpi",
	},
	query: true,
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		types := fs.String("type", "", "only these version `types`: Device, Dpi or Device,Dpi")
		return func(args []string) (events.Request, error) {
			if len(args) != 1 {
				return events.Request{}, fmt.Errorf("history takes one gateway id (got %d arguments)", len(args))
			}
			return events.Request{Kind: upgrade.KindHistory, GatewayIDs: args, VersionTypes: versionTypes(*types)}, nil
		}
	},
	show: showHistory,
}

func showHistory(w io.Writer, r events.Report) error {
	h := r.History
	if h == nil {
		return errors.New("the answer has no history: is the function older than sagctl?")
	}
	fmt.Fprintf(w, "Gateway %s\n", h.SmartAGID)
	fmt.Fprintln(w, "\nRecords:")
	if len(h.Records) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := table(w)
		row(tw, "TYPE", "STATE", "VERSION", "ATTEMPTS", "REQUESTED", "VERIFY BY", "VERIFIED", "PENALTY UNTIL", "UPDATED", "RUN", "LAST ERROR")
		for _, rec := range h.Records {
			row(tw, string(rec.VersionType), rec.State, versions(rec.From, rec.Target), itoa(rec.Attempts), when(rec.RequestedAt),
				when(rec.VerifyBy), when(rec.VerifiedAt), when(rec.PenaltyUntil), when(rec.UpdatedAt), rec.RunID, rec.LastError)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nTrail:")
	if len(h.Trail) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	tw := table(w)
	row(tw, "TIME", "EVENT", "TYPE", "VERSION", "RUN", "TRIGGER", "CORRELATION", "OPERATOR", "ERROR")
	for _, e := range h.Trail {
		event := e.Event
		if e.Force {
			event += " (forced)"
		}
		row(tw, when(e.Time), event, string(e.VersionType), versions(e.From, e.Target), e.RunID, e.Trigger, e.Correlation, e.Operator, e.Error)
	}
	tw.Flush()
	return nil
}

// versionTypes reads --type.
func versionTypes(s string) []upgrade.VersionType {
	var out []upgrade.VersionType
	for _, t := range list(s) {
		out = append(out, upgrade.VersionType(t))
	}
	return out
}
