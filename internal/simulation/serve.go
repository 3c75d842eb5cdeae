package simulation

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// ServeOptions shape `-simulate -serve`.
type ServeOptions struct {
	Fleet string // fleet file
	Addr  string // where to listen; "" or a port 0 picks one
	// Getenv is the operator's environment: the function's configuration
	// variables set there (ROLLOUT_APPROVAL, MAX_UPGRADES_PER_NIGHT, …)
	// configure the deployed functions; the cloud's endpoints always win.
	// Nil: none.
	Getenv func(string) (string, bool)
	// Root is the module whose function is built; default ModuleRoot.
	Root string
	// Progress receives what Serve is doing while it starts (nil: nothing).
	Progress io.Writer
}

// Server is the simulated cloud with s.yaml's three functions deployed on
// it, reachable as in production: FC 3.0's InvokeFunction (and STS's
// GetCallerIdentity) on the cloud's URL, so sagctl pointed there sees what
// an operator sees. The work queue is drained by the queue trigger as
// messages come due, and the simulated clock follows the wall clock, so an
// upgrade started now is verified as it would be.
type Server struct {
	*World
	Functions Functions
	// Operator is a RAM user's access key of the fleet's account, for sagctl.
	Operator auth.Credential
	// Logs is the file the functions' output goes to.
	Logs string

	dir    string
	logs   *os.File
	cancel context.CancelFunc
	pumped chan struct{}
}

// StartServer builds the function as scripts/build.sh does, starts the
// simulated cloud of the fleet on o.Addr and deploys the three functions.
func StartServer(o ServeOptions) (*Server, error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	f, err := fleet.Load(o.Fleet)
	if err != nil {
		return nil, err
	}
	if o.Root == "" {
		if o.Root, err = ModuleRoot(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "sag-upgrade-serve")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, Logs: filepath.Join(dir, "functions.log"), pumped: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		s.Close()
		return nil, err
	}
	fmt.Fprintln(progress, "Building the function as scripts/build.sh does …")
	binary := filepath.Join(dir, "main")
	build, err := ReadFCBuild(o.Root)
	if err == nil {
		err = build.Compile(o.Root, binary)
	}
	if err != nil {
		return fail(fmt.Errorf("building the function: %w", err))
	}
	if s.logs, err = os.Create(s.Logs); err != nil {
		return fail(err)
	}
	if s.World, err = Start(Options{Fleet: f, Addr: o.Addr}); err != nil {
		return fail(err)
	}
	if s.Functions, err = s.DeployAll(Function{Binary: binary, Env: functionEnv(o.Getenv), Output: s.logs}); err != nil {
		return fail(err)
	}
	s.Operator = s.Cloud.Keyring.AddUserKey(f.AccountID, "operator")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.pump(ctx)
	return s, nil
}

// functionEnv is the functions' configuration: the operator's settings of
// the configuration table's variables, but the cloud's endpoints, and the
// local emulator's API rate.
func functionEnv(getenv func(string) (string, bool)) []string {
	env := []string{"API_QPS=100"}
	if getenv == nil {
		return env
	}
	for _, name := range handler.EnvNames() {
		if v, ok := getenv(name); ok && !cloudsim.Endpoints[name] {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// pumpEvery is how often the queue trigger looks for due messages.
const pumpEvery = time.Second

// pump moves the simulated clock with the wall clock and hands the work
// queue's due messages (fan-out batches, verify requests) to the triggers'
// function, as the EventBridge trigger would, until ctx ends.
func (s *Server) pump(ctx context.Context) {
	defer close(s.pumped)
	last := time.Now()
	t := time.NewTicker(pumpEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Cloud.Clock.Advance(now.Sub(last))
			last = now
			tr := cloudsim.Trigger{Cloud: s.Cloud, Runtimes: []*fcsim.Runtime{s.Functions.Sweeps}, Until: s.Cloud.Clock.Now()}
			_, _ = tr.Run(ctx)
		}
	}
}

// Exports are the variables that point sagctl at the server.
func (s *Server) Exports() []string {
	return []string{
		"SAGCTL_ENDPOINT=" + s.Cloud.URL,
		"SAGCTL_QUALIFIER=" + Alias, // as the triggers invoke them
		"ALIBABA_CLOUD_REGION_ID=" + cloudsim.Region,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + s.Operator.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + s.Operator.AccessKeySecret,
	}
}

// Close stops the queue trigger, the functions and the cloud, and removes
// the build and the log.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
		<-s.pumped
	}
	if s.World != nil {
		s.World.Close()
	}
	if s.logs != nil {
		s.logs.Close()
	}
	os.RemoveAll(s.dir)
}

// Serve is `go run . -simulate -serve ADDR`: StartServer, then what to
// export to point sagctl (and the function run by hand) at it, on w, until
// interrupted.
func Serve(o ServeOptions, w io.Writer) error {
	if o.Progress == nil {
		o.Progress = w
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)
	s, err := StartServer(o)
	if err != nil {
		return err
	}
	defer s.Close()
	f := s.Cloud.Fleet
	fmt.Fprintf(w, "Simulated cloud for %s (%d gateways in %s) at %s:\n", o.Fleet, len(f.Gateways), strings.Join(f.Regions, ", "), s.Cloud.URL)
	fmt.Fprintf(w, "SAG, MNS, Tablestore, STS, and FC 3.0 InvokeFunction serving %s, %s and %s (logs: %s).\n",
		FunctionName, ControlFunctionName, QueryFunctionName, s.Logs)
	fmt.Fprintln(w, "For sagctl (simulated credentials of a RAM user, valid only here):")
	for _, kv := range s.Exports() {
		fmt.Fprintln(w, "  export "+kv)
	}
	fmt.Fprintln(w, "  go run ./cmd/sagctl status")
	key := s.Cloud.Keyring.AddAccessKey(f.AccountID)
	fmt.Fprintln(w, "To run the function by hand against this cloud (go run . -event FILE):")
	for _, kv := range s.Cloud.Env() {
		fmt.Fprintln(w, "  export "+kv)
	}
	fmt.Fprintln(w, "  export ALIBABA_CLOUD_ACCESS_KEY_ID="+key.AccessKeyID)
	fmt.Fprintln(w, "  export ALIBABA_CLOUD_ACCESS_KEY_SECRET="+key.AccessKeySecret)
	fmt.Fprintln(w, "Interrupt (Ctrl-C) to stop.")
	<-stop
	return nil
}
