package sagsim

import (
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// gateway is the live state of one SAG instance. The embedded fleet.Gateway
// holds the static attributes; its Devices field is not used after New (the
// live devices are in devices).
type gateway struct {
	fleet.Gateway
	owner   string // account id the gateway belongs to
	devices []*device
}

// device is one box of a gateway.
type device struct {
	sn      string
	version string // firmware running now; the old one while rebooting
	dpi     string // DPI signature database version
	lost    bool   // never came back from an upgrade
	// firmware is the Device upgrade under way: the box reboots until it settles.
	firmware *upgrade
	// signatures is the Dpi upgrade under way: no reboot.
	signatures *upgrade
}

// upgrade is an accepted update, evaluated lazily: nothing runs on a timer,
// every read first settles the upgrades whose time is up.
type upgrade struct {
	to      string
	done    time.Time
	outcome string // fleet.UpgradeOK, UpgradeRevert or UpgradeLost
}

func newGateway(g fleet.Gateway, account string) *gateway {
	gw := &gateway{Gateway: g, owner: account}
	if g.OwnerAccountID != "" {
		gw.owner = g.OwnerAccountID
	}
	for _, d := range g.Devices {
		gw.devices = append(gw.devices, &device{sn: d.SerialNumber, version: d.SoftwareVersion, dpi: d.DpiSignatureDbVersion})
	}
	gw.Gateway.Devices = nil
	gw.Gateway.Behavior.Versions = slices.Clone(g.Behavior.Versions)
	return gw
}

// settle applies every upgrade whose time is up at now. The clock never runs
// backwards, so settling on read is the same as settling on time.
func (g *gateway) settle(now time.Time) {
	for _, d := range g.devices {
		if u := d.firmware; u != nil && !now.Before(u.done) {
			switch u.outcome {
			case fleet.UpgradeOK:
				d.version = u.to
			case fleet.UpgradeLost:
				d.lost = true
			}
			d.firmware = nil
		}
		if u := d.signatures; u != nil && !now.Before(u.done) {
			d.dpi = u.to
			d.signatures = nil
		}
	}
}

// inArrears reports whether the gateway is locked for an overdue payment or
// past its EndTime (a zero EndTime, as in a hand-written fleet, never expires).
func (g *gateway) inArrears(now time.Time) bool {
	return g.Status == "Arrearage" || (!g.EndTime.IsZero() && !g.EndTime.After(now))
}

// up reports whether the device is online (call settle first).
func (d *device) up() bool { return !d.lost && d.firmware == nil }

// status is the live Status: the fleet's status, except that an Active
// gateway whose every device is down (rebooting or lost) shows Offline. So an
// HA pair upgraded one device at a time stays Active on the other device.
func (g *gateway) status() string {
	if g.Status != "Active" || len(g.devices) == 0 {
		return g.Status
	}
	for _, d := range g.devices {
		if d.up() {
			return "Active"
		}
	}
	return "Offline"
}

// master is the device carrying the traffic: the first one that is up, else
// the first one. Nil for a gateway without devices.
func (g *gateway) master() *device {
	for _, d := range g.devices {
		if d.up() {
			return d
		}
	}
	if len(g.devices) > 0 {
		return g.devices[0]
	}
	return nil
}

func (g *gateway) device(sn string) *device {
	for _, d := range g.devices {
		if d.sn == sn {
			return d
		}
	}
	return nil
}

// softwareVersion is the list's SoftwareVersion (first device) and
// BackupSoftwareVersion (second device).
func (g *gateway) softwareVersion(i int) string {
	if i < len(g.devices) {
		return g.devices[i].version
	}
	return ""
}

// start begins an accepted upgrade of the targets at now. A Device upgrade
// reboots each target for the upgrade time and ends as the gateway's
// Behavior says; a Dpi upgrade only replaces the signatures after dpiTime.
func (g *gateway) start(targets []*device, versionType, to string, now time.Time, upgradeTime, dpiTime time.Duration) {
	if versionType == "Dpi" {
		for _, d := range targets {
			d.signatures = &upgrade{to: to, done: now.Add(dpiTime), outcome: fleet.UpgradeOK}
		}
		return
	}
	if m := g.Behavior.UpgradeMinutes; m > 0 {
		upgradeTime = time.Duration(m) * time.Minute
	}
	for _, d := range targets {
		d.firmware = &upgrade{to: to, done: now.Add(upgradeTime), outcome: g.Behavior.Outcome(to)}
	}
}

// GatewayState is what a test can see of a gateway, at the Clock's now.
type GatewayState struct {
	SmartAGID string
	RegionID  string
	Status    string // live: Offline while every device is down
	Devices   []DeviceState
}

// DeviceState is one device of a GatewayState.
type DeviceState struct {
	SerialNumber          string
	SoftwareVersion       string
	DpiSignatureDbVersion string
	Rebooting             bool   // a Device upgrade is under way
	UpgradingTo           string // its target version
	Lost                  bool   // did not come back from an upgrade
}

func (g *gateway) state() GatewayState {
	st := GatewayState{SmartAGID: g.SmartAGID, RegionID: g.RegionID, Status: g.status()}
	for _, d := range g.devices {
		ds := DeviceState{SerialNumber: d.sn, SoftwareVersion: d.version, DpiSignatureDbVersion: d.dpi, Lost: d.lost}
		if d.firmware != nil {
			ds.Rebooting, ds.UpgradingTo = true, d.firmware.to
		}
		st.Devices = append(st.Devices, ds)
	}
	return st
}
