package smartag_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/smartag"
)

type env struct {
	fleet *fleet.Fleet
	sim   *sagsim.Server
	srv   *httptest.Server
	clock *clock.Sim
	creds auth.Credential
	api   *smartag.API
}

func setup(t *testing.T, opts sagsim.Options) *env {
	t.Helper()
	f, err := fleet.Load("../../testdata/fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeyring(nil)
	clk := clock.NewSim(f.Start)
	opts.Keyring, opts.Clock = keys, clk
	sim := sagsim.New(f, opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	creds := keys.IssueSTS(f.AccountID, time.Hour)
	api, err := smartag.New(smartag.Options{Endpoint: srv.URL, Credentials: handler.Credentials{
		AccessKeyID: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fleet: f, sim: sim, srv: srv, clock: clk, creds: creds, api: api}
}

func (e *env) gateway(t *testing.T, c fleet.Case) handler.Gateway {
	t.Helper()
	for _, g := range e.fleet.Gateways {
		if g.Case == c && (g.HardwareVersion == "sag-1000" || c == fleet.CaseSoftware) {
			gws, _, err := e.api.ListGateways(context.Background(), g.RegionID, handler.ListFilter{IDs: []string{g.SmartAGID}}, 1)
			if err != nil || len(gws) != 1 {
				t.Fatalf("listing %s: %v %v", g.SmartAGID, gws, err)
			}
			return gws[0]
		}
	}
	t.Fatalf("no %s gateway in the demo fleet", c)
	return handler.Gateway{}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestListGatewaysPagesAndMapsFields(t *testing.T) {
	e := setup(t, sagsim.Options{})
	want := 0
	for _, g := range e.fleet.Gateways {
		if g.RegionID == "cn-shanghai" && g.OwnerAccountID == "" {
			want++
		}
	}
	var all []handler.Gateway
	for page := 1; ; page++ {
		gws, total, err := e.api.ListGateways(ctx(t), "cn-shanghai", handler.ListFilter{}, page)
		if err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Fatalf("total %d, want %d", total, want)
		}
		if len(gws) == 0 {
			break
		}
		if len(gws) > handler.PageSize {
			t.Fatalf("page of %d", len(gws))
		}
		all = append(all, gws...)
	}
	if len(all) != want {
		t.Fatalf("%d gateways listed, want %d", len(all), want)
	}
	for _, g := range all {
		src, _ := e.fleet.Gateway(g.ID)
		if g.Region != "cn-shanghai" || g.Status != src.Status || g.Model != src.HardwareVersion || g.CcnID != src.AssociatedCcnID ||
			strings.Join(g.SerialNumbers, ",") != src.SerialNumber() || !g.EndTime.Equal(src.EndTime) {
			t.Fatalf("gateway %s mapped as %+v from %+v", g.ID, g, src)
		}
		if len(src.Devices) > 0 && g.SoftwareVersion != src.Devices[0].SoftwareVersion {
			t.Fatalf("%s: SoftwareVersion %q, want %q", g.ID, g.SoftwareVersion, src.Devices[0].SoftwareVersion)
		}
		if len(src.Devices) == 2 && (!g.HA() || g.BackupSoftwareVersion != src.Devices[1].SoftwareVersion) {
			t.Fatalf("HA pair %s mapped as %+v", g.ID, g)
		}
	}
}

func TestVersionsDevicesAndUpdate(t *testing.T) {
	e := setup(t, sagsim.Options{})
	g := e.gateway(t, fleet.CaseOutdated)
	offered, err := e.api.Versions(ctx(t), g, "", upgrade.VersionDevice)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := e.fleet.Gateway(g.ID)
	if len(offered) != len(e.fleet.Catalogs[src.HardwareVersion].Device) {
		t.Fatalf("%d versions, want the whole catalog", len(offered))
	}
	target, reason := handler.Policy{Channel: "release"}.Choose(g.SoftwareVersion, offered, "", e.clock.Now())
	if reason != "" {
		t.Fatalf("no target: %s", reason)
	}
	reqID, err := e.api.Update(ctx(t), g, "", upgrade.VersionDevice, target.Code)
	if err != nil || reqID == "" {
		t.Fatalf("Update = %q, %v", reqID, err)
	}
	d, err := e.api.Devices(ctx(t), g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(d.Status, "offline") || len(d.Devices) != 1 {
		t.Fatalf("after the update: %+v", d)
	}
	e.clock.Advance(11 * time.Minute)
	d, _ = e.api.Devices(ctx(t), g)
	if d.Status != "Active" || d.Devices[0].Software != target.Code {
		t.Fatalf("after the reboot: %+v", d)
	}
	if n := e.sim.Applied(g.ID); n != 1 {
		t.Fatalf("%d upgrades applied", n)
	}
}

func TestHAPairDevices(t *testing.T) {
	e := setup(t, sagsim.Options{})
	g := e.gateway(t, fleet.CaseHAPair)
	d, err := e.api.Devices(ctx(t), g)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Devices) != 2 || d.MasterSN == "" || !slices.ContainsFunc(d.Devices, func(x handler.Device) bool { return x.SerialNumber == d.MasterSN }) {
		t.Fatalf("HA detail %+v", d)
	}
	standby := d.Devices[0].SerialNumber
	if standby == d.MasterSN {
		standby = d.Devices[1].SerialNumber
	}
	if _, err := e.api.Update(ctx(t), g, standby, upgrade.VersionDevice, fleet.NewestDevice); err != nil {
		t.Fatal(err)
	}
	d, _ = e.api.Devices(ctx(t), g)
	if d.Status != "Active" {
		t.Fatalf("an HA pair upgrading one device must stay Active, got %s", d.Status)
	}
}

// Every documented refusal arrives as an APIError with the SAG code.
func TestErrorsCarryTheSAGCode(t *testing.T) {
	e := setup(t, sagsim.Options{})
	cases := map[fleet.Case]string{
		fleet.CaseOffline:        "SmartAccessGatewayNotOnline",
		fleet.CaseNotBoundCCN:    "NotBoundCCN",
		fleet.CaseArrears:        "SmartAccessGatewayInArrears",
		fleet.CaseReseller:       "PermissionError",
		fleet.CaseUnconfirmed:    "GetSmartAccessGatewayStateError",
		fleet.CaseVersionUnknown: "GetSmartAccessGatewayVersionError",
		fleet.CaseUpToDate:       "VersionTooOld",
	}
	for c, code := range cases {
		g := e.gateway(t, c)
		_, err := e.api.Update(ctx(t), g, "", upgrade.VersionDevice, fleet.NewestDevice)
		var ae *handler.APIError
		if !errors.As(err, &ae) || ae.Code != code || ae.Status == 0 || ae.RequestID == "" || ae.Action != "UpdateSmartAccessGatewayVersion" {
			t.Errorf("%s: err = %#v, want code %s", c, err, code)
		}
	}
	g := e.gateway(t, fleet.CaseSoftware)
	_, err := e.api.Versions(ctx(t), g, "", upgrade.VersionDevice)
	var ae *handler.APIError
	if !errors.As(err, &ae) || ae.Code != "VersionNotExist" {
		t.Errorf("software instance versions: %v", err)
	}
}

func TestTransportFailures(t *testing.T) {
	e := setup(t, sagsim.Options{})
	g := e.gateway(t, fleet.CaseOutdated)

	e.sim.SetFaults(sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.BadGateway}})
	_, err := e.api.Versions(ctx(t), g, "", upgrade.VersionDevice)
	var ae *handler.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "" || strings.Contains(ae.Message, "<html") {
		t.Fatalf("HTML 502: %#v", err)
	}

	e.sim.SetFaults(sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.LostReply}})
	_, err = e.api.Update(ctx(t), g, "", upgrade.VersionDevice, fleet.NewestDevice)
	if !errors.As(err, &ae) || !ae.NoAnswer || ae.NotSent {
		t.Fatalf("lost reply: %#v", err)
	}
	if e.sim.Applied(g.ID) != 1 {
		t.Fatal("the lost-reply update was not applied by the emulator")
	}

	e.sim.SetFaults(sagsim.Faults{Rate: 1, Kinds: []sagsim.FaultKind{sagsim.Slow}, SlowDelay: 3 * time.Second})
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = e.api.Versions(short, g, "", upgrade.VersionDevice)
	if !errors.As(err, &ae) || !ae.NoAnswer {
		t.Fatalf("a call past the context's deadline: %#v", err)
	}

	e.sim.SetFaults(sagsim.Faults{})
	e.srv.Close()
	_, err = e.api.Versions(ctx(t), g, "", upgrade.VersionDevice)
	if !errors.As(err, &ae) || !ae.NotSent {
		t.Fatalf("connection refused: %#v", err)
	}
}

