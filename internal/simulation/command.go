package simulation

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// Command is `go run . -simulate`: the function in-process on the simulated
// cloud, one invocation or several nights, progress and summary tables for
// people.
type Command struct {
	Fleet  string // fleet file
	Event  string // trigger event file; empty: the timer's sweep (no nights: an empty payload)
	Nights int    // nights on the simulated clock; 0: one invocation
	Audit  string // with Nights: print this gateway's audit trail at the end
	// Terminal says stderr is a terminal: it shows a line of progress
	// instead of the log's info lines (unless LOG_LEVEL asks for them),
	// in colour.
	Terminal bool
	Columns  int // the terminal's width; 0 unknown

	NewHandler NewHandler
	Getenv     func(string) (string, bool) // the operator's environment
}

// UsageError is a command the simulation cannot run as given.
type UsageError struct{ Problem string }

func (e *UsageError) Error() string { return e.Problem }

// Run runs the command, writing progress and the summary to stderr, and
// returns the report (or, for a fan-out or several nights, every report).
// A request the function rejected returns its report and the error.
func (c Command) Run(stderr io.Writer) (any, error) {
	if c.Audit != "" && c.Nights < 1 {
		return nil, &UsageError{"-audit needs -nights N: the audit trail is printed after the nights"}
	}
	var payload []byte
	if c.Event != "" {
		var err error
		if payload, err = os.ReadFile(c.Event); err != nil {
			return nil, err
		}
	}
	d := newDisplay(stderr, c.Terminal, c.Columns)
	s, err := StartLocal(c.Fleet, InProcess{NewHandler: c.NewHandler, Getenv: c.Getenv, Logs: d, Days: c.Nights})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	w, f := s.World, s.Cloud.Fleet
	if c.Audit != "" && !slices.ContainsFunc(f.Gateways, func(g fleet.Gateway) bool { return g.SmartAGID == c.Audit }) {
		return nil, &UsageError{fmt.Sprintf("-audit %s: no such gateway in %s", c.Audit, c.Fleet)}
	}
	d.show = s.Handler.Config.LogLevel
	if c.Terminal {
		if _, set := lookup(c.Getenv, "LOG_LEVEL"); !set {
			d.show = max(d.show, zerolog.WarnLevel)
		}
		// Every decision and listing counts towards the progress, whatever
		// the lines shown.
		s.Handler.Log = s.Handler.Log.Level(min(s.Handler.Config.LogLevel, zerolog.DebugLevel))
	}
	fmt.Fprintf(stderr, "Simulated cloud at %s: fleet %s (%d gateways in %s), clock %s\n",
		w.Cloud.URL, c.Fleet, len(f.Gateways), strings.Join(f.Regions, ", "), localTime(w.Cloud.Clock.Now()))

	if c.Nights < 1 {
		at := w.Cloud.Clock.Now()
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
		d.between("")
		summarize(stderr, report, at, w.Cloud)
		return out, err
	}

	var all []events.Report
	start := w.Cloud.Clock.Now()
	for night := 1; night <= c.Nights; night++ {
		fired := start.Add(time.Duration(night-1) * 24 * time.Hour)
		d.between(fmt.Sprintf("Night %d", night))
		fmt.Fprintf(stderr, "\n=== Night %d, %s\n", night, localTime(fired))
		tonight, err := s.Night(fired, payload)
		d.between("")
		if err != nil {
			return nil, err
		}
		all = append(all, tonight...)
		summarizeNight(stderr, night, tonight, latestRollouts(all))
	}
	s.summarizeLedger(stderr, c.Audit)
	return all, nil
}

func lookup(getenv func(string) (string, bool), name string) (string, bool) {
	if getenv == nil {
		return "", false
	}
	return getenv(name)
}
