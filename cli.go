package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
}

// The function's invocation timeout, as in s.yaml.
const localTimeout = 15 * time.Minute

// runCLI runs the local command line and returns the exit code. The report
// goes to stdout and nothing else does, so `go run . -simulate | jq .counts`
// works; progress and the summary go to stderr.
func runCLI(o cliOptions, stdout, stderr io.Writer) int {
	switch {
	case o.simulate:
		return simulator(o, stdout, stderr) // simulate.go; the FC build has none
	case o.serve != "":
		fmt.Fprintln(stderr, "sag-upgrade: -serve needs -simulate")
		return 2
	case o.event != "":
		return realRun(o, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: sag-upgrade -simulate [-event FILE] [-fleet FILE] | -simulate -serve ADDR | -event FILE")
	return 2
}

// newHandler composes the function for a configuration outside FC, with its
// logs going to logs: for -event against the real cloud, and for the
// simulator, which runs the same composition on the simulated cloud.
func newHandler(cfg handler.Config, wiring handler.Wiring, logs io.Writer) *handler.Handler {
	return &handler.Handler{Config: cfg, Connect: connector(wiring), Log: newLogger(logs, cfg.LogLevel)}
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
	h := newHandler(cfg, wiring, stderr)
	ctx, cancel := context.WithTimeout(context.Background(), localTimeout)
	defer cancel()
	report, err := h.Invoke(ctx, inv, payload)
	if werr := writeJSON(stdout, report); werr != nil && err == nil {
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
