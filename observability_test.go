//go:build !fc

package main

// The observability kit (deploy/observability) against what the function
// really writes: simulated nights in-process, as production composes the
// function (newHandler), with its log lines and published messages kept, and
// every field and value the kit's index, searches, alerts and dashboard
// name, and every tag its notifications filter on, looked for in them.

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/deploy/observability"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/simulation"
)

// logBuffer keeps the lines the function writes; runs write from several
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// observe adds a world's log lines and its outcome topic's tags.
func observe(t *testing.T, o *observability.Observed, logs *logBuffer, s *simulation.Local) {
	t.Helper()
	logs.mu.Lock()
	sc := bufio.NewScanner(bytes.NewReader(logs.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		o.AddLine(sc.Bytes())
	}
	logs.mu.Unlock()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Cloud.MNS.Published(cloudsim.OutcomeTopic) {
		o.AddTag(p.Tag)
	}
}

// nightsWorld starts a fleet's world with the function in-process, its log
// lines kept, on an environment of its own (t.Setenv before).
func nightsWorld(t *testing.T, fleetFile string, days int) (*simulation.Local, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := simulation.StartLocal(fleetFile, simulation.InProcess{NewHandler: newHandler, Getenv: os.LookupEnv, Logs: logs, Days: days})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, logs
}

func invoke(t *testing.T, s *simulation.Local, request string) {
	t.Helper()
	if _, err := s.Invoke([]byte(request)); err != nil {
		t.Fatalf("%s: %v", request, err)
	}
}

func TestObservabilityKitNames(t *testing.T) {
	kit, err := observability.Load()
	if err != nil {
		t.Fatal(err)
	}
	var seen observability.Observed

	// A good release to every gateway at once over two nights: requested,
	// failed, verified, unverified and the other outcomes; an outcome topic
	// down for a run (events kept); an operator's stop and resume, pause and
	// unpause.
	t.Run("demo", func(t *testing.T) {
		t.Setenv("ROLLOUT_CANARY", "10000")
		t.Setenv("LOG_LEVEL", "info")
		s, logs := nightsWorld(t, "testdata/fleets/demo.json", 3)
		start := s.Cloud.Clock.Now()
		for n := range 2 {
			if _, err := s.Night(start.Add(time.Duration(n)*24*time.Hour), nil); err != nil {
				t.Fatal(err)
			}
		}
		s.Cloud.MNS.SetFaults(mnssim.Faults{Seed: 1, Rate: 1, Ops: []string{"PublishMessage"}, Kinds: []mnssim.FaultKind{mnssim.FaultInternalError}})
		invoke(t, s, `{"correlationId":"topic-down"}`)
		s.Cloud.MNS.SetFaults(mnssim.Faults{})
		for _, req := range []string{
			`{"kind":"stop","correlationId":"incident-1","operator":"alice"}`,
			`{"kind":"resume","correlationId":"incident-1","operator":"alice"}`,
			`{"kind":"pause","targetVersion":"` + fleet.NewestDevice + `","operator":"alice"}`,
			`{"kind":"unpause","targetVersion":"` + fleet.NewestDevice + `","operator":"alice"}`,
		} {
			invoke(t, s, req)
		}
		observe(t, &seen, logs, s)
	})

	// A bad release: the breaker opens within the canary; the other models'
	// next waves wait for approval, and an operator approves one and resets
	// the breaker.
	t.Run("bad release", func(t *testing.T) {
		t.Setenv("ROLLOUT_APPROVAL", "manual")
		t.Setenv("LOG_LEVEL", "info")
		s, logs := nightsWorld(t, "testdata/fleets/bad-release.json", 3)
		start := s.Cloud.Clock.Now()
		for n := range 2 {
			if _, err := s.Night(start.Add(time.Duration(n)*24*time.Hour), nil); err != nil {
				t.Fatal(err)
			}
		}
		invoke(t, s, `{"kind":"approve","targetVersion":"`+fleet.NewestVCPE+`","model":"sag-vcpe","wave":1,"operator":"bob"}`)
		invoke(t, s, `{"kind":"reset","versionTypes":["Device"],"targetVersion":"`+fleet.NewestDevice+`","operator":"bob"}`)
		observe(t, &seen, logs, s)
	})
	if t.Failed() {
		return
	}
	for _, p := range kit.Check(seen) {
		t.Error(p)
	}
	if t.Failed() {
		var tags []string
		for tag := range seen.Tags {
			tags = append(tags, tag)
		}
		t.Logf("tags published: %s", strings.Join(tags, " "))
	}
}
