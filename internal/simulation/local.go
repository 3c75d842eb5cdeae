package simulation

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// NewHandler composes the function for a configuration, its logs going to
// logs, with clock as its domain time and its log lines' time: main's
// composition (its adapters and logger), which this package cannot import.
type NewHandler func(cfg handler.Config, wiring handler.Wiring, logs io.Writer, clock func() time.Time) *handler.Handler

// InProcess configures the function running in this process.
type InProcess struct {
	NewHandler NewHandler
	// Getenv is the operator's environment (DRY_RUN, MAINTENANCE_WINDOW, …);
	// the cloud's endpoints always win over it. Nil: none.
	Getenv func(string) (string, bool)
	Logs   io.Writer // the handler's log lines; nil discards them
	// Days the credentials must last: the simulated clock moves a day a
	// night. Default 1.
	Days int
}

// Local is the function in-process on a World: the same handler and
// adapters as production, with the cloud's clock as its domain time.
type Local struct {
	*World
	Handler *handler.Handler
	inv     handler.Invocation
}

// StartLocal starts the simulated cloud of a fleet file, its SAG API
// answering in 10 ms, with the function in-process on it: `-simulate`, and
// the tests of its nights. Close closes both.
func StartLocal(fleetFile string, o InProcess) (*Local, error) {
	f, err := fleet.Load(fleetFile)
	if err != nil {
		return nil, err
	}
	w, err := Start(Options{Fleet: f, SAG: sagsim.Options{Latency: 10 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	l, err := w.InProcess(o)
	if err != nil {
		w.Close()
		return nil, err
	}
	return l, nil
}

// InProcess composes the function on the world's cloud.
func (w *World) InProcess(o InProcess) (*Local, error) {
	simEnv := map[string]string{}
	for _, kv := range w.Cloud.Env() {
		k, v, _ := strings.Cut(kv, "=")
		simEnv[k] = v
	}
	simEnv["API_QPS"] = "100" // the emulator is local; a real account gets the conservative default
	getenv := func(k string) string {
		if cloudsim.Endpoints[k] || o.Getenv == nil {
			return simEnv[k]
		}
		if v, ok := o.Getenv(k); ok {
			return v
		}
		return simEnv[k]
	}
	cfg, wiring, err := handler.ReadEnv(getenv, cloudsim.Region)
	if err != nil {
		return nil, err
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	h := o.NewHandler(cfg, wiring, o.Logs, w.Cloud.Clock.Now)
	// The simulation plays the operators' function: an event file is
	// invoked as `s invoke` would, so a direct stop or reset is served (a
	// timer, topic or queue event is still refused control).
	h.Control = true
	creds := w.Credentials(24 * time.Hour * time.Duration(max(o.Days, 1)+1))
	return &Local{World: w, Handler: h, inv: handler.Invocation{
		Region: cloudsim.Region, AccountID: w.Cloud.Fleet.AccountID, FunctionName: "sag-upgrade",
		Credentials: handler.Credentials{AccessKeyID: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken},
	}}, nil
}

// Invoke runs one invocation, as FC would with its timeout.
func (l *Local) Invoke(payload []byte) (events.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), FunctionTimeout)
	defer cancel()
	inv := l.inv
	inv.RequestID = fmt.Sprintf("sim-%016x", rand.Uint64())
	return l.Handler.Invoke(ctx, inv, payload)
}

// Night runs one night from fired: the timer's sweep (or payload, when
// given), then the work queue's messages as they become due, for four hours
// of simulated time.
func (l *Local) Night(fired time.Time, payload []byte) ([]events.Report, error) {
	l.Cloud.Clock.Set(fired)
	if payload == nil {
		payload = TimerEvent(fired)
	}
	report, err := l.Invoke(payload)
	if err != nil {
		return nil, err
	}
	reports := []events.Report{report}
	for end := fired.Add(4 * time.Hour); l.Cloud.Clock.Now().Before(end); l.Cloud.Clock.Advance(time.Minute) {
		if reports, err = l.Drain(reports); err != nil {
			return reports, err
		}
	}
	return reports, nil
}

// Drain runs the work queue's messages that are due now, one invocation
// each (the queue trigger takes one at a time), until none is left, and
// appends their reports.
func (l *Local) Drain(reports []events.Report) ([]events.Report, error) {
	for batch := l.Cloud.QueueBatch(cloudsim.WorkQueue, 1); batch != nil; batch = l.Cloud.QueueBatch(cloudsim.WorkQueue, 1) {
		r, err := l.Invoke(batch)
		if err != nil {
			return reports, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}
