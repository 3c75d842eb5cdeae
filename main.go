// Command sag-upgrade keeps a fleet of Alibaba Cloud Smart Access Gateways on
// current software. Under Function Compute (FC_RUNTIME_API set) it serves
// invocations; otherwise it is the local command line (cli.go):
//
//	go run . -simulate                  one sweep of the demo fleet on the simulated cloud
//	go run . -simulate -event FILE      the same, triggered by an event file
//	go run . -simulate -nights N        N nights: sweeps, then verifications as the clock moves
//	go run . -simulate -nights N -audit ID   and then a gateway's audit trail
//	go run . -simulate -serve ADDR      the simulated cloud with the function deployed, for sagctl
//	go run . -event FILE                one invocation against the real cloud
//
// -report FILE writes the report there instead of stdout; -simulate writes
// it to stdout only when stdout is not a terminal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // MAINTENANCE_TZ must load whatever the runtime image has

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/mns"
	"github.com/sag-upgrade/sag-upgrade/internal/smartag"
	"github.com/sag-upgrade/sag-upgrade/internal/tablestore"
)

func main() {
	if err := refuseSDKDebug(os.Getenv("DEBUG")); err != nil {
		fmt.Fprintln(os.Stderr, "sag-upgrade:", err)
		os.Exit(2)
	}
	if os.Getenv("FC_RUNTIME_API") != "" {
		serveFC()
		return
	}
	var o cliOptions
	flags := newFlags(&o, os.Stderr)
	flags.Parse(os.Args[1:]) // ExitOnError
	os.Exit(runCLI(o, os.Stdout, os.Stderr))
}

// refuseSDKDebug stops the process when DEBUG asks alibaba-cloud-sdk-go to
// print its requests: their URLs carry the security token, and the SDK reads
// the variable before main runs, so it cannot be switched off here.
func refuseSDKDebug(debug string) error {
	for _, part := range strings.Split(debug, ",") {
		if strings.TrimSpace(part) == "sdk" {
			return errors.New("DEBUG=sdk would print every request with its security token; unset it")
		}
	}
	return nil
}

// serveFC serves invocations under Function Compute.
func serveFC() {
	cfg, wiring, cfgErr := handler.ReadEnv(os.Getenv, os.Getenv("FC_REGION"))
	log := newLogger(os.Stdout, cfg.LogLevel, nil)
	h := &handler.Handler{Config: cfg, Connect: connector(wiring), Log: log, Control: cfg.ControlEndpoint, Query: cfg.QueryEndpoint}
	// The event is taken as raw bytes (a typed event fails before this code
	// on an empty or non-JSON body) and the report returned as a struct.
	fc.Start(func(ctx context.Context, payload []byte) (*events.Report, error) {
		inv := invocation(ctx)
		if cfgErr != nil {
			// Every line carries both ids, this one too: the id Invoke would give the run.
			log.Error().Str("requestId", inv.RequestID).Str("runId", handler.RunID(inv, payload)).
				Err(cfgErr).Msg("invalid configuration")
			return nil, messages.InvokeResponse_Error{Message: cfgErr.Error(), Type: "ConfigurationError"}
		}
		report, err := h.Invoke(ctx, inv, payload)
		var rejected *handler.RejectedError
		var control *handler.ControlError
		var unreachable *handler.InfrastructureError
		var internal *handler.InternalError
		switch {
		case errors.As(err, &rejected):
			return nil, messages.InvokeResponse_Error{Message: err.Error(), Type: "RejectedRequest"}
		case errors.As(err, &control):
			return nil, messages.InvokeResponse_Error{Message: err.Error(), Type: "ControlFailed"}
		case errors.As(err, &unreachable):
			return nil, messages.InvokeResponse_Error{Message: err.Error(), Type: "ServicesUnreachable"}
		case errors.As(err, &internal):
			return nil, messages.InvokeResponse_Error{Message: err.Error(), Type: "InternalError"}
		case err != nil:
			return nil, messages.InvokeResponse_Error{Message: err.Error(), Type: "InvocationError"}
		}
		return &report, nil
	})
}

