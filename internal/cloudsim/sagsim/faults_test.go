package sagsim_test

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

const updateAction = "UpdateSmartAccessGatewayVersion"

// outdated returns n outdated sag-1000 gateways.
func (e *env) outdated(n int) []fleet.Gateway {
	e.t.Helper()
	var gws []fleet.Gateway
	for _, g := range e.fleet.Gateways {
		if g.Case == fleet.CaseOutdated && g.HardwareVersion == "sag-1000" && len(gws) < n {
			gws = append(gws, g)
		}
	}
	if len(gws) < n {
		e.t.Fatalf("the fleet has %d outdated sag-1000 gateways, want %d", len(gws), n)
	}
	return gws
}

// untouched fails the test if an update reached the gateway.
func (e *env) untouched(g fleet.Gateway) {
	e.t.Helper()
	st, _ := e.sim.Gateway(g.SmartAGID)
	if e.sim.Applied(g.SmartAGID) != 0 || st.Status != "Active" || st.Devices[0].Rebooting ||
		st.Devices[0].SoftwareVersion != g.Devices[0].SoftwareVersion {
		e.t.Errorf("%s was changed: applied %d, state %+v", g.SmartAGID, e.sim.Applied(g.SmartAGID), st)
	}
}

// eventually waits (up to 5 s) for cond, for effects of calls whose client
// has already given up.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func TestThrottlingRefusesCallsWithoutEffect(t *testing.T) {
	// One update a second (burst 1) against eight at once: most are refused.
	e := newEnv(t, sagsim.Options{QPS: map[string]float64{updateAction: 1, "DescribeRegions": 0}, DefaultQPS: 0.5})
	gws := e.outdated(8)
	errs := make([]error, len(gws))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, g := range gws {
		cli := e.newClient(g.RegionID, e.cred, nil) // one client per goroutine: the SDK's is not race-free
		wg.Go(func() {
			req := smartag.CreateUpdateSmartAccessGatewayVersionRequest()
			req.SmartAGId, req.VersionCode = g.SmartAGID, fleet.NewestDevice
			<-start
			_, errs[i] = cli.UpdateSmartAccessGatewayVersion(req)
		})
	}
	close(start)
	wg.Wait()

	throttled, accepted := 0, 0
	for i, err := range errs {
		if err == nil {
			accepted++
			continue
		}
		se := wantError(t, err, 400, "Throttling.User")
		if se.Message() != "Request was denied due to user flow control." {
			t.Errorf("message %q", se.Message())
		}
		throttled++
		e.untouched(gws[i])
	}
	if throttled == 0 || accepted == 0 {
		t.Fatalf("%d accepted, %d throttled: want both", accepted, throttled)
	}
	if e.sim.Throttled() != throttled {
		t.Errorf("Throttled() = %d, clients saw %d", e.sim.Throttled(), throttled)
	}

	// DefaultQPS limits the actions not named; a named 0 is unlimited.
	for range 5 {
		if err := regionsCall(e.client("cn-shanghai")); err != nil {
			t.Fatalf("DescribeRegions is unlimited: %v", err)
		}
	}
	before := e.sim.Throttled()
	var codes []string
	for range 3 {
		req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
		req.SmartAGId = gws[0].SmartAGID
		if _, err := e.client(gws[0].RegionID).DescribeSmartAccessGatewayAttribute(req); err != nil {
			codes = append(codes, serverError(t, err).ErrorCode())
		}
	}
	if len(codes) == 0 || e.sim.Throttled()-before != len(codes) || codes[0] != "Throttling.User" {
		t.Errorf("three quick Attribute calls at DefaultQPS 0.5: refused with %v", codes)
	}
}

