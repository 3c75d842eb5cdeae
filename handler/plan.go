package handler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
	"golang.org/x/sync/errgroup"
)

// plan decides every gateway and version type of a chunk, concurrently on
// the workers the chunks being planned share: the final results it records, the candidates it returns in the chunk's
// order (the spread order the rollout admits them in).
func (r *run) plan(ctx context.Context, j job, chunk []Gateway, records map[upgrade.VersionType]map[string]Record, workers chan struct{}) []*candidate {
	slots := make([]*candidate, len(chunk)*len(j.types))
	g, gctx := errgroup.WithContext(ctx)
	for i, gw := range chunk {
		for t, vt := range j.types {
			g.Go(func() error {
				// One of the workers every chunk being planned shares.
				workers <- struct{}{}
				defer func() { <-workers }()
				start := time.Now()
				defer r.survive(j, upgrade.Result{SmartAGID: gw.ID, RegionID: gw.Region, VersionType: vt}, start)
				var rec *Record
				if got, ok := records[vt][gw.ID]; ok {
					rec = &got
				}
				c, res := r.decide(gctx, j, gw, vt, rec)
				if c == nil {
					r.record(j, res, time.Since(start))
					return nil
				}
				c.start = start
				if got, ok := records[otherType(vt)][gw.ID]; ok {
					c.other = &got
				}
				slots[i*len(j.types)+t] = c
				return nil
			})
		}
	}
	_ = g.Wait()
	return slices.DeleteFunc(slots, func(c *candidate) bool { return c == nil })
}

// survive, deferred by a goroutine that handles one gateway, turns a panic
// into a failed result for it (the log has the stack): a bug met by one
// gateway must not take the process, and the run's report, with it.
func (r *run) survive(j job, res upgrade.Result, start time.Time) {
	p := recover()
	if p == nil {
		return
	}
	r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("smartAgId", res.SmartAGID).
		Str("versionType", string(res.VersionType)).Msg("gateway aborted by a panic")
	res.Outcome, res.Reason, res.Error = upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p)
	r.record(j, res, time.Since(start))
}

// otherType is the version type that is not vt: a gateway upgrades one at a
// time.
func otherType(vt upgrade.VersionType) upgrade.VersionType {
	if vt == upgrade.VersionDevice {
		return upgrade.VersionDpi
	}
	return upgrade.VersionDevice
}

// surviveCall, deferred by the goroutine that makes a candidate's call, turns
// a panic into its result: requested when the service had accepted the call
// (an upgrade is under way whatever went wrong after), failed otherwise.
func (r *run) surviveCall(j job, c *candidate) {
	p := recover()
	if p == nil {
		return
	}
	r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("smartAgId", c.g.ID).
		Str("versionType", string(c.vt)).Msg("gateway aborted by a panic")
	res := c.res
	if id := c.accepted.Load(); id != nil {
		res.Outcome, res.Reason, res.RequestID = upgrade.OutcomeRequested, "", *id
		res.Error = fmt.Sprintf("accepted; then an internal error: %v", p)
	} else {
		res.Outcome, res.Reason, res.Error = upgrade.OutcomeFailed, upgrade.ReasonInternal, fmt.Sprintf("internal error: %v", p)
	}
	r.record(j, res, time.Since(c.start))
}

