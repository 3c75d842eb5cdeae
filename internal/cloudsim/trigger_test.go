package cloudsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"
	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

// The test binary doubles as the function the trigger drives: started by
// fcsim with triggerFnEnv set, it serves invocations instead of running tests.
// (An init, not a TestMain, so that it never competes with one.)
const triggerFnEnv = "CLOUDSIM_TRIGGER_TEST_FN"

func init() {
	if os.Getenv(triggerFnEnv) == "" {
		return
	}
	fc.Start(triggerFn)
	os.Exit(0)
}

// fnCommand is a message body (or a direct payload) for triggerFn.
type fnCommand struct {
	Op  string `json:"op"` // "ok", "fail", "crash-once"
	Key string `json:"key"`
	Ms  int    `json:"ms"`
}

type fnReply struct {
	Key        string `json:"key"`
	PID        int    `json:"pid"`
	RetryCount int    `json:"retryCount"`
	Events     int    `json:"events"` // CloudEvents in the payload; 0 for a direct payload
}

func triggerFn(ctx context.Context, payload []byte) (*fnReply, error) {
	var c fnCommand
	var batch []struct {
		Data struct {
			MessageBody string `json:"messageBody"`
		} `json:"data"`
	}
	events := 0
	if json.Unmarshal(payload, &batch) == nil {
		events = len(batch)
		if events > 0 {
			payload = []byte(batch[0].Data.MessageBody)
		}
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	fctx, _ := fccontext.FromContext(ctx)
	time.Sleep(time.Duration(c.Ms) * time.Millisecond)
	switch c.Op {
	case "fail":
		return nil, errors.New("told to fail")
	case "crash-once":
		// The first delivery dies; the marker tells the redelivery.
		marker := filepath.Join(os.Getenv("MARKER_DIR"), c.Key)
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			os.Exit(3)
		}
	}
	return &fnReply{Key: c.Key, PID: os.Getpid(), RetryCount: fctx.RetryCount, Events: events}, nil
}

// triggerWorld is a cloud, n runtimes of triggerFn and a client of its queue.
type triggerWorld struct {
	cloud    *cloudsim.Cloud
	runtimes []*fcsim.Runtime
	queue    ali_mns.AliMNSQueue
}

