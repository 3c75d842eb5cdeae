package handler

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
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

// verifications are the verify requests a run queues for the upgrades it
// started or found under way, sent to the work queue at its end, delayed
// until the devices should be back. Without a work queue the next sweep
// verifies them.
type verifications struct {
	mu      sync.Mutex
	batches map[verifyKey]*verifyBatch
}

type verifyKey struct {
	vt          upgrade.VersionType
	correlation string
}

type verifyBatch struct {
	ids []string
	due time.Time
}

// later queues a verify request for the record's gateway, due at when.
func (v *verifications) later(rec Record, when time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := verifyKey{vt: rec.VersionType, correlation: rec.Correlation}
	if v.batches == nil {
		v.batches = map[verifyKey]*verifyBatch{}
	}
	b := v.batches[key]
	if b == nil {
		b = &verifyBatch{}
		v.batches[key] = b
	}
	if !slices.Contains(b.ids, rec.Gateway) {
		b.ids = append(b.ids, rec.Gateway)
	}
	if when.After(b.due) {
		b.due = when
	}
}

// send puts the queued verify requests on the work queue, PageSize gateways
// a message, each delayed until its upgrades should be done.
func (v *verifications) send(ctx context.Context, work WorkQueue, lcall *caller, now time.Time, log zerolog.Logger) {
	v.mu.Lock()
	batches := v.batches
	v.batches = nil
	v.mu.Unlock()
	if work == nil || len(batches) == 0 {
		return
	}
	var msgs []QueueMessage
	for key, b := range batches {
		delay := max(b.due.Sub(now), 0)
		for chunk := range slices.Chunk(b.ids, PageSize) {
			req := events.Request{Kind: upgrade.KindVerify, GatewayIDs: chunk, VersionTypes: []upgrade.VersionType{key.vt}, CorrelationID: key.correlation}
			body, _ := json.Marshal(req)
			msgs = append(msgs, QueueMessage{Body: string(body), Delay: delay})
		}
	}
	if _, err := retrying(ctx, lcall, func(ctx context.Context) (struct{}, error) { return struct{}{}, work.Send(ctx, msgs) }); err != nil {
		log.Warn().Err(err).Int("messages", len(msgs)).Msg("verify requests not queued; the next sweep verifies these upgrades")
		return
	}
	log.Info().Int("messages", len(msgs)).Msg("verify requests queued")
}
