package handler

import (
	"context"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// verify re-checks gateways after an upgrade. With a ledger record waiting
// for confirmation, it settles it as a sweep would (verified, unverified, or
// still in progress and asked again later). Otherwise it is verified when the
// gateway is Active and every device runs the target (the request's
// targetVersion, the record's, or else the newest version the policy would
// install), unverified if not. It makes no update call.
func (r *run) verify(ctx context.Context, j job) {
	fleet, listErr := r.list(ctx, j)
	records, err := r.book.read(ctx, fleet, j.types)
	if err != nil {
		r.log.Warn().Err(err).Msg("ledger unreadable: verifying against the request and the policy only")
	}
	for _, g := range fleet {
		for _, vt := range j.types {
			start := time.Now()
			rec, ok := records[vt][g.ID]
			if ok && rec.pending() {
				if res, _, done := r.settler.resolve(ctx, j, g, vt, rec); done {
					r.report(j, res, time.Since(start))
					continue
				}
			}
			target := j.target
			if ok && target == "" {
				target = rec.Target // the upgrade the ledger says was made
			}
			r.report(j, r.verifyOne(ctx, g, vt, target), time.Since(start))
		}
	}
	r.rollouts.reviewAll(ctx, j)
	r.unlisted(j, fleet, listErr, upgrade.OutcomeUnverified)
}

// verifyOne reads one gateway and says whether it runs target ("": the
// newest version the policy would install).
func (r *run) verifyOne(ctx context.Context, g Gateway, vt upgrade.VersionType, target string) upgrade.Result {
	res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, SerialNumber: strings.Join(g.SerialNumbers, ",")}
	unverified := func(reason string) upgrade.Result {
		res.Outcome, res.Reason = upgrade.OutcomeUnverified, reason
		return res
	}
	d, err := r.reads.detail(ctx, g)
	if err != nil {
		applyError(&res, err)
		return unverified(upgrade.ReasonAPIError)
	}
	res.FromVersion = lowest(d.Devices, vt)
	if target == "" {
		offered, err := r.reads.versions(ctx, g, vt)
		if err != nil {
			applyError(&res, err)
			return unverified(upgrade.ReasonAPIError)
		}
		// The newest version the policy would install on a device of any age.
		newest, reason := r.planner.policy.Choose("0.0", offered, "", r.now())
		if reason != "" {
			return unverified(reason)
		}
		target = newest.Code
	}
	res.ToVersion = target
	if !strings.EqualFold(d.Status, "active") {
		res.Error = "status is " + d.Status
		return unverified(upgrade.ReasonOffline)
	}
	if len(d.Devices) == 0 {
		return unverified(upgrade.ReasonNoDevice)
	}
	for _, dev := range d.Devices {
		if compareVersions(dev.Version(vt), target) < 0 {
			res.Error = dev.SerialNumber + " runs " + dev.Version(vt)
			return unverified(upgrade.ReasonVersionDiff)
		}
	}
	res.Outcome = upgrade.OutcomeVerified
	return res
}