func newTriggerWorld(t *testing.T, n int) *triggerWorld {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := &triggerWorld{cloud: start(t)}
	markers := t.TempDir()
	for range n {
		rt, err := fcsim.Start(fcsim.Config{Binary: self, Timeout: 10 * time.Second,
			Env: []string{triggerFnEnv + "=1", "MARKER_DIR=" + markers}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		w.runtimes = append(w.runtimes, rt)
	}
	creds := w.cloud.Credentials(time.Hour)
	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{EndPoint: w.cloud.URL + "/.",
		AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, Token: creds.SecurityToken, TimeoutSecond: 5})
	w.queue = ali_mns.NewMNSQueue(cloudsim.WorkQueue, client)
	return w
}

func (w *triggerWorld) send(t *testing.T, c fnCommand, delaySeconds int64) {
	t.Helper()
	body, _ := json.Marshal(c)
	if _, err := w.queue.SendMessage(ali_mns.MessageSendRequest{MessageBody: string(body), Priority: 8, DelaySeconds: delaySeconds}); err != nil {
		t.Error(err) // Error, not Fatal: also called from other goroutines
	}
}

func reply(t *testing.T, d cloudsim.Delivery) fnReply {
	t.Helper()
	var r fnReply
	if d.Err != nil || d.Result.Failed {
		t.Fatalf("delivery of %q failed: %v %s", d.Body, d.Err, d.Result.Body)
	}
	if err := json.Unmarshal(d.Result.Body, &r); err != nil {
		t.Fatalf("reply %s: %v", d.Result.Body, err)
	}
	return r
}

func TestTriggerDeliversEachMessageOnceOneAtATimePerRuntime(t *testing.T) {
	w := newTriggerWorld(t, 3)
	for i := range 12 {
		w.send(t, fnCommand{Op: "ok", Key: fmt.Sprint(i), Ms: 150}, 0)
	}
	var deliveries []cloudsim.Delivery
	running := map[int]string{} // by runtime, from OnDispatch to OnDelivery
	tr := &cloudsim.Trigger{Cloud: w.cloud, Runtimes: w.runtimes,
		OnDispatch: func(d cloudsim.Delivery) {
			if running[d.Runtime] != "" {
				t.Errorf("runtime %d got %s while it runs %s", d.Runtime, d.MessageID, running[d.Runtime])
			}
			running[d.Runtime] = d.MessageID
		},
		OnDelivery: func(d cloudsim.Delivery) {
			if running[d.Runtime] != d.MessageID {
				t.Errorf("runtime %d answered %s, dispatched %q", d.Runtime, d.MessageID, running[d.Runtime])
			}
			running[d.Runtime] = ""
			deliveries = append(deliveries, d)
		}}
	began := time.Now()
	st, err := tr.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(began)
	seen := map[string]int{}
	for _, d := range deliveries {
		r := reply(t, d)
		seen[r.Key]++
		if r.Events != 1 || r.RetryCount != 0 || d.Attempt != 1 {
			t.Errorf("message %s: %d events in the payload, retry count %d, attempt %d; want one event, a first delivery", r.Key, r.Events, r.RetryCount, d.Attempt)
		}
	}
	for i := range 12 {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("message %d delivered %d times", i, seen[fmt.Sprint(i)])
		}
	}
	// Never two invocations at once on one runtime, and all three at work:
	// at some delivery's start, three were running.
	most := 0
	for _, a := range deliveries {
		running := 0
		for _, b := range deliveries {
			if !a.Started.Before(b.Started) && a.Started.Before(b.Finished) {
				running++
				if a.Runtime == b.Runtime && a.MessageID != b.MessageID {
					t.Errorf("runtime %d ran %s and %s at once", a.Runtime, a.Body, b.Body)
				}
			}
		}
		most = max(most, running)
	}
	if most != 3 {
		t.Errorf("at most %d invocations at once, want 3", most)
	}
	if st.Messages != 12 || st.Invocations != 12 || st.Left != 0 || len(w.cloud.MNS.Messages(cloudsim.WorkQueue)) != 0 {
		t.Errorf("stats %+v, %d messages left", st, len(w.cloud.MNS.Messages(cloudsim.WorkQueue)))
	}
	if wall > 12*150*time.Millisecond {
		t.Errorf("12 messages of 150 ms on 3 runtimes took %v: not in parallel", wall)
	}
}

