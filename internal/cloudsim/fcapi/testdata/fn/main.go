// Command fn is the test function of package fcapi: a go1 function on the
// real fc-runtime-go-sdk whose payload tells it what to do.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
)

type command struct {
	Op    string `json:"op"`
	Msg   string `json:"msg"`
	Lines int    `json:"lines"`
}

type reply struct {
	Msg       string `json:"msg"`
	Tag       string `json:"tag"` // FN_TAG: which registration ran
	RequestID string `json:"requestId"`
	Qualifier string `json:"qualifier"`
	VersionID string `json:"versionId"`
}

func main() { fc.Start(handle) }

func handle(ctx context.Context, payload []byte) (*reply, error) {
	var c command
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	fctx, _ := fccontext.FromContext(ctx)
	out := &reply{Msg: c.Msg, Tag: os.Getenv("FN_TAG"), RequestID: fctx.RequestID,
		Qualifier: fctx.Service.Qualifier, VersionID: fctx.Service.VersionId}
	switch c.Op {
	case "echo":
	case "error":
		return nil, errors.New(c.Msg)
	case "log": // numbered lines, then the message
		for i := range c.Lines {
			fmt.Printf("line %04d %s\n", i, strings.Repeat("x", 40))
		}
		fmt.Println(c.Msg)
	default:
		return nil, errors.New("unknown op " + c.Op)
	}
	return out, nil
}
