package sagsim_test

import (
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// Every documented error of UpdateSmartAccessGatewayVersion, each produced
// by the state of a demo-fleet gateway, and none of them starting an upgrade.
func TestUpdateErrorsFromGatewayState(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	otherRegion := func(g fleet.Gateway) fleet.Gateway {
		for _, r := range e.fleet.Regions {
			if r != g.RegionID {
				g.RegionID = r
				return g
			}
		}
		t.Fatal("the demo fleet has one region")
		return g
	}
	outdated := e.byCase(fleet.CaseOutdated)
	cases := []struct {
		name     string
		gw       fleet.Gateway
		vt, code string
		sn       string
		status   int
		want     string
	}{
		{"unknown id", fleet.Gateway{SmartAGID: "sag-doesnotexist1", RegionID: "cn-shanghai"}, "", fleet.NewestDevice, "", 403, "InvalidId.SMARTAG"},
		{"asked in the wrong region", otherRegion(outdated), "", fleet.NewestDevice, "", 403, "InvalidId.SMARTAG"},
		{string(fleet.CaseOtherAccount), e.byCase(fleet.CaseOtherAccount), "", fleet.NewestDevice, "", 403, "Forbidden"},
		{string(fleet.CaseReseller), e.byCase(fleet.CaseReseller), "", fleet.NewestDevice, "", 500, "PermissionError"},
		{string(fleet.CaseNotActivated), e.byCase(fleet.CaseNotActivated), "", fleet.NewestDevice, "", 500, "SmartAccessGatewayNotActivated"},
		{string(fleet.CaseArrears), e.byCase(fleet.CaseArrears), "", fleet.NewestDevice, "", 500, "SmartAccessGatewayInArrears"},
		{string(fleet.CaseExpired), e.byCase(fleet.CaseExpired), "", fleet.NewestDevice, "", 500, "SmartAccessGatewayInArrears"},
		{string(fleet.CaseNotBoundCCN), e.byCase(fleet.CaseNotBoundCCN), "", fleet.NewestDevice, "", 403, "NotBoundCCN"},
		{string(fleet.CaseUnconfirmed), e.byCase(fleet.CaseUnconfirmed), "", fleet.NewestDevice, "", 403, "GetSmartAccessGatewayStateError"},
		{string(fleet.CaseOffline), e.byCase(fleet.CaseOffline), "", fleet.NewestDevice, "", 403, "SmartAccessGatewayNotOnline"},
		{string(fleet.CaseVersionUnknown), e.byCase(fleet.CaseVersionUnknown), "", fleet.NewestDevice, "", 403, "GetSmartAccessGatewayVersionError"},
		{string(fleet.CaseSoftware), e.byCase(fleet.CaseSoftware), "", fleet.NewestDevice, "", 400, "VersionNotExist"},
		{"version not in the catalog", outdated, "Device", "9.9.9", "", 400, "VersionNotExist"},
		{"Dpi version not in the catalog", outdated, "Dpi", fleet.NewestDevice, "", 400, "VersionNotExist"},
		{"Dpi on a model without DPI releases", e.find(func(g fleet.Gateway) bool { return g.HardwareVersion == "sag-vcpe" }), "Dpi", fleet.NewestDpi, "", 400, "VersionNotExist"},
		{"already on the version", e.byCase(fleet.CaseUpToDate), "", fleet.NewestDevice, "", 403, "VersionTooOld"},
		{"older than the device", e.byCase(fleet.CaseUpToDate), "Device", "2.0.8", "", 403, "VersionTooOld"},
		{"Dpi already current", e.byCase(fleet.CaseOutdated), "Dpi", fleet.NewestDpi, "", 403, "VersionTooOld"},
		{"beta older than the device", e.byCase(fleet.CaseBetaAhead), "", "2.2.0", "", 403, "VersionTooOld"},
		{"serial number of no device of the gateway", outdated, "", fleet.NewestDevice, "sagenotmine01", 400, "InvalidParameter"},
		{"unknown VersionType", outdated, "Firmware", fleet.NewestDevice, "", 400, "InvalidParameter"},
		{"no VersionCode", outdated, "", "", "", 400, "MissingParameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := e.sim.Gateway(c.gw.SmartAGID)
			resp, err := e.update(c.gw, c.vt, c.code, c.sn)
			if err == nil {
				t.Fatalf("accepted (RequestId %s), want %s", resp.RequestId, c.want)
			}
			wantError(t, err, c.status, c.want)
			if n := e.sim.Applied(c.gw.SmartAGID); n != 0 {
				t.Errorf("a refused update applied %d times", n)
			}
			after, _ := e.sim.Gateway(c.gw.SmartAGID)
			if after.Status != before.Status || len(after.Devices) != len(before.Devices) ||
				(len(after.Devices) > 0 && after.Devices[0] != before.Devices[0]) {
				t.Errorf("a refused update changed the gateway: %+v -> %+v", before, after)
			}
		})
	}
	// Each refused call is in the log with its answer.
	calls := e.sim.Calls()
	if len(calls) != len(cases) {
		t.Fatalf("%d calls logged, want %d", len(calls), len(cases))
	}
	for i, c := range calls {
		if c.Action != "UpdateSmartAccessGatewayVersion" || c.Code != cases[i].want || c.HTTPStatus != cases[i].status ||
			c.SmartAGID != cases[i].gw.SmartAGID || c.Applied {
			t.Errorf("call %d logged as %+v, want %s %d", i, c, cases[i].want, cases[i].status)
		}
	}
}

