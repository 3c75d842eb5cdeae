package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler"
)

type cliOptions struct {
	simulate bool
	event    string
	fleet    string
	serve    string
	nights   int
	audit    string
	report   string
}

// usage is every form of the command line, with every flag.
const usage = `usage: sag-upgrade -simulate [-fleet FILE] [-event FILE] [-nights N [-audit ID]] [-report FILE]
       sag-upgrade -simulate -serve ADDR [-fleet FILE]
       sag-upgrade -event FILE [-report FILE]`

// newFlags defines the command line's flags into o; -h prints the usage and
// every flag to stderr.
func newFlags(o *cliOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sag-upgrade", flag.ExitOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\n", usage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.simulate, "simulate", false, "run on the embedded simulated cloud instead of Alibaba Cloud")
	fs.StringVar(&o.event, "event", "", "trigger event `FILE` (default: an empty payload, a default sweep)")
	fs.StringVar(&o.fleet, "fleet", "testdata/fleets/demo.json", "simulated fleet `FILE` (with -simulate)")
	fs.StringVar(&o.serve, "serve", "", "with -simulate: serve the simulated cloud on `ADDR`, with the function deployed behind FC's InvokeFunction for sagctl, until interrupted")
	fs.IntVar(&o.nights, "nights", 0, "with -simulate: run `N` nights on the simulated clock, each a timer sweep and the night's verifications (the report: a JSON array of every run's)")
	fs.StringVar(&o.audit, "audit", "", "with -simulate -nights: print the ledger's audit trail of gateway `ID` at the end")
	fs.StringVar(&o.report, "report", "", "write the run report (JSON) to `FILE`; without it the report goes to stdout, with -simulate only when stdout is not a terminal")
	return fs
}

// The function's invocation timeout, as in s.yaml.
const localTimeout = 15 * time.Minute

// runCLI runs the local command line and returns the exit code. The report
// goes to stdout (or -report's file) and nothing else does, so
// `go run . -simulate | jq .counts` works; progress and the summary go to
// stderr.
func runCLI(o cliOptions, stdout, stderr io.Writer) int {
	if problem := o.check(); problem != "" {
		fmt.Fprintf(stderr, "sag-upgrade: %s\n%s\n", problem, usage)
		return 2
	}
	switch {
	case o.simulate:
		return simulator(o, stdout, stderr) // simulate.go; the FC build has none
	case o.event != "":
		return realRun(o, stdout, stderr)
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

// check says what is wrong with a combination of flags, or "" when nothing
// is; the simulation checks -audit's gateway against its fleet.
func (o cliOptions) check() string {
	switch {
	case o.serve != "" && !o.simulate:
		return "-serve needs -simulate"
	case o.nights != 0 && !o.simulate:
		return "-nights needs -simulate"
	case o.nights < 0:
		return fmt.Sprintf("-nights %d: the number of nights must be at least 1", o.nights)
	case o.audit != "" && o.nights == 0:
		return "-audit needs -nights N: the audit trail is printed after the nights"
	case o.serve != "" && (o.event != "" || o.nights != 0 || o.report != ""):
		return "-serve runs no invocation of its own: -event, -nights, -audit and -report do not go with it"
	}
	return ""
}

// newHandler composes the function for a configuration outside FC, with its
// logs going to logs: for -event against the real cloud, and for the
// simulator, which runs the same composition on the simulated cloud.
// clock, when set, is the domain time of the handler and of its log lines
// (the simulated cloud's); nil is the machine's.
func newHandler(cfg handler.Config, wiring handler.Wiring, logs io.Writer, clock func() time.Time) *handler.Handler {
	return &handler.Handler{Config: cfg, Connect: connector(wiring), Clock: clock, Log: newLogger(logs, cfg.LogLevel, clock)}
}

// realRun makes one invocation against Alibaba Cloud with the credentials of
// the environment. Logs go to stderr, the report to stdout.
func realRun(o cliOptions, stdout, stderr io.Writer) int {
	payload, err := readEvent(o.event)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	region := os.Getenv("FC_REGION")
	if region == "" {
		region = os.Getenv("ALIBABA_CLOUD_REGION_ID")
	}
	cfg, wiring, err := handler.ReadEnv(os.Getenv, region)
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	inv := handler.Invocation{
		RequestID: "cli-" + randomHex(8), Region: region, AccountID: os.Getenv("ALIBABA_CLOUD_ACCOUNT_ID"), FunctionName: "sag-upgrade-cli",
		Credentials: handler.Credentials{
			AccessKeyID:     os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"),
			AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
			SecurityToken:   os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"),
		},
	}
	if inv.Credentials.AccessKeyID == "" || inv.Credentials.AccessKeySecret == "" {
		fmt.Fprintln(stderr, "sag-upgrade: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for STS)")
		return 1
	}
	h := newHandler(cfg, wiring, stderr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), localTimeout)
	defer cancel()
	report, err := h.Invoke(ctx, inv, payload)
	if werr := writeReport(o.report, stdout, report); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(stderr, "sag-upgrade:", err)
		return 1
	}
	return 0
}

func readEvent(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return os.ReadFile(path)
}

// writeReport writes the report to the file path, or to stdout when path is
// empty.
func writeReport(path string, stdout io.Writer, v any) error {
	if path == "" {
		return writeJSON(stdout, v)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