// The SDK quotes the string to sign, with the token, in SignatureDoesNotMatch.
// Nothing the adapter returns may carry the secret or the token.
func TestErrorsNeverCarrySecrets(t *testing.T) {
	e := setup(t, sagsim.Options{})
	g := e.gateway(t, fleet.CaseOutdated)
	wrong, err := smartag.New(smartag.Options{Endpoint: e.srv.URL, Credentials: handler.Credentials{
		AccessKeyID: e.creds.AccessKeyID, AccessKeySecret: "not-the-secret", SecurityToken: e.creds.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Versions(ctx(t), g, "", upgrade.VersionDevice)
	var ae *handler.APIError
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %#v", err)
	}
	for _, s := range []string{e.creds.SecurityToken, e.creds.SecurityToken[:24], "not-the-secret"} {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%#v", err), s) {
			t.Fatalf("the error quotes a secret: %v", err)
		}
	}
	unknown, _ := smartag.New(smartag.Options{Endpoint: e.srv.URL, Credentials: handler.Credentials{AccessKeyID: "LTAI5tnobody", AccessKeySecret: "x"}})
	_, err = unknown.Versions(ctx(t), g, "", upgrade.VersionDevice)
	if !errors.As(err, &ae) || ae.Code != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("unknown key: %#v", err)
	}
}

