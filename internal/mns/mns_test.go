package mns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/mns"
)

type env struct {
	sim   *mnssim.Server
	srv   *httptest.Server
	creds handler.Credentials
}

func setup(t *testing.T) *env {
	t.Helper()
	keys := auth.NewKeyring(nil)
	sim := mnssim.New(mnssim.Options{Keyring: keys, AccountID: "1234567890123456", Region: "cn-shanghai"})
	if err := sim.CreateTopic("sag-outcomes"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := keys.IssueSTS("1234567890123456", time.Hour)
	return &env{sim: sim, srv: srv, creds: handler.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}}
}

func (e *env) topic(t *testing.T, endpoint string) *mns.Topic {
	t.Helper()
	c, err := mns.New(mns.Options{Endpoint: endpoint, Credentials: e.creds})
	if err != nil {
		t.Fatal(err)
	}
	return c.Topic("sag-outcomes")
}

func event() events.CloudEvent {
	return events.OutcomeEvent("acs:fc:cn-shanghai:123:functions/sag-upgrade", events.RunInfo{RunID: "run-1", Trigger: events.TriggerTimer},
		upgrade.Result{SmartAGID: "sag-abc", RegionID: "cn-shanghai", VersionType: upgrade.VersionDevice, FromVersion: "2.0.8",
			ToVersion: "2.3.1", Outcome: upgrade.OutcomeRequested, RequestID: "REQ-1"}, time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC))
}

func TestPublishReachesTheTopicAsTheEventJSON(t *testing.T) {
	e := setup(t)
	var got []byte
	var mu sync.Mutex
	if err := e.sim.Subscribe("sag-outcomes", mnssim.Subscription{Name: "only-requested", FilterTag: "requested",
		Callback: func(p []byte) { mu.Lock(); got = p; mu.Unlock() }}); err != nil {
		t.Fatal(err)
	}
	// The endpoints an operator may give: the emulator's own URL, with or
	// without a trailing slash, and a host name.
	for _, endpoint := range []string{e.srv.URL, e.srv.URL + "/", strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)} {
		if err := e.topic(t, endpoint).Publish(context.Background(), event()); err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
	}
	published := e.sim.Published("sag-outcomes")
	if len(published) != 3 {
		t.Fatalf("%d messages published, want 3", len(published))
	}
	var ev events.CloudEvent
	if err := json.Unmarshal([]byte(published[0].Body), &ev); err != nil {
		t.Fatal(err)
	}
	want := event()
	if ev.ID != want.ID || ev.Type != "sag.upgrade.requested" || ev.Subject != "sag-abc" || ev.SpecVersion != "1.0" ||
		!strings.Contains(string(ev.Data), `"toVersion":"2.3.1"`) || published[0].Tag != "requested" {
		t.Fatalf("published %+v as %+v", published[0], ev)
	}
	e.sim.Flush()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(string(got), "sag-abc") {
		t.Fatalf("the filtered subscription got %q", got)
	}
}

func TestErrorsSayWhetherToRetry(t *testing.T) {
	e := setup(t)
	topic := e.topic(t, e.srv.URL)
	cases := []struct {
		kind      mnssim.FaultKind
		temporary bool
	}{
		{mnssim.FaultQpsLimitExceeded, true},
		{mnssim.FaultTooManyRequests, true},
		{mnssim.FaultInternalError, true},
		{mnssim.FaultBadGateway, true},
		{mnssim.FaultCutResponse, true},
	}
	for _, c := range cases {
		e.sim.FailNext("PublishMessage", 1, c.kind)
		err := topic.Publish(context.Background(), event())
		var me *mns.Error
		if !errors.As(err, &me) || me.Temporary() != c.temporary {
			t.Errorf("%v: err = %v, temporary want %v", c.kind, err, c.temporary)
		}
	}
	c, _ := mns.New(mns.Options{Endpoint: e.srv.URL, Credentials: e.creds})
	err := c.Topic("no-such-topic").Publish(context.Background(), event())
	var me *mns.Error
	if !errors.As(err, &me) || me.Temporary() || !strings.Contains(err.Error(), "TopicNotExist") {
		t.Errorf("unknown topic: %v", err)
	}
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	e := setup(t)
	creds := e.creds
	creds.AccessKeySecret = "not-the-secret"
	c, err := mns.New(mns.Options{Endpoint: e.srv.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Topic("sag-outcomes").Publish(context.Background(), event())
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, s := range []string{"not-the-secret", e.creds.SecurityToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes a secret: %v", err)
		}
	}
}

func TestPublishEndsAtTheDeadline(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	c, err := mns.New(mns.Options{Endpoint: srv.URL, Credentials: handler.Credentials{AccessKeyID: "id", AccessKeySecret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = c.Topic("t").Publish(ctx, event())
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want the publish abandoned at the deadline", err)
	}
}

func TestNewRejectsWhatTheSDKWouldPanicOn(t *testing.T) {
	creds := handler.Credentials{AccessKeyID: "id", AccessKeySecret: "s"}
	for _, endpoint := range []string{"", "127.0.0.1:8081", "ftp://x", "http://"} {
		if _, err := mns.New(mns.Options{Endpoint: endpoint, Credentials: creds}); err == nil {
			t.Errorf("endpoint %q accepted", endpoint)
		}
	}
	if _, err := mns.New(mns.Options{Endpoint: "http://127.0.0.1:1"}); err == nil {
		t.Error("empty credentials accepted")
	}
	if _, err := mns.New(mns.Options{Endpoint: "https://1234567890123456.mns.cn-shanghai-internal.aliyuncs.com", Credentials: creds}); err != nil {
		t.Errorf("a regional endpoint: %v", err)
	}
}

func TestTag(t *testing.T) {
	for typ, want := range map[string]string{
		"sag.upgrade.requested":              "requested",
		"sag.upgrade.run.completed":          "run.completed",
		"sag.upgrade.rollout.breaker_opened": "rollout.breaker_",
	} {
		if got := mns.Tag(typ); got != want {
			t.Errorf("Tag(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestQueueSendBatchesWithPriorityAndDelay(t *testing.T) {
	e := setup(t)
	if err := e.sim.CreateQueue("work", mnssim.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := mns.New(mns.Options{Endpoint: e.srv.URL, Credentials: e.creds})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []handler.QueueMessage
	for i := range 20 {
		msgs = append(msgs, handler.QueueMessage{Body: fmt.Sprintf(`{"kind":"verify","correlationId":"%d"}`, i), Delay: 11 * time.Minute})
	}
	if err := c.Queue("work").Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	stored := e.sim.Messages("work")
	if len(stored) != 20 || e.sim.Calls()["BatchSendMessage"] != 2 {
		t.Fatalf("%d messages in %d calls, want 20 in 2", len(stored), e.sim.Calls()["BatchSendMessage"])
	}
	for _, m := range stored {
		if m.Priority != 8 || m.Visible || m.NextVisibleTime.Sub(m.EnqueueTime) != 11*time.Minute || !strings.HasPrefix(m.Body, `{"kind":"verify"`) {
			t.Fatalf("stored %+v", m)
		}
	}
	err = c.Queue("no-such-queue").Send(context.Background(), msgs[:1])
	var me *mns.Error
	if !errors.As(err, &me) || me.Temporary() {
		t.Fatalf("unknown queue: %v", err)
	}
}