// observe makes 12 Attribute calls on each of 4 gateways, one goroutine per
// gateway, and returns the fault of each (gateway, call number) from Calls(),
// checking that each client saw what the log says.
func observe(t *testing.T, faults sagsim.Faults) map[string]sagsim.FaultKind {
	e := newEnv(t, sagsim.Options{Faults: faults})
	gws := e.outdated(4)
	const calls = 12
	seen := make([][]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		cli := e.newClient(g.RegionID, e.cred, nil)
		wg.Go(func() {
			for range calls {
				req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
				req.SmartAGId = g.SmartAGID
				_, err := cli.DescribeSmartAccessGatewayAttribute(req)
				seen[i] = append(seen[i], err)
			}
		})
	}
	wg.Wait()

	got := map[string]sagsim.FaultKind{}
	for _, c := range e.sim.Calls() {
		got[fmt.Sprintf("%s#%d", c.SmartAGID, c.N)] = c.Fault
	}
	for i, g := range gws {
		for n, err := range seen[i] {
			kind := got[fmt.Sprintf("%s#%d", g.SmartAGID, n+1)]
			var se *sdkerrors.ServerError
			isServer := errors.As(err, &se)
			ok := false
			switch kind {
			case "":
				ok = err == nil
			case sagsim.InternalError:
				ok = isServer && se.HttpStatus() == 500 && se.ErrorCode() == "InternalError"
			case sagsim.ServiceUnavailable:
				ok = isServer && se.HttpStatus() == 503 && se.ErrorCode() == "ServiceUnavailable"
			case sagsim.BadGateway:
				ok = isServer && se.HttpStatus() == 502 && se.ErrorCode() == ""
			case sagsim.Drop:
				ok = err != nil && !isServer
			}
			if !ok {
				t.Errorf("%s call %d: the log says fault %q, the client saw %v", g.SmartAGID, n+1, kind, err)
			}
		}
	}
	return got
}

func TestFaultsAreReproducibleForASeed(t *testing.T) {
	faults := sagsim.Faults{Seed: 7, Rate: 0.4,
		Kinds: []sagsim.FaultKind{sagsim.InternalError, sagsim.ServiceUnavailable, sagsim.BadGateway, sagsim.Drop}}
	first := observe(t, faults)
	second := observe(t, faults)
	if !maps.Equal(first, second) {
		t.Errorf("the same seed gave different faults:\n%v\n%v", first, second)
	}
	kinds := map[sagsim.FaultKind]int{}
	for _, k := range first {
		kinds[k]++
	}
	if kinds[""] == 0 || len(kinds) < 3 {
		t.Errorf("faults by kind %v: want some calls clean and several kinds", kinds)
	}
	faults.Seed = 8
	if maps.Equal(first, observe(t, faults)) {
		t.Errorf("seeds 7 and 8 gave the same faults")
	}
}

func TestBadGatewayIsAServerErrorWithoutCode(t *testing.T) {
	e := newEnv(t, sagsim.Options{Faults: sagsim.Faults{Seed: 1, Rate: 1, Kinds: []sagsim.FaultKind{sagsim.BadGateway}}})
	g := e.outdated(1)[0]
	_, err := e.update(g, "", fleet.NewestDevice, "")
	se := serverError(t, err)
	if se.HttpStatus() != 502 || se.ErrorCode() != "" || !strings.Contains(se.Message(), "502 Bad Gateway") {
		t.Errorf("got %d %q %q", se.HttpStatus(), se.ErrorCode(), se.Message())
	}
	e.untouched(g)
	if c := e.sim.Calls()[0]; c.Fault != sagsim.BadGateway || c.HTTPStatus != 502 || c.Code != "" {
		t.Errorf("logged as %+v", c)
	}
}

func TestInjectedServerErrorsHaveNoEffect(t *testing.T) {
	for _, c := range []struct {
		kind   sagsim.FaultKind
		status int
	}{{sagsim.InternalError, 500}, {sagsim.ServiceUnavailable, 503}} {
		e := newEnv(t, sagsim.Options{Faults: sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{c.kind}, Actions: []string{updateAction}}})
		g := e.outdated(1)[0]
		_, err := e.update(g, "", fleet.NewestDevice, "")
		wantError(t, err, c.status, string(c.kind))
		e.untouched(g)
		// Faults.Actions spares the other actions.
		e.attribute(g)
	}
}