// decide handles one gateway and version type up to the update call: first
// its ledger record (an upgrade waiting to be confirmed is settled before
// anything else, and the penalty box holds back a gateway that keeps
// failing), then eligibility, versions and policy. It returns a candidate,
// or the final result.
func (r *run) decide(ctx context.Context, j job, g Gateway, vt upgrade.VersionType, rec *Record) (*candidate, upgrade.Result) {
	if rec != nil && rec.pending() {
		res, next, done := r.resolve(ctx, j, g, vt, *rec)
		if done {
			return nil, res
		}
		rec = &next
	}
	if rec != nil && rec.RunID == j.info.RunID && (rec.State == StateFailed || rec.State == StateUnverified) {
		res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, SerialNumber: rec.Serial,
			FromVersion: rec.From, ToVersion: rec.Target, Outcome: upgrade.OutcomeFailed, Reason: upgrade.ReasonAttempted, Error: rec.LastError}
		if rec.State == StateUnverified {
			res.Outcome = upgrade.OutcomeUnverified
		}
		return nil, res
	}
	if rec != nil && r.now().Before(rec.PenaltyUntil) && !j.retryFailedOnly {
		res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, FromVersion: rec.From, ToVersion: rec.Target,
			Error: rec.LastError}
		return nil, skipped(res, upgrade.ReasonPenalty)
	}
	if rec != nil && rec.State == StateUnverified && !strings.EqualFold(g.Status, "active") && r.now().Sub(rec.UpdatedAt) >= stillDownAfter {
		return nil, r.stillDown(ctx, j, g, *rec)
	}
	res := upgrade.Result{
		SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Force: j.force,
		SerialNumber: strings.Join(g.SerialNumbers, ","),
	}
	if vt == upgrade.VersionDevice {
		res.FromVersion = g.SoftwareVersion
	}
	if reason := ineligible(g, r.now()); reason != "" {
		return nil, skipped(res, reason)
	}
	if time.Now().After(r.api.stopAt) {
		return nil, deferred(res, upgrade.ReasonDeadline)
	}

	// A pinned version settles a single device already at or past it
	// without asking for its version list: the answer is known.
	if pin := j.target; pin != "" && vt == upgrade.VersionDevice && !g.HA() && validVersion(g.SoftwareVersion) {
		switch compareVersions(g.SoftwareVersion, pin) {
		case 0:
			return nil, skipped(res, upgrade.ReasonUpToDate)
		case 1:
			res.ToVersion = pin
			return nil, skipped(res, upgrade.ReasonWouldDowngrade)
		}
	}

	devices, master, skip, err := r.devices(ctx, g, vt)
	switch {
	case err != nil:
		return nil, readFailure(res, err)
	case skip != "":
		return nil, skipped(res, skip)
	}
	if vt == upgrade.VersionDpi || g.HA() {
		res.FromVersion = lowest(devices, vt)
	}
	offered, err := r.versions(ctx, g, vt)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "VersionNotExist" {
			res = skipped(res, upgrade.ReasonNoRelease)
			applyError(&res, err)
			return nil, res
		}
		return nil, readFailure(res, err)
	}

	// Which devices are behind, and what each should run.
	type plan struct {
		dev    Device
		target Release
	}
	var due []plan
	skipReason := ""
	for _, d := range devices {
		target, reason := r.policy.Choose(d.Version(vt), offered, j.target, r.now())
		if reason != "" {
			if skipReason == "" || reason != upgrade.ReasonUpToDate {
				skipReason = reason
			}
			continue
		}
		due = append(due, plan{d, target})
	}
	if len(due) == 0 {
		return nil, skipped(res, skipReason)
	}
	// One device of an HA pair per run, the standby first, so the site keeps
	// a working box while the other reboots.
	slices.SortStableFunc(due, func(a, b plan) int {
		return boolInt(a.dev.SerialNumber == master) - boolInt(b.dev.SerialNumber == master)
	})
	p := due[0]
	res.FromVersion, res.ToVersion = p.dev.Version(vt), p.target.Code
	c := &candidate{g: g, vt: vt, rec: rec, dev: p.dev, target: p.target, res: res, fresh: true}
	if g.HA() {
		c.serial = p.dev.SerialNumber
		c.res.SerialNumber = c.serial
		if len(due) > 1 {
			c.res.Reason = upgrade.ReasonHAPeerPending
		}
	}
	if rec != nil && rec.Target == p.target.Code && rec.State != StateReleased {
		c.fresh = false // a retry, or an HA pair's second device: the rollout counted this gateway already
	}
	return c, c.res
}

// versions returns the versions a gateway is offered, asking the API once a
// run: the same gateway's list does not change within an invocation (both
// devices of an HA pair share it; a batch may name a gateway twice).
func (r *run) versions(ctx context.Context, g Gateway, vt upgrade.VersionType) ([]Release, error) {
	key := g.ID + "/" + string(vt)
	r.catalogMu.Lock()
	cached, ok := r.catalogs[key]
	r.catalogMu.Unlock()
	if ok {
		return cached, nil
	}
	offered, err := readSAG(ctx, r.api, readVersions, func(ctx context.Context) ([]Release, error) {
		return r.sag.Versions(ctx, g, "", vt)
	})
	if err == nil {
		r.catalogMu.Lock()
		if r.catalogs == nil {
			r.catalogs = map[string][]Release{}
		}
		r.catalogs[key] = offered
		r.catalogMu.Unlock()
	}
	return offered, err
}

// devices returns the devices to consider and which one carries traffic. A
// single-device gateway's firmware version is in the list already; DPI
// versions and HA pairs need the gateway's attributes, which also give a
// fresher status: a gateway that went offline since the listing is skipped.
func (r *run) devices(ctx context.Context, g Gateway, vt upgrade.VersionType) (devs []Device, master, skip string, err error) {
	if vt == upgrade.VersionDevice && !g.HA() {
		return []Device{{SerialNumber: g.SerialNumbers[0], Software: g.SoftwareVersion}}, "", "", nil
	}
	d, err := readSAG(ctx, r.api, readDevices, func(ctx context.Context) (Detail, error) { return r.sag.Devices(ctx, g) })
	if err != nil {
		return nil, "", "", err
	}
	live := g
	live.Status = d.Status
	if reason := ineligible(live, r.now()); reason != "" {
		return nil, "", reason, nil
	}
	if len(d.Devices) == 0 {
		return nil, "", upgrade.ReasonNoDevice, nil
	}
	return d.Devices, d.MasterSN, "", nil
}
