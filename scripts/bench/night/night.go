// Package night runs the compiled function through a night on the simulated
// cloud: a timer invocation, then the work queue drained by the queue
// trigger over N emulated instances (cloudsim.Trigger). The benchmark driver
// (scripts/bench) and the soak test share it.
package night

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// Timer is the nightly timer trigger's event (s.yaml).
var Timer = []byte(`{"triggerTime":"2026-11-22T17:05:00Z","triggerName":"nightly","payload":"{\"correlationId\":\"nightly\"}"}`)

// Config describes a world: a cloud and the function deployed on it.
type Config struct {
	Binary   string // the compiled function
	Fleet    *fleet.Fleet
	SAG      sagsim.Options
	Runtimes int           // emulated instances; default 1
	Env      []string      // the function's variables on top of the cloud's
	Timeout  time.Duration // the function's timeout; default 900 s as in s.yaml
	Output   io.Writer     // the processes' stdout and stderr; nil discards them
	// Trace puts a timing proxy between the function and the cloud
	// (World.Spans); it costs a little time on every request.
	Trace bool
}

// World is a running cloud with the function on it.
type World struct {
	Cloud    *cloudsim.Cloud
	Runtimes []*fcsim.Runtime

	stop     chan struct{}
	watching sync.WaitGroup // the RSS watcher, started once Runtimes is complete
	tracer   *tracer
	proxy    *http.Server
	mu       sync.Mutex
	hwm      map[int]int64 // VmHWM in bytes, by pid
}

// Start starts the cloud and the runtimes (their processes start with their
// first invocation) and begins watching the processes' peak RSS.
func Start(c Config) (*World, error) {
	if c.Runtimes <= 0 {
		c.Runtimes = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 900 * time.Second
	}
	cloud, err := cloudsim.Start(cloudsim.Options{Fleet: c.Fleet, SAG: c.SAG})
	if err != nil {
		return nil, err
	}
	w := &World{Cloud: cloud, stop: make(chan struct{}), hwm: map[int]int64{}}
	env := append(cloud.Env(), c.Env...)
	if c.Trace {
		if w.tracer, err = newTracer(cloud.URL); err != nil {
			w.Close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			w.Close()
			return nil, err
		}
		w.proxy = &http.Server{Handler: w.tracer, ReadHeaderTimeout: 10 * time.Second}
		go w.proxy.Serve(ln)
		// Later entries win: exec keeps the last value of a variable.
		url := "http://" + ln.Addr().String()
		env = append(env, "SAG_ENDPOINT="+url, "MNS_ENDPOINT="+url, "LEDGER_ENDPOINT="+url)
	}
	for range c.Runtimes {
		rt, err := fcsim.Start(fcsim.Config{
			Binary: c.Binary, Env: env, FunctionName: "sag-upgrade", Handler: "main",
			Region: cloudsim.Region, AccountID: c.Fleet.AccountID, Timeout: c.Timeout,
			Credentials: func() auth.Credential { return cloud.Credentials(2 * time.Hour) },
			Stdout:      c.Output, Stderr: c.Output,
		})
		if err != nil {
			w.Close()
			return nil, err
		}
		w.Runtimes = append(w.Runtimes, rt)
	}
	w.watching.Go(w.watch)
	return w, nil
}

// Close stops the processes and the cloud.
func (w *World) Close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		w.watching.Wait()
	}
	for _, rt := range w.Runtimes {
		rt.Close()
	}
	if w.proxy != nil {
		w.proxy.Close()
	}
	w.Cloud.Close()
}

// watch samples every process's VmHWM (its peak RSS so far) until Close, so
// a process that is killed or replaced still counts.
func (w *World) watch() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		w.sampleRSS()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

func (w *World) sampleRSS() {
	for _, rt := range w.Runtimes {
		pid := rt.PID()
		if pid == 0 {
			continue
		}
		if hwm, ok := vmHWM(pid); ok {
			w.mu.Lock()
			w.hwm[pid] = max(w.hwm[pid], hwm)
			w.mu.Unlock()
		}
	}
}

// PeakRSS is the largest VmHWM of any function process so far, in bytes
// (0 where /proc is not available).
func (w *World) PeakRSS() int64 {
	w.sampleRSS()
	w.mu.Lock()
	defer w.mu.Unlock()
	var peak int64
	for _, v := range w.hwm {
		peak = max(peak, v)
	}
	return peak
}

// vmHWM reads a process's peak resident set size from /proc (Linux).
func vmHWM(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// Invocation is one invocation of the night and its report (nil when the
// invocation failed).
type Invocation struct {
	cloudsim.Delivery
	Report *events.Report
}

// Night is what a night did.
type Night struct {
	Invocations []Invocation
	Trigger     cloudsim.TriggerStats
	Wall        time.Duration // the first invocation's start to the last answer
}

// Run invokes kickoff (the timer event; nil for none) on the first runtime
// and drains the work queue through the queue trigger over every runtime.
// tr sets the trigger's Attempts, RetryDelay, Until and OnDispatch;
// onDelivery, when set, sees each invocation as it ends.
func (w *World) Run(ctx context.Context, kickoff []byte, tr cloudsim.Trigger, onDelivery func(Invocation)) (Night, error) {
	var n Night
	tr.Cloud, tr.Runtimes, tr.Kickoff = w.Cloud, w.Runtimes, kickoff
	tr.OnDelivery = func(d cloudsim.Delivery) {
		inv := Invocation{Delivery: d}
		if !d.Failed() {
			var r events.Report
			if err := json.Unmarshal(d.Result.Body, &r); err == nil {
				inv.Report = &r
			}
		}
		n.Invocations = append(n.Invocations, inv)
		if onDelivery != nil {
			onDelivery(inv)
		}
	}
	began := time.Now()
	st, err := tr.Run(ctx)
	n.Trigger, n.Wall = st, time.Since(began)
	return n, err
}

// Reports returns the reports of the answered invocations.
func (n Night) Reports() []events.Report {
	var out []events.Report
	for _, inv := range n.Invocations {
		if inv.Report != nil {
			out = append(out, *inv.Report)
		}
	}
	return out
}

// Calls sums up the SAG API calls so far.
type Calls struct {
	Total     int
	Throttled int            // answered Throttling*
	ByAction  map[string]int // every call, throttled ones included
	Faults    int            // calls with an injected fault
	// Answered by action: the calls the service did not refuse with
	// Throttling, which its per-action limit paces.
	Answered map[string]int
}

// Busiest is the action with the most answered calls (by name on a tie), the
// one a per-action limit binds first.
func (c Calls) Busiest() (action string, answered int) {
	for a, n := range c.Answered {
		if n > answered || n == answered && a < action {
			action, answered = a, n
		}
	}
	return action, answered
}

// CountCalls reads the SAG emulator's call log.
func CountCalls(cloud *cloudsim.Cloud) Calls {
	c := Calls{ByAction: map[string]int{}, Answered: map[string]int{}}
	for _, call := range cloud.SAG.Calls() {
		c.Total++
		c.ByAction[call.Action]++
		if strings.HasPrefix(call.Code, "Throttling") {
			c.Throttled++
		} else {
			c.Answered[call.Action]++
		}
		if call.Fault != "" {
			c.Faults++
		}
	}
	return c
}