// One adapter serves many goroutines (the SDK client alone would race).
func TestConcurrentUse(t *testing.T) {
	e := setup(t, sagsim.Options{})
	gws, _, err := e.api.ListGateways(ctx(t), "cn-shanghai", handler.ListFilter{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(gws))
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.api.Devices(ctx(t), g); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := smartag.New(smartag.Options{}); err == nil {
		t.Error("no credentials accepted")
	}
	if _, err := smartag.New(smartag.Options{Endpoint: "127.0.0.1:80", Credentials: handler.Credentials{AccessKeyID: "a", AccessKeySecret: "b"}}); err == nil {
		t.Error("an endpoint without a scheme accepted")
	}
}

// Separate adapters (one per invocation) make their first clients at the
// same moment; the SDK's endpoint table must not race.
func TestAdaptersCreatedConcurrently(t *testing.T) {
	e := setup(t, sagsim.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api, err := smartag.New(smartag.Options{Endpoint: e.srv.URL, Credentials: handler.Credentials{
				AccessKeyID: e.creds.AccessKeyID, AccessKeySecret: e.creds.AccessKeySecret, SecurityToken: e.creds.SecurityToken}})
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := api.ListGateways(ctx(t), "ap-southeast-1", handler.ListFilter{}, 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// An adapter replaced after a credential change must not keep its clients'
// connections open for the life of the instance: Close closes them.
func TestCloseClosesIdleConnections(t *testing.T) {
	e := setup(t, sagsim.Options{})
	srv := httptest.NewUnstartedServer(e.sim)
	openConns := cloudsim.CountConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	api, err := smartag.New(smartag.Options{Endpoint: srv.URL, Credentials: handler.Credentials{
		AccessKeyID: e.creds.AccessKeyID, AccessKeySecret: e.creds.AccessKeySecret, SecurityToken: e.creds.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	gws, _, err := api.ListGateways(ctx(t), "cn-shanghai", handler.ListFilter{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, g := range gws[:8] {
		wg.Go(func() {
			if _, err := api.Devices(ctx(t), g); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if openConns() == 0 {
		t.Fatal("no connection kept alive after the calls: nothing to close")
	}
	api.Close()
	for deadline := time.Now().Add(10 * time.Second); openConns() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close", openConns())
		}
	}
	// Closed is not broken: the next call opens a connection.
	if _, err := api.Devices(ctx(t), gws[0]); err != nil {
		t.Fatalf("a call after Close: %v", err)
	}
}
