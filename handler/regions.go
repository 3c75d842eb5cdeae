package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Regions with windows of their own (MAINTENANCE_WINDOWS). Each window has
// its timer; a sweep of the fleet lists only the regions whose window is
// open, and a rollout's wave is shared among the regions in proportion to
// the model's gateways in each, so the window that opens first takes its
// part, not the whole wave.

// sizesDoc holds each model's gateways by region, as the last full sweep
// counted them, for the runs that do not count (the batches of a fan-out).
const sizesDoc = "regions#sizes"

// openRegions are the regions a sweep lists: with MAINTENANCE_WINDOWS, for a
// sweep of the fleet, those whose window is open and fits an upgrade; the
// report names the others with their next opening. A sweep that names
// gateways lists their regions whatever the time (each gateway then says
// outside_window), as does a forced one and a plan (judged at each opening).
func (r *run) openRegions(j job) []string {
	if len(r.cfg.Windows) == 0 || len(j.gatewayIDs) > 0 || j.force || j.kind == upgrade.KindPlan {
		return j.regions
	}
	longest := time.Duration(0)
	for _, vt := range j.types {
		longest = max(longest, upgradeTime(r.cfg, vt))
	}
	now := r.now()
	var open []string
	closed := map[string]time.Time{}
	for _, region := range j.regions {
		w := r.cfg.WindowOf(region)
		if w.Allows(now, longest) {
			open = append(open, region)
		} else {
			closed[region] = w.nextFit(now, longest).UTC()
		}
	}
	if len(closed) > 0 {
		r.mu.Lock()
		if r.closed == nil {
			r.closed = map[string]time.Time{}
		}
		maps.Copy(r.closed, closed)
		r.mu.Unlock()
		r.log.Info().Strs("regions", open).Interface("closed", closed).Msg("regions outside their window are not listed")
	}
	return open
}

// measureRegions counts, for a sweep of the fleet with MAINTENANCE_WINDOWS,
// each model's gateways in every region of the job: those listed from the
// listing, the others (their window closed) with one filtered listing page
// per model. The rollouts share their waves by these counts, and the ledger
// keeps them for the batches a fan-out sends.
func (r *run) measureRegions(ctx context.Context, j job, all []string, sizes modelSizes) {
	if len(r.cfg.Windows) == 0 || r.ledger == nil || len(j.gatewayIDs) > 0 || j.retryFailedOnly {
		return
	}
	for model := range sizes {
		for _, region := range all {
			if slices.Contains(j.regions, region) {
				continue
			}
			_, total, err := r.reads.page(ctx, region, ListFilter{Model: model}, 1)
			if err != nil {
				// Without the closed regions' counts the open ones would
				// take whole waves: keep the last counts instead.
				r.log.Warn().Err(err).Str("regionId", region).Msg("a region's gateways not counted; the last counts stand")
				return
			}
			sizes[model][region] = total
		}
	}
	r.rollouts.setSizes(sizes)
	if j.dryRun {
		return
	}
	body, _ := json.Marshal(sizes)
	for attempt := 0; attempt < 5; attempt++ {
		d, _, err := getDoc(ctx, r.ledger, r.lcall, sizesDoc)
		if err == nil {
			err = putDoc(ctx, r.ledger, r.lcall, Doc{ID: sizesDoc, Rev: d.Rev + 1, Body: body})
		}
		if err == nil {
			return
		}
		if !errors.Is(err, ErrConflict) {
			r.log.Warn().Err(err).Msg("the regions' gateway counts are not stored")
			return
		}
	}
}

// modelSizes are each model's gateways by region: model → region → gateways.
type modelSizes map[string]map[string]int

func (s modelSizes) add(g Gateway, n int) {
	if s[g.Model] == nil {
		s[g.Model] = map[string]int{}
	}
	s[g.Model][g.Region] += n
}

// sizesOfFleet counts a listed fleet's gateways by model and region.
func sizesOfFleet(fleet []Gateway) modelSizes {
	sizes := modelSizes{}
	for _, g := range fleet {
		sizes.add(g, 1)
	}
	return sizes
}

// setSizes gives the run each model's gateways by region.
func (ro *rollouts) setSizes(sizes map[string]map[string]int) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	ro.sizes, ro.sizesRead = sizes, true
}

// sizesOf returns a model's gateways by region: as this run counted them,
// or as the ledger keeps them from the last count (read once a run).
func (ro *rollouts) sizesOf(ctx context.Context, model string) map[string]int {
	ro.mu.Lock()
	read := ro.sizesRead
	ro.mu.Unlock()
	if !read {
		sizes := map[string]map[string]int{}
		d, found, err := getDoc(ctx, ro.ledger, ro.lcall, sizesDoc)
		if err == nil && found {
			err = decodeSizes(d.Body, &sizes)
		}
		if err != nil {
			ro.log.Warn().Err(err).Msg("the regions' gateway counts are unreadable: each region may take a whole wave")
		}
		ro.mu.Lock()
		if !ro.sizesRead {
			ro.sizes, ro.sizesRead = sizes, true
		}
		ro.mu.Unlock()
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	return ro.sizes[model]
}

// decodeSizes reads the regions' counts; a count below zero is an error.
func decodeSizes(body []byte, sizes *map[string]map[string]int) error {
	if err := json.Unmarshal(body, sizes); err != nil {
		return fmt.Errorf("%s document: %w", sizesDoc, err)
	}
	for model, byRegion := range *sizes {
		for region, n := range byRegion {
			if n < 0 {
				return fmt.Errorf("%s document: %s in %s is %d, out of range", sizesDoc, model, region, n)
			}
		}
	}
	return nil
}
