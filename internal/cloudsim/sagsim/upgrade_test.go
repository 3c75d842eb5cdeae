package sagsim_test

import (
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// versions returns the Status and each device's SoftwareVersion as Attribute shows them.
func (e *env) versions(g fleet.Gateway) (status string, versions []string) {
	e.t.Helper()
	a := e.attribute(g)
	for _, d := range a.Devices.Device {
		versions = append(versions, d.SoftwareVersion)
	}
	return a.Status, versions
}

func (e *env) wantState(g fleet.Gateway, status string, versions ...string) {
	e.t.Helper()
	gotStatus, got := e.versions(g)
	if gotStatus != status || len(got) != len(versions) {
		e.t.Fatalf("%s: Attribute says %s %v, want %s %v", g.SmartAGID, gotStatus, got, status, versions)
	}
	for i := range got {
		if got[i] != versions[i] {
			e.t.Fatalf("%s: Attribute says %s %v, want %s %v", g.SmartAGID, gotStatus, got, status, versions)
		}
	}
	if l := e.listed(g); l.Status != status || l.SoftwareVersion != versions[0] {
		e.t.Fatalf("%s: the list says %s %s, want %s %s", g.SmartAGID, l.Status, l.SoftwareVersion, status, versions[0])
	}
}

func TestUpgradeLifeCycle(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseOutdated)
	old := g.Devices[0].SoftwareVersion

	resp, err := e.update(g, "", fleet.NewestDevice, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.RequestId == "" {
		t.Error("accepted update without a RequestId")
	}
	e.wantState(g, "Offline", old) // rebooting: offline, still reporting the old version

	_, err = e.update(g, "", fleet.NewestDevice, "")
	wantError(t, err, 403, "SmartAccessGatewayNotOnline")

	e.clock.Advance(10*time.Minute - time.Second)
	e.wantState(g, "Offline", old)
	e.clock.Advance(time.Second)
	e.wantState(g, "Active", fleet.NewestDevice)

	_, err = e.update(g, "Device", fleet.NewestDevice, "")
	wantError(t, err, 403, "VersionTooOld")

	if n := e.sim.Count("UpdateSmartAccessGatewayVersion", g.SmartAGID); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
	if n := e.sim.Applied(g.SmartAGID); n != 1 {
		t.Errorf("Applied = %d, want 1", n)
	}
	var updates []sagsim.Call
	for _, c := range e.sim.Calls() {
		if c.Action == "UpdateSmartAccessGatewayVersion" {
			updates = append(updates, c)
		}
	}
	first := updates[0]
	if !first.Applied || first.HTTPStatus != 200 || first.Code != "" || first.VersionType != "Device" ||
		first.VersionCode != fleet.NewestDevice || first.Region != g.RegionID || first.RequestID != resp.RequestId {
		t.Errorf("accepted update logged as %+v", first)
	}
	if updates[1].Applied || updates[1].Code != "SmartAccessGatewayNotOnline" || updates[2].Code != "VersionTooOld" {
		t.Errorf("refused updates logged as %+v", updates[1:])
	}
}

func TestUpgradeTimeOptionAndBehaviorMinutes(t *testing.T) {
	f := loadDemo(t)
	var slow, normal fleet.Gateway
	for i, g := range f.Gateways {
		if g.Case != fleet.CaseOutdated || g.HardwareVersion != "sag-1000" {
			continue
		}
		if slow.SmartAGID == "" {
			f.Gateways[i].Behavior.UpgradeMinutes = 45
			slow = f.Gateways[i]
		} else {
			normal = g
			break
		}
	}
	e := newEnvWith(t, f, sagsim.Options{UpgradeTime: 20 * time.Minute})
	for _, g := range []fleet.Gateway{slow, normal} {
		if _, err := e.update(g, "", fleet.NewestDevice, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(20 * time.Minute)
	e.wantState(normal, "Active", fleet.NewestDevice)
	e.wantState(slow, "Offline", slow.Devices[0].SoftwareVersion)
	e.clock.Advance(25 * time.Minute)
	e.wantState(slow, "Active", fleet.NewestDevice)
}

func TestUpgradeThatReverts(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseReverts)
	old := g.Devices[0].SoftwareVersion
	if _, err := e.update(g, "", fleet.NewestDevice, ""); err != nil {
		t.Fatal(err)
	}
	e.wantState(g, "Offline", old)
	e.clock.Advance(10 * time.Minute)
	e.wantState(g, "Active", old)
	if e.sim.Applied(g.SmartAGID) != 1 {
		t.Error("the reverted update is not counted as applied")
	}
}

func TestUpgradeThatIsLost(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseLost)
	old := g.Devices[0].SoftwareVersion
	if _, err := e.update(g, "", fleet.NewestDevice, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(48 * time.Hour)
	e.wantState(g, "Offline", old)
	st, _ := e.sim.Gateway(g.SmartAGID)
	if !st.Devices[0].Lost || st.Devices[0].Rebooting {
		t.Errorf("state %+v, want the device lost", st)
	}
	_, err := e.update(g, "", fleet.NewestDevice, "")
	wantError(t, err, 403, "SmartAccessGatewayNotOnline")
}

func TestHAPairUpgradedOneDeviceAtATimeStaysActive(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseHAPair)
	master, backup := g.Devices[0], g.Devices[1]
	old := master.SoftwareVersion

	if _, err := e.update(g, "Device", fleet.NewestDevice, backup.SerialNumber); err != nil {
		t.Fatal(err)
	}
	e.wantState(g, "Active", old, old)
	st, _ := e.sim.Gateway(g.SmartAGID)
	if st.Devices[0].Rebooting || !st.Devices[1].Rebooting || st.Devices[1].UpgradingTo != fleet.NewestDevice {
		t.Errorf("after updating the backup: %+v", st)
	}
	_, err := e.update(g, "Device", fleet.NewestDevice, backup.SerialNumber)
	wantError(t, err, 403, "SmartAccessGatewayNotOnline")

	e.clock.Advance(10 * time.Minute)
	e.wantState(g, "Active", old, fleet.NewestDevice)
	if l := e.listed(g); l.BackupSoftwareVersion != fleet.NewestDevice {
		t.Errorf("BackupSoftwareVersion %q", l.BackupSoftwareVersion)
	}

	if _, err := e.update(g, "Device", fleet.NewestDevice, master.SerialNumber); err != nil {
		t.Fatal(err)
	}
	a := e.attribute(g)
	if a.Status != "Active" || a.TrafficMasterSn != backup.SerialNumber {
		t.Errorf("while the master reboots: Status %s TrafficMasterSn %s, want Active on %s", a.Status, a.TrafficMasterSn, backup.SerialNumber)
	}
	e.clock.Advance(10 * time.Minute)
	e.wantState(g, "Active", fleet.NewestDevice, fleet.NewestDevice)
	if n := e.sim.Applied(g.SmartAGID); n != 2 {
		t.Errorf("Applied = %d, want 2", n)
	}
}

func TestHAPairUpgradedAsAWholeGoesOffline(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseHAPair)
	old := g.Devices[0].SoftwareVersion
	if _, err := e.update(g, "", fleet.NewestDevice, ""); err != nil {
		t.Fatal(err)
	}
	e.wantState(g, "Offline", old, old)
	e.clock.Advance(10 * time.Minute)
	e.wantState(g, "Active", fleet.NewestDevice, fleet.NewestDevice)
}

