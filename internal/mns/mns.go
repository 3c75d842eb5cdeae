// Package mns publishes the function's outcome events with the official
// aliyun-mns-go-sdk (v1.0.11).
//
// The SDK panics on an endpoint that does not split into five dot-separated
// parts, so an endpoint of another shape (http://127.0.0.1:8081, a local
// emulator) is reached through a fasthttp transport that redirects the SDK's
// canonical-looking host to it; the signature covers only the path, so this
// changes nothing on the wire but the address dialled.
package mns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"
	"github.com/valyala/fasthttp"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
)

// Options configure the client.
type Options struct {
	Endpoint    string // MNS_ENDPOINT: any http(s) URL
	Credentials handler.Credentials
	// Timeout bounds one request (whole seconds, default 5 s); a publish
	// also ends at its context's deadline.
	Timeout time.Duration
}

// DefaultTimeout bounds one request when Options.Timeout is not set.
const DefaultTimeout = 5 * time.Second

// Client talks to one MNS endpoint.
type Client struct {
	sdk      ali_mns.MNSClient
	scrub    *strings.Replacer
	redirect *fasthttp.HostClient // nil: the SDK's own client
}

// Close closes the kept-alive connections of a client to the emulator's
// address. The SDK's own client (a real endpoint) closes a connection idle
// for fasthttp's MaxIdleConnDuration (10 s) by itself, and has no handle.
func (c *Client) Close() {
	if c.redirect != nil {
		c.redirect.CloseIdleConnections()
	}
}

// New returns a client. It reports bad options as errors where the SDK would
// panic.
func New(o Options) (c *Client, err error) {
	if o.Credentials.AccessKeyID == "" || o.Credentials.AccessKeySecret == "" {
		return nil, errors.New("mns: no credentials")
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mns: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	timeout := int64(o.Timeout / time.Second)
	if timeout <= 0 {
		timeout = int64(DefaultTimeout / time.Second)
	}
	endpoint, redirect := strings.TrimSuffix(o.Endpoint, "/"), false
	if len(strings.Split(endpoint, ".")) != 5 || u.Path != "" {
		endpoint, redirect = u.Scheme+"://emulated.mns.local.aliyuncs.com", true
	}
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("mns: %v", p)
		}
	}()
	sdk := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{
		EndPoint:        endpoint,
		AccessKeyId:     o.Credentials.AccessKeyID,
		AccessKeySecret: o.Credentials.AccessKeySecret,
		Token:           o.Credentials.SecurityToken,
		TimeoutSecond:   timeout,
	})
	var hc *fasthttp.HostClient
	if redirect {
		hc = &fasthttp.HostClient{
			Addr:         u.Host,
			IsTLS:        u.Scheme == "https",
			ReadTimeout:  time.Duration(timeout) * time.Second,
			WriteTimeout: time.Duration(timeout) * time.Second,
		}
		sdk.SetTransport(&redirectTransport{hc: hc})
	}
	var pairs []string
	for _, s := range []string{o.Credentials.AccessKeySecret, o.Credentials.SecurityToken} {
		if s != "" {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	return &Client{sdk: sdk, scrub: strings.NewReplacer(pairs...), redirect: hc}, nil
}

// redirectTransport sends every request of the SDK to one address.
type redirectTransport struct{ hc *fasthttp.HostClient }

func (t *redirectTransport) RoundTrip(_ *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	return false, t.hc.Do(req, resp)
}

// Topic publishes to one topic. It implements handler.Publisher.
type Topic struct {
	c    *Client
	name string
}

var _ handler.Publisher = (*Topic)(nil)

// Topic returns a publisher for the named topic.
func (c *Client) Topic(name string) *Topic { return &Topic{c: c, name: name} }

// Publish sends the event as a JSON message tagged with its outcome (the part
// of its type after "sag.upgrade."), so subscriptions can filter by outcome.
// The SDK has no context; a publish still running at the context's deadline
// is abandoned and reported as failed.
func (t *Topic) Publish(ctx context.Context, ev events.CloudEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("mns: encoding event %s: %w", ev.ID, err)
	}
	msg := ali_mns.MessagePublishRequest{MessageBody: string(body), MessageTag: Tag(ev.Type)}
	done := make(chan error, 1)
	go func() {
		defer sdkPanic(done)
		// A topic object per publish: the SDK's QPS monitor races when one
		// object is shared by goroutines.
		_, err := ali_mns.NewMNSTopic(t.name, t.c.sdk).PublishMessage(msg)
		done <- err
	}()
	select {
	case err := <-done:
		return t.c.wrap("PublishMessage", t.name, err)
	case <-ctx.Done():
		return &Error{Op: "PublishMessage", Target: t.name, Message: "abandoned at the deadline: " + ctx.Err().Error()}
	}
}

