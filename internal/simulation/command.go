package simulation

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
)

// Command is `go run . -simulate`: the function in-process on the simulated
// cloud, one invocation or several nights, progress and summary tables for
// people.
type Command struct {
	Fleet  string // fleet file
	Event  string // trigger event file; empty: the timer's sweep (one night: an empty payload)
	Nights int    // nights on the simulated clock; 1 or less: one invocation
	Audit  string // with Nights: print this gateway's audit trail at the end

	NewHandler NewHandler
	Getenv     func(string) (string, bool) // the operator's environment
}

// Run runs the command, writing progress and the summary to stderr, and
// returns what belongs on stdout: the report (or, for a fan-out or several
// nights, every report). A request the function rejected returns its report
// and the error.
func (c Command) Run(stderr io.Writer) (any, error) {
	var payload []byte
	if c.Event != "" {
		var err error
		if payload, err = os.ReadFile(c.Event); err != nil {
			return nil, err
		}
	}
	s, err := StartLocal(c.Fleet, InProcess{NewHandler: c.NewHandler, Getenv: c.Getenv, Logs: progressWriter(stderr), Days: c.Nights})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	w, f := s.World, s.Cloud.Fleet
	fmt.Fprintf(stderr, "Simulated cloud at %s: fleet %s (%d gateways in %s), clock %s\n",
		w.Cloud.URL, c.Fleet, len(f.Gateways), strings.Join(f.Regions, ", "), localTime(w.Cloud.Clock.Now()))

	if c.Nights <= 1 {
		report, err := s.Invoke(payload)
		var rejected *handler.RejectedError
		if err != nil && !errors.As(err, &rejected) {
			return nil, err
		}
		var out any = report
		if report.Fanout != nil {
			// A planner: run its batches now, as the queue trigger would
			// (the verify requests stay on the queue, due later).
			all, err := s.Drain([]events.Report{report})
			if err != nil {
				return nil, err
			}
			report, out = combine(all), all
		}
		summarize(stderr, report, w.Cloud)
		return out, err
	}

	var all []events.Report
	start := w.Cloud.Clock.Now()
	for night := 1; night <= c.Nights; night++ {
		fired := start.Add(time.Duration(night-1) * 24 * time.Hour)
		fmt.Fprintf(stderr, "\n=== Night %d, %s\n", night, localTime(fired))
		tonight, err := s.Night(fired, payload)
		if err != nil {
			return nil, err
		}
		all = append(all, tonight...)
		summarizeNight(stderr, night, tonight, latestRollouts(all))
	}
	s.summarizeLedger(stderr, c.Audit)
	return all, nil
}