func TestDpiUpgrade(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseDpiOutdated)
	dpi := func() string {
		t.Helper()
		a := e.attribute(g)
		if a.Status != "Active" || a.Devices.Device[0].SoftwareVersion != g.Devices[0].SoftwareVersion {
			t.Fatalf("a Dpi update touched the device: %s %+v", a.Status, a.Devices.Device)
		}
		return a.Devices.Device[0].DpiSignatureDbVersion
	}
	if _, err := e.update(g, "Dpi", fleet.NewestDpi, ""); err != nil {
		t.Fatal(err)
	}
	if v := dpi(); v != g.Devices[0].DpiSignatureDbVersion {
		t.Errorf("DPI %s at once, want the old %s until the upgrade is done", v, g.Devices[0].DpiSignatureDbVersion)
	}
	e.clock.Advance(2 * time.Minute)
	if v := dpi(); v != fleet.NewestDpi {
		t.Errorf("DPI %s after the upgrade time, want %s", v, fleet.NewestDpi)
	}
	_, err := e.update(g, "Dpi", fleet.NewestDpi, "")
	wantError(t, err, 403, "VersionTooOld")
	if calls := e.sim.Calls(); calls[0].VersionType != "Dpi" || !calls[0].Applied {
		t.Errorf("Dpi update logged as %+v", calls[0])
	}
}

func TestExpiryFollowsTheClock(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseOutdated)
	e.clock.Set(g.EndTime)
	_, err := e.update(g, "", fleet.NewestDevice, "")
	wantError(t, err, 500, "SmartAccessGatewayInArrears")
}

func TestSetStatus(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseOffline)
	if err := e.sim.SetStatus(g.SmartAGID, "Active"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.update(g, "", fleet.NewestDevice, ""); err != nil {
		t.Errorf("after SetStatus Active: %v", err)
	}
	if e.sim.SetStatus(g.SmartAGID, "Sleeping") == nil || e.sim.SetStatus("sag-nope", "Active") == nil {
		t.Error("SetStatus accepted an unknown status or gateway")
	}
}