func TestDropIsATransportErrorBeforeTheCallRuns(t *testing.T) {
	e := newEnv(t, sagsim.Options{Faults: sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.Drop}, Actions: []string{updateAction}}})
	g := e.outdated(1)[0]
	_, err := e.update(g, "", fleet.NewestDevice, "")
	var ue *url.Error
	var se *sdkerrors.ServerError
	if err == nil || errors.As(err, &se) || !errors.As(err, &ue) {
		t.Fatalf("want a transport error (*url.Error), got %T %v", err, err)
	}
	e.untouched(g)
	if c := e.sim.Calls()[0]; c.Fault != sagsim.Drop || c.HTTPStatus != 0 || c.Applied {
		t.Errorf("logged as %+v", c)
	}
}

// The nasty case: the update runs, the client sees an error, a blind retry is
// refused because the device is already rebooting.
func TestLostReplyAppliesTheUpdateTheClientSawFail(t *testing.T) {
	e := newEnv(t, sagsim.Options{Faults: sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.LostReply}, Actions: []string{updateAction}}})
	g := e.outdated(1)[0]
	_, err := e.update(g, "", fleet.NewestDevice, "")
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("want a transport error (*url.Error), got %T %v", err, err)
	}
	if n := e.sim.Applied(g.SmartAGID); n != 1 {
		t.Fatalf("Applied = %d, want 1", n)
	}
	if c := e.sim.Calls()[0]; c.Fault != sagsim.LostReply || !c.Applied || c.HTTPStatus != 200 {
		t.Errorf("logged as %+v", c)
	}
	e.sim.SetFaults(sagsim.Faults{})
	_, err = e.update(g, "", fleet.NewestDevice, "")
	wantError(t, err, 403, "SmartAccessGatewayNotOnline")
	e.clock.Advance(10 * time.Minute)
	e.wantState(g, "Active", fleet.NewestDevice)
}

func TestLatencyOutlastingTheClientStillRunsTheCall(t *testing.T) {
	e := newEnv(t, sagsim.Options{Latency: 300 * time.Millisecond, Jitter: 10 * time.Millisecond})
	g := e.outdated(1)[0]
	cli := e.newClient(g.RegionID, e.cred, nil)
	cli.SetReadTimeout(30 * time.Millisecond)
	req := smartag.CreateUpdateSmartAccessGatewayVersionRequest()
	req.SmartAGId, req.VersionCode = g.SmartAGID, fleet.NewestDevice
	_, err := cli.UpdateSmartAccessGatewayVersion(req)
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("want a client timeout, got %T %v", err, err)
	}
	eventually(t, "the update is applied", func() bool { return e.sim.Applied(g.SmartAGID) == 1 })
}

func TestSlowFaultAnswersLate(t *testing.T) {
	e := newEnv(t, sagsim.Options{Faults: sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.Slow}, SlowDelay: 200 * time.Millisecond}})
	g := e.outdated(1)[0]
	hasty := e.newClient(g.RegionID, e.cred, nil)
	hasty.SetReadTimeout(20 * time.Millisecond)
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.SmartAGId = g.SmartAGID
	if _, err := hasty.DescribeSmartAccessGatewayAttribute(req); err == nil {
		t.Error("a 20 ms client got a 200 ms answer")
	}
	if a := e.attribute(g); a.SmartAGId != g.SmartAGID {
		t.Errorf("a patient client got %+v", a)
	}
	eventually(t, "both calls are logged", func() bool { return len(e.sim.Calls()) == 2 })
	for _, c := range e.sim.Calls() {
		if c.Fault != sagsim.Slow || c.HTTPStatus != 200 {
			t.Errorf("logged as %+v", c)
		}
	}
}
