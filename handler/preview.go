package handler

import (
	"context"
	"slices"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// preview serves a plan request: what a sweep would do, as a dry run judged
// as at each region's next window opening (now, for a region whose window is
// open and fits an upgrade), with neither fan-out nor continuation: the
// report holds every gateway, and says so.
func (r *run) preview(ctx context.Context, j job) {
	longest := time.Duration(0)
	for _, vt := range j.types {
		longest = max(longest, upgradeTime(r.cfg, vt))
	}
	now := r.now()
	plan := &events.Plan{At: map[string]time.Time{}, NoFanout: true}
	byTime := map[time.Time][]string{}
	for _, region := range j.regions {
		at := r.cfg.WindowOf(region).nextFit(now, longest)
		plan.At[region] = at.UTC()
		byTime[at] = append(byTime[at], region)
	}
	times := make([]time.Time, 0, len(byTime))
	for at := range byTime {
		times = append(times, at)
	}
	slices.SortFunc(times, time.Time.Compare)
	for _, at := range times {
		jj := j
		jj.regions, jj.at = byTime[at], at
		if at.Equal(now) {
			jj.at = time.Time{}
		}
		r.sweep(ctx, jj)
	}
	r.mu.Lock()
	r.answers.plan = plan
	r.mu.Unlock()
}
