package handler

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
)

type harness struct {
	h    *Handler
	sag  *fakeSAG
	pub  *fakePublisher
	logs *bytes.Buffer
	// invocations numbers the FC request ids, each invocation its own as
	// under FC (a direct invocation's run id comes from it).
	invocations atomic.Int64
}

func newHarness(t *testing.T, sag *fakeSAG, mutate func(*Config)) *harness {
	t.Helper()
	cfg, err := ConfigFromEnv(env(map[string]string{"API_QPS": "1000"}), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	pub := &fakePublisher{}
	logs := &bytes.Buffer{}
	h := &Handler{
		Config: cfg,
		Connect: func(ctx context.Context, inv Invocation) (Cloud, error) {
			return Cloud{SAG: sag, Events: pub}, nil
		},
		Clock: func() time.Time { return testNow },
		Log:   zerolog.New(&syncWriter{w: logs}),
		// The operator's function: these tests send control requests
		// and force directly (authority_test.go tests who may).
		Control: true,
	}
	return &harness{h: h, sag: sag, pub: pub, logs: logs}
}

func (hs *harness) invoke(t *testing.T, payload string) (events.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv := Invocation{RequestID: fmt.Sprintf("req-%d", hs.invocations.Add(1)), Region: "cn-shanghai", AccountID: "123", FunctionName: "sag-upgrade",
		Credentials: Credentials{AccessKeyID: "STS.id", AccessKeySecret: "top-secret", SecurityToken: "CAIStoken"}}
	return hs.h.Invoke(ctx, inv, []byte(payload))
}

func byID(r events.Report) map[string]upgrade.Result {
	m := map[string]upgrade.Result{}
	for _, res := range r.Results {
		m[res.SmartAGID+"/"+string(res.VersionType)] = res
	}
	return m
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type ledgerHarness struct {
	*harness
	ledger *fakeLedger
	queue  *fakeQueue
	clock  *clock.Sim
}

func newLedgerHarness(t *testing.T, sag *fakeSAG) *ledgerHarness {
	// Waves are tested on their own (rollout_test.go): here every gateway is
	// let in.
	hs := newHarness(t, sag, func(c *Config) { c.RolloutCanary = 1000 })
	lh := &ledgerHarness{harness: hs, ledger: newFakeLedger(), queue: &fakeQueue{}, clock: clock.NewSim(testNow)}
	hs.h.Clock = lh.clock.Now
	hs.h.Connect = func(ctx context.Context, inv Invocation) (Cloud, error) {
		return Cloud{SAG: sag, Events: hs.pub, Ledger: lh.ledger, Work: lh.queue}, nil
	}
	return lh
}

// upgradingSAG makes a device reboot when its update is accepted.
func upgradingSAG(gws ...Gateway) *fakeSAG {
	sag := newFakeSAG(gws...)
	sag.offered = catalog()
	sag.onUpdate = func(id, serial string) {
		sag.mu.Lock()
		defer sag.mu.Unlock()
		sag.details[id] = Detail{Status: "Offline", Devices: []Device{{SerialNumber: "sn-" + id, Software: "2.0.8"}}}
	}
	return sag
}

func finishUpgrade(sag *fakeSAG, id, version string) {
	sag.mu.Lock()
	defer sag.mu.Unlock()
	sag.details[id] = Detail{Status: "Active", Devices: []Device{{SerialNumber: "sn-" + id, Software: version}}}
	for i := range sag.gateways {
		if sag.gateways[i].ID == id {
			sag.gateways[i].SoftwareVersion = version
		}
	}
}

// mustInvoke runs one invocation of a one-gateway fleet and returns its result.
func mustInvoke(t *testing.T, lh *ledgerHarness, payload string) upgrade.Result {
	t.Helper()
	report, _ := lh.invoke(t, payload)
	if len(report.Results) != 1 {
		t.Fatalf("%s: %d results, want 1: %+v", payload, len(report.Results), report.Results)
	}
	return report.Results[0]
}
