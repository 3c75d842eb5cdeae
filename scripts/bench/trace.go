package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// Span is one request of the function to the simulated cloud.
type Span struct {
	Start, End time.Time
	Service    string // SAG, MNS or OTS
	Action     string
	Status     int // the HTTP status answered
	Instance   int // which instance asked, in the order deployed
}

// tracer is a reverse proxy in front of the cloud that times every request,
// so a benchmark can tell where the function waits when it makes no SAG call.
// It costs a little time on every request. Each instance has a port of its
// own, so that its requests tell which instance made them.
type tracer struct {
	proxy *httputil.ReverseProxy
	srvs  []*http.Server
	mu    sync.Mutex
	spans []Span
}

// startTracer builds a tracing proxy in front of target.
func startTracer(target string) (*tracer, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	t := &tracer{proxy: httputil.NewSingleHostReverseProxy(u)}
	// Many short requests from several processes: keep connections.
	t.proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	return t, nil
}

// env serves the proxy on a port for instance i and points the function
// at it: after the cloud's own variables (a later entry wins).
func (t *tracer) env(i int) ([]string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: instanceProxy{t, i}, ReadHeaderTimeout: 10 * time.Second}
	t.srvs = append(t.srvs, srv)
	go srv.Serve(ln)
	u := "http://" + ln.Addr().String()
	return []string{"SAG_ENDPOINT=" + u, "MNS_ENDPOINT=" + u, "LEDGER_ENDPOINT=" + u}, nil
}

func (t *tracer) Close() {
	for _, srv := range t.srvs {
		srv.Close()
	}
}

// instanceProxy is the tracer as one instance reaches it.
type instanceProxy struct {
	t        *tracer
	instance int
}

func (p instanceProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.t
	s := Span{Start: time.Now(), Instance: p.instance}
	switch {
	case r.URL.Path == "/":
		s.Service, s.Action = "SAG", r.URL.Query().Get("Action")
	case strings.HasPrefix(r.URL.Path, "/queues"), strings.HasPrefix(r.URL.Path, "/topics"):
		s.Service, s.Action = "MNS", r.Method+" "+strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)[0]
	default:
		s.Service, s.Action = "OTS", strings.TrimPrefix(r.URL.Path, "/")
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	t.proxy.ServeHTTP(rec, r)
	s.End, s.Status = time.Now(), rec.status
	t.mu.Lock()
	t.spans = append(t.spans, s)
	t.mu.Unlock()
}

// statusRecorder notes the status a response was written with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Spans returns the requests traced so far (nil without tracing), by start.
func (t *tracer) Spans() []Span {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	out := append([]Span(nil), t.spans...)
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Starved attributes the capacity of one SAG action (the busiest: the
// service limits each action on its own) a night left unused: every stretch
// in which the function could have started a call of it (one per interval,
// the rate limit's spacing) but started none. Each stretch is split among what
// was going on: no invocation running ("between invocations"), SAG calls in
// flight but no new one ("SAG in flight": concurrency or the end of a phase),
// other requests in flight (by service and action, shared evenly), or
// nothing the cloud sees ("function alone": computing, logging).
func Starved(spans []Span, invocations []simulation.Invocation, action string, from, to time.Time, interval time.Duration) (total time.Duration, by map[string]time.Duration) {
	by = map[string]time.Duration{}
	type edge struct {
		at    time.Time
		delta int
		key   string
	}
	var edges, sagStarts []edge
	add := func(a, b time.Time, key string) {
		if b.Before(from) || a.After(to) {
			return
		}
		edges = append(edges, edge{maxTime(a, from), +1, key}, edge{minTime(b, to), -1, key})
	}
	for _, s := range spans {
		key := s.Service + " " + s.Action
		if s.Service == "SAG" {
			key = "SAG in flight"
			if s.Action == action && !s.Start.Before(from) && !s.Start.After(to) {
				sagStarts = append(sagStarts, edge{at: s.Start})
			}
		}
		add(s.Start, s.End, key)
	}
	for _, inv := range invocations {
		add(inv.Started, inv.Finished, "invocation")
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i].at.Before(edges[j].at) })
	sort.Slice(sagStarts, func(i, j int) bool { return sagStarts[i].at.Before(sagStarts[j].at) })

	// The starved stretches: from a token's arrival to the next call.
	type stretch struct{ a, b time.Time }
	var starved []stretch
	prev := from.Add(-interval)
	for _, s := range append(sagStarts, edge{at: to.Add(interval)}) {
		if a, b := prev.Add(interval), minTime(s.at, to); b.After(a) {
			starved = append(starved, stretch{a, b})
		}
		prev = s.at
	}

	open := map[string]int{}
	last, k := from, 0
	for _, e := range append(edges, edge{at: to}) {
		// Attribute [last, e.at) where it overlaps starved stretches.
		for ; k < len(starved) && !starved[k].a.After(e.at); k++ {
			a, b := maxTime(starved[k].a, last), minTime(starved[k].b, e.at)
			if b.After(a) {
				d := b.Sub(a)
				total += d
				attribute(by, open, d)
			}
			if starved[k].b.After(e.at) {
				break // the stretch goes on past this edge
			}
		}
		last = e.at
		if e.key != "" {
			open[e.key] += e.delta
		}
	}
	return total, by
}

func attribute(by map[string]time.Duration, open map[string]int, d time.Duration) {
	switch {
	case open["invocation"] == 0:
		by["between invocations"] += d
		return
	case open["SAG in flight"] > 0:
		by["SAG in flight"] += d
		return
	}
	n := 0
	for k, c := range open {
		if k != "invocation" {
			n += c
		}
	}
	if n == 0 {
		by["function alone"] += d
		return
	}
	for k, c := range open {
		if k != "invocation" && c > 0 {
			by[k] += d * time.Duration(c) / time.Duration(n)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// writeSpans writes a night's timeline for a closer look than Starved's
// (-spans): each invocation (INV start end instance) and each request
// (service action start end status instance), in µs from start; instances
// are numbered in the order deployed, from 0.
func writeSpans(file string, start time.Time, invocations []simulation.Invocation, spans []Span) error {
	var b strings.Builder
	us := func(t time.Time) int64 { return t.Sub(start).Microseconds() }
	for _, inv := range invocations {
		fmt.Fprintf(&b, "INV %d %d %d\n", us(inv.Started), us(inv.Finished), inv.Runtime)
	}
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %s %d %d %d %d\n", s.Service, strings.ReplaceAll(s.Action, " ", "_"), us(s.Start), us(s.End), s.Status, s.Instance)
	}
	return os.WriteFile(file, []byte(b.String()), 0o644)
}