// sdkPanic, deferred by a goroutine that calls the SDK, turns a panic there
// into the call's error: the goroutine is ours, and a panic in it would end
// the process.
func sdkPanic(done chan<- error) {
	if p := recover(); p != nil {
		done <- fmt.Errorf("mns: the SDK panicked: %v", p)
	}
}

// Tag is the MNS message tag of an event type; MNS tags (and FC trigger
// filterTags) are at most 16 characters.
func Tag(eventType string) string {
	tag := strings.TrimPrefix(eventType, events.OutcomeTypePrefix)
	if len(tag) > 16 {
		tag = tag[:16]
	}
	return tag
}

// Error is a failed MNS call.
type Error struct {
	Op, Target string
	Message    string
	temporary  bool
}

func (e *Error) Error() string { return fmt.Sprintf("mns %s %s: %s", e.Op, e.Target, e.Message) }

// Temporary reports whether a retry may succeed: throttling, server errors,
// and requests that got no usable answer.
func (e *Error) Temporary() bool { return e.temporary }

// The SDK's errors are gogap/errors codes, comparable only with IsEqual.
var temporaryErrors = []interface{ IsEqual(error) bool }{
	&ali_mns.ERR_SEND_REQUEST_FAILED,
	&ali_mns.ERR_UNMARSHAL_ERROR_RESPONSE_FAILED,
	&ali_mns.ERR_MNS_INTERNAL_ERROR,
	&ali_mns.ERR_MNS_QPS_LIMIT_EXCEEDED,
}

func (c *Client) wrap(op, target string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Target: target, Message: c.scrub.Replace(err.Error())}
	for _, t := range temporaryErrors {
		if t.IsEqual(err) {
			e.temporary = true
		}
	}
	// Codes the SDK does not map (e.g. 429 TooManyRequests, 500
	// InternalServerError) arrive as ERR_MNS_UNKNOWN_CODE with the code in
	// the text.
	if ali_mns.ERR_MNS_UNKNOWN_CODE.IsEqual(err) &&
		(strings.Contains(e.Message, "TooManyRequests") || strings.Contains(e.Message, "InternalServerError")) {
		e.temporary = true
	}
	return e
}

// Queue sends to one queue. It implements handler.WorkQueue.
type Queue struct {
	c    *Client
	name string
}

var _ handler.WorkQueue = (*Queue)(nil)

// Queue returns a sender for the named queue.
func (c *Client) Queue(name string) *Queue { return &Queue{c: c, name: name} }

// maxBatch is the most messages one BatchSendMessage takes.
const maxBatch = 16

// Send sends the messages, 16 a call. Bodies go as they are (plain JSON; the
// queue's EventBridge trigger does not base64-decode them). Priority is always
// set: the SDK would send 0, which MNS rejects. On a failure the messages not
// yet sent are reported; a batch the service refused in part is resent whole
// by the caller's retry, which a verify request tolerates (verifying twice is
// harmless).
func (q *Queue) Send(ctx context.Context, msgs []handler.QueueMessage) error {
	for start := 0; start < len(msgs); start += maxBatch {
		batch := msgs[start:min(start+maxBatch, len(msgs))]
		reqs := make([]ali_mns.MessageSendRequest, len(batch))
		for i, m := range batch {
			reqs[i] = ali_mns.MessageSendRequest{MessageBody: m.Body, DelaySeconds: int64(m.Delay / time.Second), Priority: 8}
		}
		done := make(chan error, 1)
		go func() {
			defer sdkPanic(done)
			// A queue object per call: the SDK's QPS monitor races when
			// one object is shared by goroutines.
			_, err := ali_mns.NewMNSQueue(q.name, q.c.sdk).BatchSendMessage(reqs...)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				return q.c.wrap("BatchSendMessage", fmt.Sprintf("%s (%d of %d messages not sent)", q.name, len(msgs)-start, len(msgs)), err)
			}
		case <-ctx.Done():
			return &Error{Op: "BatchSendMessage", Target: q.name, Message: "abandoned at the deadline: " + ctx.Err().Error()}
		}
	}
	return nil
}