func TestVersionsErrors(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	outdated := e.byCase(fleet.CaseOutdated)
	wrongRegion := outdated
	wrongRegion.RegionID = "cn-hongkong"
	cases := []struct {
		name   string
		gw     fleet.Gateway
		vt, sn string
		status int
		want   string
	}{
		{"unknown id", fleet.Gateway{SmartAGID: "sag-doesnotexist1", RegionID: "cn-shanghai"}, "", "", 403, "InvalidId.SMARTAG"},
		{"asked in another SAG region", wrongRegion, "", "", 403, "InvalidId.SMARTAG"},
		{string(fleet.CaseOtherAccount), e.byCase(fleet.CaseOtherAccount), "", "", 403, "Forbidden"},
		{string(fleet.CaseSoftware), e.byCase(fleet.CaseSoftware), "", "", 400, "VersionNotExist"},
		{"Dpi on sag-vcpe", e.find(func(g fleet.Gateway) bool { return g.HardwareVersion == "sag-vcpe" }), "Dpi", "", 400, "VersionNotExist"},
		{"SmartAGSn of no device of the gateway", outdated, "", "sagenotmine01", 400, "InvalidParameter"},
		{"unknown VersionType", outdated, "Firmware", "", 400, "InvalidParameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := smartag.CreateDescribeSmartAccessGatewayVersionsRequest()
			req.SmartAGId, req.VersionType, req.SmartAGSn = c.gw.SmartAGID, c.vt, c.sn
			_, err := e.client(c.gw.RegionID).DescribeSmartAccessGatewayVersions(req)
			wantError(t, err, c.status, c.want)
		})
	}
	// A gateway's own SN is fine.
	req := smartag.CreateDescribeSmartAccessGatewayVersionsRequest()
	req.SmartAGId, req.SmartAGSn = outdated.SmartAGID, outdated.Devices[0].SerialNumber
	if _, err := e.client(outdated.RegionID).DescribeSmartAccessGatewayVersions(req); err != nil {
		t.Errorf("SmartAGSn of the gateway's device: %v", err)
	}
}

func TestAttributeErrors(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.SmartAGId = "sag-doesnotexist1"
	_, err := e.client("cn-shanghai").DescribeSmartAccessGatewayAttribute(req)
	wantError(t, err, 403, "InvalidId.SMARTAG")
	_, err = e.client("cn-shanghai").DescribeSmartAccessGatewayAttribute(smartag.CreateDescribeSmartAccessGatewayAttributeRequest())
	wantError(t, err, 400, "MissingParameter")
}
