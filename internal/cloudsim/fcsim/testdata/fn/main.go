// Command fn is the test function of package fcsim: a go1 function on the real
// fc-runtime-go-sdk whose payload is a command telling it how to behave.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
)

type command struct {
	Op     string   `json:"op"`
	Msg    string   `json:"msg"`
	Ms     int      `json:"ms"`
	Code   int      `json:"code"`
	N      int      `json:"n"`
	Lines  []string `json:"lines"`
	Tagged bool     `json:"tagged"` // log through the fccontext logger
}

type reply struct {
	Op         string `json:"op"`
	Msg        string `json:"msg,omitempty"`
	PID        int    `json:"pid"`
	RequestID  string `json:"requestId"`
	RetryCount int    `json:"retryCount"`

	// op "context"
	Region       string            `json:"region,omitempty"`
	AccountID    string            `json:"accountId,omitempty"`
	FunctionName string            `json:"functionName,omitempty"`
	Handler      string            `json:"handler,omitempty"`
	Memory       string            `json:"memory,omitempty"`
	Timeout      int               `json:"timeout,omitempty"`
	Qualifier    string            `json:"qualifier,omitempty"`
	AccessKeyID  string            `json:"accessKeyId,omitempty"`
	HasSecret    bool              `json:"hasSecret,omitempty"` // never the secret itself
	HasToken     bool              `json:"hasToken,omitempty"`
	DeadlineMs   int64             `json:"deadlineMs,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
}

func main() {
	switch {
	case os.Getenv("FN_EXIT_AT_START") != "":
		os.Exit(2)
	case os.Getenv("FN_HANG_AT_START") != "":
		// Asleep, not blocked for ever: a static (CGO_ENABLED=0) binary
		// whose goroutines all block exits with "all goroutines are asleep".
		for {
			time.Sleep(time.Hour)
		}
	}
	fc.Start(handle)
}

func handle(ctx context.Context, payload []byte) (*reply, error) {
	var c command
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	fctx, _ := fccontext.FromContext(ctx)
	out := &reply{Op: c.Op, PID: os.Getpid(), RequestID: fctx.RequestID, RetryCount: fctx.RetryCount}
	switch c.Op {
	case "echo":
		out.Msg = c.Msg
	case "sleep":
		time.Sleep(time.Duration(c.Ms) * time.Millisecond) // ignores ctx: FC must stop it
	case "panic":
		panic(c.Msg)
	case "exit":
		os.Exit(c.Code)
	case "error":
		return nil, fmt.Errorf("%s retry=%d", c.Msg, fctx.RetryCount)
	case "fail-until": // fails until the retry count reaches n
		if fctx.RetryCount < c.N {
			return nil, fmt.Errorf("not yet, retry=%d", fctx.RetryCount)
		}
	case "log": // prints half the lines, meets n-1 other invocations, prints the rest
		half := len(c.Lines) / 2
		printLines(fctx, c.Tagged, c.Lines[:half])
		if c.N > 1 {
			if err := rendezvous(ctx, c.N); err != nil {
				return nil, err
			}
		}
		printLines(fctx, c.Tagged, c.Lines[half:])
	case "rendezvous":
		if err := rendezvous(ctx, c.N); err != nil {
			return nil, err
		}
	case "context":
		out.Region, out.AccountID = fctx.Region, fctx.AccountId
		out.FunctionName, out.Handler = fctx.Function.Name, fctx.Function.Handler
		out.Memory, out.Timeout = fctx.Function.Memory, fctx.Function.Timeout
		out.Qualifier = fctx.Service.Qualifier
		out.AccessKeyID = fctx.Credentials.AccessKeyId
		out.HasSecret = fctx.Credentials.AccessKeySecret != ""
		out.HasToken = fctx.Credentials.SecurityToken != ""
		if d, ok := ctx.Deadline(); ok {
			out.DeadlineMs = d.UnixMilli()
		}
		out.Env = map[string]string{}
		for _, k := range []string{"FC_RUNTIME_API", "FC_FUNCTION_NAME", "FC_FUNCTION_HANDLER",
			"FC_FUNCTION_MEMORY_SIZE", "FC_REGION", "FC_ACCOUNT_ID", "FC_INSTANCE_ID",
			"ALIBABA_CLOUD_ACCESS_KEY_ID", "FN_USER_VAR"} {
			out.Env[k] = os.Getenv(k)
		}
	default:
		return nil, errors.New("unknown op " + c.Op)
	}
	return out, nil
}

func printLines(fctx *fccontext.FcContext, tagged bool, lines []string) {
	for _, l := range lines {
		if tagged {
			fctx.GetLogger().Info(l)
		} else {
			fmt.Println(l)
		}
	}
}

// One barrier per process: the tests that use it run in a fresh process.
var (
	mu      sync.Mutex
	arrived int
	met     = make(chan struct{})
)

// rendezvous returns once n invocations have called it, so it succeeds only
// when they run at the same time.
func rendezvous(ctx context.Context, n int) error {
	mu.Lock()
	if arrived++; arrived == n {
		close(met)
	}
	mu.Unlock()
	select {
	case <-met:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