func TestTriggerRedeliversFailuresAndCrashesThenGivesUp(t *testing.T) {
	w := newTriggerWorld(t, 2)
	w.send(t, fnCommand{Op: "fail", Key: "always"}, 0)
	w.send(t, fnCommand{Op: "crash-once", Key: "crash"}, 0)
	w.send(t, fnCommand{Op: "ok", Key: "fine"}, 0)
	byKey := map[string][]cloudsim.Delivery{}
	var mu sync.Mutex
	tr := &cloudsim.Trigger{Cloud: w.cloud, Runtimes: w.runtimes, Attempts: 3, RetryDelay: 50 * time.Millisecond,
		OnDelivery: func(d cloudsim.Delivery) {
			var c fnCommand
			json.Unmarshal([]byte(d.Body), &c)
			mu.Lock()
			byKey[c.Key] = append(byKey[c.Key], d)
			mu.Unlock()
		}}
	st, err := tr.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := byKey["always"]; len(got) != 3 || len(st.DeadLetters) != 1 || st.DeadLetters[0].Body != got[0].Body {
		t.Fatalf("a message that always fails: %d deliveries, dead letters %+v; want 3 and given up", len(got), st.DeadLetters)
	}
	for i, d := range byKey["always"] {
		if d.Attempt != i+1 || d.Result.RequestID != byKey["always"][0].Result.RequestID || string(d.Payload) != string(byKey["always"][0].Payload) {
			t.Errorf("delivery %d: attempt %d, request id %s, payload changed %v; want the same event again", i, d.Attempt, d.Result.RequestID,
				string(d.Payload) != string(byKey["always"][0].Payload))
		}
		if i > 0 && d.Started.Sub(byKey["always"][i-1].Finished) < 50*time.Millisecond {
			t.Errorf("redelivery %d came %v after the failure, before RetryDelay", i, d.Started.Sub(byKey["always"][i-1].Finished))
		}
	}
	crash := byKey["crash"]
	if len(crash) != 2 || !crash[0].Result.Crashed {
		t.Fatalf("crash-once: %d deliveries, first crashed %v", len(crash), len(crash) > 0 && crash[0].Result.Crashed)
	}
	if r := reply(t, crash[1]); r.RetryCount != 1 || crash[1].Attempt != 2 {
		t.Errorf("the redelivery after a crash: retry count %d, attempt %d", r.RetryCount, crash[1].Attempt)
	}
	if len(byKey["fine"]) != 1 {
		t.Errorf("a good message was delivered %d times", len(byKey["fine"]))
	}
	if st.Messages != 3 || st.Invocations != 6 || st.Redeliveries != 3 || st.Crashes != 1 || st.Failures != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestTriggerMovesTheClockToDelayedMessagesUpToUntil(t *testing.T) {
	w := newTriggerWorld(t, 1)
	startAt := w.cloud.Clock.Now()
	w.send(t, fnCommand{Op: "ok", Key: "now"}, 0)
	w.send(t, fnCommand{Op: "ok", Key: "in-10-min"}, 600)
	w.send(t, fnCommand{Op: "ok", Key: "in-2-h"}, 7200)

	// A zero Until leaves the clock and the delayed messages alone.
	var keys []string
	collect := func(d cloudsim.Delivery) { keys = append(keys, reply(t, d).Key) }
	st, err := (&cloudsim.Trigger{Cloud: w.cloud, Runtimes: w.runtimes, OnDelivery: collect}).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "now" || st.Left != 2 || st.ClockMoves != 0 || !w.cloud.Clock.Now().Equal(startAt) {
		t.Fatalf("zero Until: delivered %v, stats %+v, clock moved by %v", keys, st, w.cloud.Clock.Now().Sub(startAt))
	}

	keys = nil
	st, err = (&cloudsim.Trigger{Cloud: w.cloud, Runtimes: w.runtimes, Until: startAt.Add(time.Hour), OnDelivery: collect}).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	moved := w.cloud.Clock.Now().Sub(startAt)
	if len(keys) != 1 || keys[0] != "in-10-min" || st.Left != 1 || st.ClockMoves != 1 || moved < 10*time.Minute || moved > 11*time.Minute {
		t.Fatalf("Until in an hour: delivered %v, stats %+v, clock moved by %v", keys, st, moved)
	}
}

// The Kickoff runs on the first runtime, and Run waits for it: what it leaves
// on the queue while it runs is delivered, to the other runtime at once.
func TestTriggerKickoffAndMessagesSentWhileItRuns(t *testing.T) {
	w := newTriggerWorld(t, 2)
	var deliveries []cloudsim.Delivery
	tr := &cloudsim.Trigger{Cloud: w.cloud, Runtimes: w.runtimes, Kickoff: []byte(`{"op":"ok","key":"kickoff","ms":600}`),
		OnDelivery: func(d cloudsim.Delivery) { deliveries = append(deliveries, d) }}
	go func() {
		time.Sleep(100 * time.Millisecond)
		w.send(t, fnCommand{Op: "ok", Key: "early"}, 0)
	}()
	if _, err := tr.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 2 {
		t.Fatalf("%d deliveries, want the kickoff and the message sent during it", len(deliveries))
	}
	var kickoff, early cloudsim.Delivery
	for _, d := range deliveries {
		if d.Kickoff {
			kickoff = d
		} else {
			early = d
		}
	}
	if r := reply(t, kickoff); r.Key != "kickoff" || r.Events != 0 || kickoff.Runtime != 0 {
		t.Errorf("kickoff: %+v on runtime %d", r, kickoff.Runtime)
	}
	if r := reply(t, early); r.Key != "early" || early.Runtime != 1 || !early.Finished.Before(kickoff.Finished) {
		t.Errorf("the message sent during the kickoff: %+v on runtime %d, done before the kickoff %v", r, early.Runtime, early.Finished.Before(kickoff.Finished))
	}
}
