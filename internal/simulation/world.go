// Package simulation runs the function on the simulated cloud: one harness
// for the end-to-end tests (internal/e2e), `go run . -simulate`, the
// benchmarks (scripts/bench) and the soak (soak).
//
// A World is a simulated cloud (cloudsim) with a fleet. The function runs on
// it in one of two ways:
//
//   - compiled, under the FC runtime emulator (Deploy, as FC runs the code
//     package; Build makes the binary as scripts/build.sh does), where a
//     night is the timer's invocation and the work queue drained by the
//     queue trigger over the instances (RunNight);
//   - in-process (InProcess: the same handler and adapters, composed by
//     main), with the cloud's clock as its domain time, so nights can pass
//     on the simulated clock (Local.Night).
//
// Compiled functions are also reachable as FC reaches them: the first
// instance deployed under each of s.yaml's names (DeployAll deploys all
// three) answers FC 3.0's InvokeFunction on the cloud's URL, which is what
// sagctl calls; Serve (`-simulate -serve`) runs them so until interrupted.
//
// Nothing here is linked into the FC code package: main reaches this package
// only from its simulator file, which the FC build leaves out.
package simulation

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcapi"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// FunctionTimeout is the function's timeout, as s.yaml sets it.
const FunctionTimeout = 15 * time.Minute

// credentialTTL is how long the STS credentials handed to a compiled
// function's invocation live: longer than any night the harness runs.
const credentialTTL = 2 * time.Hour

// Options shape a World.
type Options struct {
	Fleet *fleet.Fleet
	SAG   sagsim.Options // latency, limits, faults, upgrade time
	Addr  string         // where the cloud listens; default 127.0.0.1:0
}

// World is a running simulated cloud and the functions deployed on it.
type World struct {
	Cloud *cloudsim.Cloud

	mu       sync.Mutex
	runtimes []*fcsim.Runtime
	served   map[string]bool // function names InvokeFunction reaches
	issued   []auth.Credential
	hwm      map[int]int64 // VmHWM in bytes, by pid

	watchOnce sync.Once
	stop      chan struct{}
	watching  sync.WaitGroup
	closeOnce sync.Once
}

// Start starts the simulated cloud with a fleet.
func Start(o Options) (*World, error) {
	cloud, err := cloudsim.Start(cloudsim.Options{Fleet: o.Fleet, SAG: o.SAG, Addr: o.Addr})
	if err != nil {
		return nil, err
	}
	return &World{Cloud: cloud, hwm: map[int]int64{}, served: map[string]bool{}, stop: make(chan struct{})}, nil
}

// Close stops every function's processes and the cloud.
func (w *World) Close() {
	w.closeOnce.Do(func() {
		close(w.stop)
		w.watching.Wait()
		for _, rt := range w.Runtimes() {
			rt.Close()
		}
		w.Cloud.Close()
	})
}

// Credentials issues STS credentials of the fleet's account, and remembers
// them (Issued), so a test can look for their secrets where none may be.
func (w *World) Credentials(ttl time.Duration) auth.Credential {
	c := w.Cloud.Credentials(ttl)
	w.mu.Lock()
	w.issued = append(w.issued, c)
	w.mu.Unlock()
	return c
}

// Issued returns every credential issued so far.
func (w *World) Issued() []auth.Credential {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]auth.Credential(nil), w.issued...)
}

// The functions of s.yaml, one code package under three names.
const (
	FunctionName        = "sag-upgrade"         // the triggers' function
	ControlFunctionName = "sag-upgrade-control" // CONTROL_ENDPOINT=true: the operators' steering
	QueryFunctionName   = "sag-upgrade-query"   // QUERY_ENDPOINT=true: status, history and plan only
	// Alias is s.yaml's vars.alias, which the triggers invoke and
	// deploy/release.sh moves; here it is version 1, LATEST's code.
	Alias = "live"
)

// Function is a deployment of the compiled function.
type Function struct {
	Binary string   // the compiled function (Build)
	Env    []string // its variables on top of the cloud's; later entries win
	// Control deploys the operators' function (sag-upgrade-control,
	// CONTROL_ENDPOINT=true, no trigger): the one that serves control
	// requests and force.
	Control bool
	// Query deploys the look-only function (sag-upgrade-query,
	// QUERY_ENDPOINT=true, no trigger). Not with Control.
	Query   bool
	Timeout time.Duration // default FunctionTimeout
	Output  io.Writer     // the process's stdout and stderr; nil discards them
	// MaxAsyncRetryAttempts as fcsim.Config: 0 is FC's default of 3.
	MaxAsyncRetryAttempts int
}

// Deploy starts one instance of the function under the FC runtime emulator
// (its process starts with its first invocation) and watches its peak RSS.
// The first instance deployed under a name is the one FC's InvokeFunction
// reaches on the cloud's URL (Cloud.FC), as sagctl calls it, at LATEST and
// at the alias.
func (w *World) Deploy(f Function) (*fcsim.Runtime, error) {
	if f.Timeout <= 0 {
		f.Timeout = FunctionTimeout
	}
	env := append(w.Cloud.Env(), f.Env...)
	name := FunctionName
	switch {
	case f.Control && f.Query:
		return nil, fmt.Errorf("simulation: a function is the control or the query function, not both")
	case f.Control:
		env, name = append(env, "CONTROL_ENDPOINT=true"), ControlFunctionName
	case f.Query:
		env, name = append(env, "QUERY_ENDPOINT=true"), QueryFunctionName
	}
	rt, err := fcsim.Start(fcsim.Config{
		Binary: f.Binary, Env: env, FunctionName: name, Handler: "main",
		Region: cloudsim.Region, AccountID: w.Cloud.Fleet.AccountID, Timeout: f.Timeout,
		Credentials: func() auth.Credential { return w.Credentials(credentialTTL) },
		Stdout:      f.Output, Stderr: f.Output,
		MaxAsyncRetryAttempts: f.MaxAsyncRetryAttempts,
	})
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.runtimes = append(w.runtimes, rt)
	first := !w.served[name]
	w.served[name] = true
	w.mu.Unlock()
	if first {
		for _, f := range []fcapi.Function{{Name: name, Target: rt}, {Name: name, Qualifier: Alias, VersionID: "1", Target: rt}} {
			if err := w.Cloud.FC.Register(f); err != nil {
				return nil, err
			}
		}
	}
	w.watchOnce.Do(func() { w.watching.Go(w.watch) })
	return rt, nil
}

// Functions are the three functions of s.yaml deployed together.
type Functions struct {
	Sweeps  *fcsim.Runtime // sag-upgrade: timer, topic and queue triggers
	Control *fcsim.Runtime // sag-upgrade-control
	Query   *fcsim.Runtime // sag-upgrade-query
}

// DeployAll deploys s.yaml's three functions from one code package and
// configuration (f's Control and Query are ignored), as `s deploy` does.
func (w *World) DeployAll(f Function) (Functions, error) {
	var fs Functions
	for _, d := range []struct {
		rt             **fcsim.Runtime
		control, query bool
	}{{&fs.Sweeps, false, false}, {&fs.Control, true, false}, {&fs.Query, false, true}} {
		f.Control, f.Query = d.control, d.query
		rt, err := w.Deploy(f)
		if err != nil {
			return Functions{}, err
		}
		*d.rt = rt
	}
	return fs, nil
}

// Runtimes returns the deployed instances, in the order they were deployed.
func (w *World) Runtimes() []*fcsim.Runtime {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*fcsim.Runtime(nil), w.runtimes...)
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
	for _, rt := range w.Runtimes() {
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
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
