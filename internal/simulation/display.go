package simulation

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// display is where -simulate's function writes its log lines: it shows them
// to people in zerolog's console format, and on a terminal it keeps one line
// below them that says how far the current run is, region by region,
// redrawn in place.
type display struct {
	mu       sync.Mutex
	out      io.Writer
	console  zerolog.ConsoleWriter
	show     zerolog.Level // lines below it only count towards the progress
	terminal bool
	columns  int    // the terminal's width; 0 unknown
	label    string // what the runs belong to ("Night 2"); "" none
	run      runProgress
	line     string // the progress line on the terminal; "" none
	drawn    time.Time
}

// runProgress is how far one run is: the gateways it listed in each region
// and those it has decided.
type runProgress struct {
	id, trigger string
	regions     []string // in the order the run named them
	listed      map[string]int
	decided     map[string]map[string]bool
	finished    bool
}

// logLine holds the fields of a log line the progress reads.
type logLine struct {
	Level    string   `json:"level"`
	Message  string   `json:"message"`
	RunID    string   `json:"runId"`
	Trigger  string   `json:"trigger"`
	Regions  []string `json:"regions"`
	Region   string   `json:"regionId"`
	Gateway  string   `json:"smartAGId"`
	Gateways int      `json:"gateways"`
}

// redrawEvery bounds how often the progress line is redrawn, so a fast run
// does not flood the terminal.
const redrawEvery = 100 * time.Millisecond

func newDisplay(out io.Writer, onTerminal bool, columns int) *display {
	return &display{out: out, console: consoleWriter(out, !onTerminal), show: zerolog.TraceLevel, terminal: onTerminal, columns: columns}
}

// Write takes one log line (zerolog writes a line a call).
func (d *display) Write(p []byte) (int, error) {
	var l logLine
	parsed := json.Unmarshal(p, &l) == nil
	d.mu.Lock()
	defer d.mu.Unlock()
	moved := parsed && d.track(l)
	level, err := zerolog.ParseLevel(l.Level)
	if !parsed || err != nil || level >= d.show {
		d.clear()
		var werr error
		if parsed {
			_, werr = d.console.Write(p)
		} else {
			_, werr = d.out.Write(p)
		}
		if werr != nil {
			return 0, werr
		}
		moved = true // the line above pushed the progress off
	}
	if d.terminal {
		d.draw(moved)
	}
	return len(p), nil
}

// track notes what a line says of the run's progress, and reports whether
// the line must be redrawn now (a region listed or finished).
func (d *display) track(l logLine) bool {
	if l.RunID == "" {
		return false
	}
	r := &d.run
	if l.RunID != r.id {
		*r = runProgress{id: l.RunID, listed: map[string]int{}, decided: map[string]map[string]bool{}}
	}
	switch l.Message {
	case "run started":
		r.trigger = l.Trigger
	case "request":
		for _, region := range l.Regions {
			r.region(region) // in the request's order, not the listings'
		}
		return true
	case "listed region":
		r.region(l.Region)
		r.listed[l.Region] += l.Gateways
		return true
	case "decision":
		if l.Gateway == "" || l.Region == "" {
			return false // a rejected message or a region that could not be listed
		}
		r.region(l.Region)
		if r.decided[l.Region][l.Gateway] {
			return false // its other version type
		}
		r.decided[l.Region][l.Gateway] = true
		return len(r.decided[l.Region]) == r.listed[l.Region]
	case "run finished":
		r.finished = true
		return true
	}
	return false
}

func (r *runProgress) region(name string) {
	if r.decided[name] == nil {
		r.regions = append(r.regions, name)
		r.decided[name] = map[string]bool{}
	}
}

// text is the progress line: "Night 2, timer run, gateways done:
// cn-shanghai 57/99, ap-southeast-1 40/99".
func (r runProgress) text(label string) string {
	var b strings.Builder
	if label != "" {
		b.WriteString(label + ", ")
	}
	trigger := r.trigger
	if trigger == "" {
		trigger = "a"
	}
	b.WriteString(trigger + " run")
	if len(r.regions) == 0 {
		b.WriteString(", listing gateways")
		return b.String()
	}
	b.WriteString(", gateways done:")
	sep := " "
	for _, region := range r.regions {
		n, listed := r.listed[region]
		if listed && n == 0 && len(r.decided[region]) == 0 {
			continue // none of the gateways a verify run names is there
		}
		total := "?"
		if listed {
			total = fmt.Sprint(n)
		}
		fmt.Fprintf(&b, "%s%s %d/%s", sep, region, len(r.decided[region]), total)
		sep = ", "
	}
	return b.String()
}

// draw shows the progress line, at most every redrawEvery unless now; a
// finished run's line is cleared.
func (d *display) draw(now bool) {
	if d.run.id == "" || d.run.finished {
		d.clear()
		return
	}
	if !now && d.line != "" && time.Since(d.drawn) < redrawEvery {
		return
	}
	line := d.run.text(d.label)
	if d.columns > 0 {
		// One character short of the width: a line that fills it wraps on
		// some terminals, and \r would then redraw only its second half.
		if runes := []rune(line); len(runes) >= d.columns {
			line = string(runes[:d.columns-1])
		}
	}
	if line == d.line {
		return
	}
	fmt.Fprintf(d.out, "\r%s\x1b[K", line)
	d.line, d.drawn = line, time.Now()
}

// clear erases the progress line, so what is written next starts on an
// empty line. The caller holds d.mu.
func (d *display) clear() {
	if d.line != "" {
		fmt.Fprint(d.out, "\r\x1b[K")
		d.line = ""
	}
}

// between ends the progress of the runs so far before the command writes
// its own lines, and names what the next runs belong to.
func (d *display) between(label string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	d.run, d.label = runProgress{}, label
}

// consoleWriter renders the handler's log lines for people: a decision as
// "sag-… (region) Device 2.0.8 → 2.3.1: requested", other lines as
// zerolog's console format; times on the simulated clock, in Shanghai as
// the rest of the output.
func consoleWriter(w io.Writer, noColor bool) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{
		Out: w, NoColor: noColor, TimeFormat: "15:04:05.000", TimeLocation: shanghai(),
		FieldsExclude: []string{"service", "requestId", "runId", "config", "duration"},
		FormatPrepare: func(m map[string]any) error {
			if m[zerolog.MessageFieldName] != "decision" {
				return nil
			}
			str := func(k string) string { s, _ := m[k].(string); delete(m, k); return s }
			line := fmt.Sprintf("%s (%s) %s %s", str("smartAGId"), str("regionId"), str("versionType"), str("fromVersion"))
			if to := str("toVersion"); to != "" {
				line += " → " + to
			}
			line += ": " + str("outcome")
			if reason := str("reason"); reason != "" {
				line += " " + reason
			}
			m[zerolog.MessageFieldName] = line
			return nil
		},
	}
}
