package handler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// The queries: status and history read the ledger alone, never SAG, and
// change nothing. They may be asked from anywhere a sweep may be.

const (
	runsDoc  = "runs"  // the last runs, newest first
	fleetDoc = "fleet" // the fleet's versions as the last full sweep saw them
	// keptShown is how many kept events status counts before it says
	// "at least".
	keptShown = 1000
	runsKept  = 30
)

// status answers a status request.
func (r *run) status(ctx context.Context) (*events.Status, error) {
	if r.ledger == nil {
		return nil, fmt.Errorf("%w: status reads it", errNoLedger)
	}
	st := &events.Status{NightLimit: r.cfg.MaxUpgradesPerNight}
	docs, err := retrying(ctx, r.lcall, func(ctx context.Context) ([]Doc, error) { return r.ledger.ListDocs(ctx, "rollout#") })
	if err != nil {
		return nil, fmt.Errorf("listing the rollouts: %w", err)
	}
	for _, d := range docs {
		var doc rolloutDoc
		if err := decodeRollout(d.ID, d.Body, &doc); err != nil {
			return nil, err
		}
		k := rolloutKey{doc.VersionType, doc.Model, doc.Target}
		st.Rollouts = append(st.Rollouts, r.rollouts.status(k, doc, doc.BreakerReason))
	}
	slices.SortFunc(st.Rollouts, func(a, b upgrade.Rollout) int { return strings.Compare(a.ID, b.ID) })
	c, _, err := r.kill.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the kill switch: %w", err)
	}
	st.KillSwitch = c.state()
	if r.cfg.KillSwitch {
		on := true
		st.KillSwitch.KillSwitch, st.KillSwitch.SetBy = &on, "KILL_SWITCH=true"
	}
	if st.Runs, _, err = r.readRuns(ctx); err != nil {
		return nil, err
	}
	kept, err := retrying(ctx, r.lcall, func(ctx context.Context) ([]KeptEvent, error) { return r.ledger.KeptEvents(ctx, keptShown) })
	if err != nil {
		return nil, fmt.Errorf("counting the kept events: %w", err)
	}
	st.KeptEvents, st.KeptAtLeast = len(kept), len(kept) == keptShown
	if d, found, err := getDoc(ctx, r.ledger, r.lcall, fleetDoc); err != nil {
		return nil, fmt.Errorf("reading the fleet's versions: %w", err)
	} else if found {
		var f upgrade.Fleet
		if err := json.Unmarshal(d.Body, &f); err != nil {
			return nil, fmt.Errorf("fleet document: %w", err)
		}
		st.Fleet = &f
	}
	if st.NightUsed, err = r.night.used(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// history answers a history request: the gateway's records of both version
// types and its audit trail.
func (r *run) history(ctx context.Context, j job) (*events.History, error) {
	if r.ledger == nil {
		return nil, fmt.Errorf("%w: history reads it", errNoLedger)
	}
	if len(j.gatewayIDs) != 1 {
		return nil, fmt.Errorf("%w: gatewayIds: a history reads one gateway's trail, %d named", errInvalid, len(j.gatewayIDs))
	}
	id := j.gatewayIDs[0]
	h := &events.History{SmartAGID: id, Records: []upgrade.GatewayRecord{}, Trail: []upgrade.AuditEntry{}}
	for _, vt := range j.types {
		recs, err := retrying(ctx, r.lcall, func(ctx context.Context) (map[string]Record, error) { return r.ledger.Get(ctx, vt, []string{id}) })
		if err != nil {
			return nil, fmt.Errorf("reading %s's record: %w", id, err)
		}
		if rec, ok := recs[id]; ok {
			h.Records = append(h.Records, rec.view())
		}
	}
	trail, err := retrying(ctx, r.lcall, func(ctx context.Context) ([]upgrade.AuditEntry, error) { return r.ledger.History(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("reading %s's trail: %w", id, err)
	}
	for _, e := range trail {
		if slices.Contains(j.types, e.VersionType) {
			h.Trail = append(h.Trail, e)
		}
	}
	if len(h.Records) == 0 && len(h.Trail) == 0 {
		return nil, fmt.Errorf("%w: the ledger holds nothing of %s", errNotFound, id)
	}
	return h, nil
}

// view is a record as a history shows it.
func (rec Record) view() upgrade.GatewayRecord {
	return upgrade.GatewayRecord{VersionType: rec.VersionType, Region: rec.Region, Model: rec.Model, State: string(rec.State),
		From: rec.From, Target: rec.Target, Serial: rec.Serial, Attempts: rec.Attempts, PenaltyUntil: rec.PenaltyUntil,
		ClaimedAt: rec.ClaimedAt, LeaseUntil: rec.LeaseUntil, RequestedAt: rec.RequestedAt, VerifyBy: rec.VerifyBy,
		VerifiedAt: rec.VerifiedAt, UpdatedAt: rec.UpdatedAt, RunID: rec.RunID, Trigger: string(rec.Trigger),
		CorrelationID: rec.Correlation, APIRequestID: rec.APIRequestID, LastError: rec.LastError}
}

// readRuns reads the last runs and the document's revision.
func (r *run) readRuns(ctx context.Context) ([]upgrade.RunSummary, int64, error) {
	d, found, err := getDoc(ctx, r.ledger, r.lcall, runsDoc)
	if err != nil || !found {
		return []upgrade.RunSummary{}, 0, err
	}
	var runs struct {
		Runs []upgrade.RunSummary `json:"runs"`
	}
	if err := json.Unmarshal(d.Body, &runs); err != nil {
		return nil, 0, fmt.Errorf("runs document: %w", err)
	}
	return runs.Runs, d.Rev, nil
}

// noteRun adds the run to the last runs the status shows: sweeps and
// control requests, not queries (status, history, plan) nor the verify
// requests that follow every upgrade (a night's would push its sweep out).
// It is bookkeeping: a write that cannot be made is logged, never an error.
func (r *run) noteRun(ctx context.Context, startedAt time.Time, trigger events.Trigger, correlationID string, counts upgrade.Counts) {
	i := slices.IndexFunc(r.kinds, func(k upgrade.Kind) bool { return !k.Looks() && k != upgrade.KindVerify })
	if r.ledger == nil || i < 0 {
		return
	}
	kind := cmp.Or(r.kinds[i], upgrade.KindSweep)
	sum := upgrade.RunSummary{RunID: r.info.RunID, Kind: kind, Trigger: string(trigger), CorrelationID: correlationID,
		StartedAt: startedAt.UTC(), FinishedAt: r.now().UTC(), Counts: counts}
	for attempt := 0; attempt < 10; attempt++ {
		runs, rev, err := r.readRuns(ctx)
		if err != nil {
			r.log.Warn().Err(err).Msg("this run is not in the status's last runs")
			return
		}
		runs = slices.DeleteFunc(runs, func(s upgrade.RunSummary) bool { return s.RunID == sum.RunID }) // a redelivery
		runs = append([]upgrade.RunSummary{sum}, runs...)
		slices.SortStableFunc(runs, func(a, b upgrade.RunSummary) int { return b.StartedAt.Compare(a.StartedAt) })
		body, _ := json.Marshal(map[string]any{"runs": runs[:min(len(runs), runsKept)]})
		err = putDoc(ctx, r.ledger, r.lcall, Doc{ID: runsDoc, Rev: rev + 1, Body: body})
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				r.log.Warn().Err(err).Msg("this run is not in the status's last runs")
			}
			return
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond) // another run wrote it meanwhile
	}
}

// noteFleet writes the versions counted in the regions a full sweep listed
// whole: each gateway's firmware from the listing, and the signature
// databases this run read (a sweep that fans out reads none itself). The other regions keep
// what their last sweep saw. It is bookkeeping, as noteRun is.
func (r *run) noteFleet(ctx context.Context, count fleetCounts, regions []string) {
	if r.ledger == nil || len(regions) == 0 {
		return
	}
	seen := make([]upgrade.FleetRegion, 0, len(regions))
	for _, region := range regions {
		fr := upgrade.FleetRegion{Region: region, RunID: r.info.RunID, SeenAt: r.now(), Versions: []upgrade.FleetVersion{}}
		for v, n := range count[region] {
			v.Gateways = n
			fr.Versions = append(fr.Versions, v)
		}
		slices.SortFunc(fr.Versions, func(a, b upgrade.FleetVersion) int {
			return cmp.Or(strings.Compare(string(a.VersionType), string(b.VersionType)), strings.Compare(a.Model, b.Model),
				compareVersions(a.Version, b.Version))
		})
		seen = append(seen, fr)
	}
	for attempt := 0; attempt < 10; attempt++ {
		d, found, err := getDoc(ctx, r.ledger, r.lcall, fleetDoc)
		var f upgrade.Fleet
		if err == nil && found {
			err = json.Unmarshal(d.Body, &f)
		}
		if err == nil {
			f.Regions = slices.DeleteFunc(f.Regions, func(fr upgrade.FleetRegion) bool { return slices.Contains(regions, fr.Region) })
			f.Regions = append(f.Regions, seen...)
			slices.SortFunc(f.Regions, func(a, b upgrade.FleetRegion) int { return strings.Compare(a.Region, b.Region) })
			body, _ := json.Marshal(f)
			err = putDoc(ctx, r.ledger, r.lcall, Doc{ID: fleetDoc, Rev: d.Rev + 1, Body: body})
		}
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				r.log.Warn().Err(err).Msg("the fleet's versions are not stored")
			}
			return
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond) // another run wrote it meanwhile
	}
}

