package handler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// planner is the stage that decides, for one gateway and version type,
// whether it is due for an upgrade and to which version: eligibility from
// the listing, the devices and the versions the gateway is offered (read
// from the API), the version policy, the HA order. It writes nothing: what
// it finds is a candidate for the gate, or the gateway's result.
type planner struct {
	reads  *sagReader
	policy Policy
	now    func() time.Time
	stopAt time.Time // no read starts after it
}

// candidate is a gateway and version type the plan found due for an
// upgrade; the gate decides whether this run makes the call.
type candidate struct {
	g      Gateway
	vt     upgrade.VersionType
	rec    *Record // nil without a ledger record
	dev    Device  // the device to upgrade (HA pairs: one a run)
	target Release
	serial string // SerialNumber for the call ("" for a single device)
	res    upgrade.Result
	start  time.Time
	// fresh: the gateway has not started this rollout yet (a retry to the
	// same version, or an HA pair's second device, has).
	fresh bool
	// viaRollout: its rollout let it in; claimed: its claim was written.
	viaRollout, claimed bool
	// accepted holds the RequestId once the service accepted the call.
	accepted atomic.Pointer[string]
	// other is the gateway's record of the other version type, when it has
	// one: while that upgrade is in flight, this one waits.
	other *Record
}

func (c *candidate) key() rolloutKey { return rolloutKey{c.vt, c.g.Model, c.target.Code} }

// plan decides one gateway and version type, from its ledger record once
// settled (nil: none). It returns a candidate, or the final result.
func (p planner) plan(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, rec *Record) (*candidate, upgrade.Result) {
	res := upgrade.Result{
		SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Force: j.force,
		SerialNumber: strings.Join(g.SerialNumbers, ","),
	}
	if vt == upgrade.VersionDevice {
		res.FromVersion = g.SoftwareVersion
	}
	if reason := ineligible(g, j.when(p.now)); reason != "" {
		return nil, skipped(res, reason)
	}
	if time.Now().After(p.stopAt) {
		return nil, deferred(res, upgrade.ReasonDeadline)
	}
	if reason := pinSettles(g, vt, j.target); reason != "" {
		if reason == upgrade.ReasonWouldDowngrade {
			res.ToVersion = j.target
		}
		return nil, skipped(res, reason)
	}

	devices, master, live, err := p.reads.devices(ctx, g, vt)
	if err != nil {
		return nil, readFailure(res, err)
	}
	// The gateway's attributes give a fresher status: one that went offline
	// since the listing is skipped.
	if reason := ineligible(live, j.when(p.now)); reason != "" {
		return nil, skipped(res, reason)
	}
	if len(devices) == 0 {
		return nil, skipped(res, upgrade.ReasonNoDevice)
	}
	if vt == upgrade.VersionDpi || g.HA() {
		res.FromVersion = lowest(devices, vt)
	}
	offered, err := p.reads.versions(ctx, g, vt)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "VersionNotExist" {
			res = skipped(res, upgrade.ReasonNoRelease)
			applyError(&res, err)
			return nil, res
		}
		return nil, readFailure(res, err)
	}

	due, reason := p.behind(devices, master, offered, vt, j.target, j.when(p.now))
	if len(due) == 0 {
		return nil, skipped(res, reason)
	}
	first := due[0]
	res.FromVersion, res.ToVersion = first.dev.Version(vt), first.target.Code
	c := &candidate{g: g, vt: vt, rec: rec, dev: first.dev, target: first.target, res: res, fresh: true}
	if g.HA() {
		c.serial = first.dev.SerialNumber
		c.res.SerialNumber = c.serial
		if len(due) > 1 {
			c.res.Reason = upgrade.ReasonHAPeerPending
		}
	}
	if rec != nil && rec.Target == first.target.Code && rec.State != StateReleased {
		c.fresh = false // a retry, or an HA pair's second device: the rollout counted this gateway already
	}
	return c, c.res
}

// pinSettles returns the result of a pinned version for a single device
// already at or past it, known from the listing without its version list:
// up_to_date, would_downgrade, or "" when the plan must look.
func pinSettles(g Gateway, vt upgrade.VersionType, pin string) string {
	if pin == "" || vt != upgrade.VersionDevice || g.HA() || !validVersion(g.SoftwareVersion) {
		return ""
	}
	switch compareVersions(g.SoftwareVersion, pin) {
	case 0:
		return upgrade.ReasonUpToDate
	case 1:
		return upgrade.ReasonWouldDowngrade
	}
	return ""
}

// dueDevice is a device behind, and the release it should run.
type dueDevice struct {
	dev    Device
	target Release
}

// behind chooses, for each device, the release the policy would install,
// and orders the devices that are behind: one device of an HA pair a run,
// the standby first, so the site keeps a working box while the other
// reboots. With none behind, reason says why. Release ages are judged as at
// at.
func (p planner) behind(devices []Device, master string, offered []Release, vt upgrade.VersionType, pin string, at time.Time) (due []dueDevice, reason string) {
	for _, d := range devices {
		target, why := p.policy.Choose(d.Version(vt), offered, pin, at)
		if why != "" {
			if reason == "" || why != upgrade.ReasonUpToDate {
				reason = why
			}
			continue
		}
		due = append(due, dueDevice{d, target})
	}
	slices.SortStableFunc(due, func(a, b dueDevice) int {
		return boolInt(a.dev.SerialNumber == master) - boolInt(b.dev.SerialNumber == master)
	})
	return due, reason
}

// lowest returns the oldest version among the devices.
func lowest(devices []Device, vt upgrade.VersionType) string {
	v := ""
	for _, d := range devices {
		if v == "" || compareVersions(d.Version(vt), v) < 0 {
			v = d.Version(vt)
		}
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