// invocation reads what FC says about the invocation. The per-invocation STS
// credentials come from the context; the instance's environment has a copy
// from its start.
func invocation(ctx context.Context) handler.Invocation {
	inv := handler.Invocation{
		Region:    os.Getenv("FC_REGION"),
		AccountID: os.Getenv("FC_ACCOUNT_ID"),
		Credentials: handler.Credentials{
			AccessKeyID:     os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"),
			AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
			SecurityToken:   os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"),
		},
		FunctionName: os.Getenv("FC_FUNCTION_NAME"),
	}
	fctx, ok := fccontext.FromContext(ctx)
	if !ok {
		return inv
	}
	inv.RequestID, inv.RetryCount = fctx.RequestID, fctx.RetryCount
	if fctx.Region != "" {
		inv.Region = fctx.Region
	}
	if fctx.AccountId != "" {
		inv.AccountID = fctx.AccountId
	}
	if fctx.Function.Name != "" {
		inv.FunctionName = fctx.Function.Name
	}
	if c := fctx.Credentials; c.AccessKeyId != "" {
		inv.Credentials = handler.Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
	}
	return inv
}

// connector builds an invocation's cloud clients, reusing them while the
// credentials stay the same (FC rotates them; connections survive in between).
func connector(w handler.Wiring) func(context.Context, handler.Invocation) (handler.Cloud, error) {
	var mu sync.Mutex
	var last handler.Credentials
	var cached *handler.Cloud
	var closers []interface{ Close() } // the clients of the last credentials
	return func(_ context.Context, inv handler.Invocation) (handler.Cloud, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && inv.Credentials == last {
			return *cached, nil
		}
		sag, err := smartag.New(smartag.Options{Endpoint: w.SAGEndpoint, Credentials: inv.Credentials, UserAgent: "sag-upgrade"})
		if err != nil {
			return handler.Cloud{}, err
		}
		// New credentials: the old clients' kept-alive connections would
		// otherwise stay open for as long as the instance lives (SAG's) or
		// for a while after each rotation (the ledger's 25 s, MNS's 10 s).
		for _, c := range closers {
			c.Close()
		}
		closers = []interface{ Close() }{sag}
		// The SDKs without a context (MNS, Tablestore) run with their
		// adapters' default timeouts.
		cloud := handler.Cloud{SAG: sag, CallTimeout: max(mns.DefaultTimeout, tablestore.DefaultTimeout)}
		if w.MNSEndpoint != "" {
			c, err := mns.New(mns.Options{Endpoint: w.MNSEndpoint, Credentials: inv.Credentials})
			if err != nil {
				return handler.Cloud{}, err
			}
			closers = append(closers, c)
			if w.OutcomeTopic != "" {
				cloud.Events = c.Topic(w.OutcomeTopic)
			}
			if w.WorkQueue != "" {
				cloud.Work = c.Queue(w.WorkQueue)
			}
		}
		if w.Ledger() {
			l, err := tablestore.New(tablestore.Options{Endpoint: w.LedgerEndpoint, Instance: w.LedgerInstance,
				Table: w.LedgerTable, Credentials: inv.Credentials})
			if err != nil {
				return handler.Cloud{}, err
			}
			cloud.Ledger = l
			closers = append(closers, l)
		}
		last, cached = inv.Credentials, &cloud
		return cloud, nil
	}
}

// newLogger writes zerolog JSON lines, timed to the millisecond by clock
// (nil: the machine's).
func newLogger(w io.Writer, level zerolog.Level, clock func() time.Time) zerolog.Logger {
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	l := zerolog.New(w).Level(level)
	if clock == nil {
		return l.With().Timestamp().Str("service", "sag-upgrade").Logger()
	}
	// The field Timestamp() adds, in the same place, read from clock.
	return l.Hook(zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
		e.Time(zerolog.TimestampFieldName, clock())
	})).With().Str("service", "sag-upgrade").Logger()
}