// fleetCounts are a fleet's gateways by region and version.
type fleetCounts map[string]map[upgrade.FleetVersion]int

func (c fleetCounts) add(region string, v upgrade.FleetVersion) {
	if c[region] == nil {
		c[region] = map[upgrade.FleetVersion]int{}
	}
	c[region][v]++
}

// addListed counts a listed gateway's firmware version, which the listing
// gives.
func (c fleetCounts) addListed(g Gateway) {
	if g.SoftwareVersion != "" {
		c.add(g.Region, upgrade.FleetVersion{VersionType: upgrade.VersionDevice, Model: g.Model, Version: g.SoftwareVersion})
	}
}

// fleetVersions counts a fleet's versions: the firmware from the listing,
// DPI from the versions this run read.
func (r *run) fleetVersions(fleet []Gateway) fleetCounts {
	count := fleetCounts{}
	byID := make(map[string]Gateway, len(fleet))
	for _, g := range fleet {
		byID[g.ID] = g
		count.addListed(g)
	}
	_, results := r.tally()
	for _, res := range results {
		if g, ok := byID[res.SmartAGID]; ok && res.VersionType == upgrade.VersionDpi && res.FromVersion != "" {
			count.add(g.Region, upgrade.FleetVersion{VersionType: upgrade.VersionDpi, Model: g.Model, Version: res.FromVersion})
		}
	}
	return count
}
