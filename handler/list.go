package handler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// list returns the gateways of the job's regions. A region that cannot be
// listed is reported as a result of its own; err is the most severe of
// those failures, nil when every region was listed.
func (r *run) list(ctx context.Context, j job) (fleet []Gateway, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, region := range j.regions {
		g.Go(func() error {
			var gws []Gateway
			lerr := r.listRegionSafely(gctx, region, j.gatewayIDs, func(page []Gateway) { gws = append(gws, page...) }, nil)
			mu.Lock()
			defer mu.Unlock()
			if lerr != nil {
				if severity(lerr) > severity(err) {
					err = lerr
				}
				r.report(j, listFailure(upgrade.Result{RegionID: region}, lerr), 0)
				return nil
			}
			fleet = append(fleet, gws...)
			r.listed(j, gws)
			r.log.Debug().Str("regionId", region).Int("gateways", len(gws)).Msg("listed region")
			return nil
		})
	}
	_ = g.Wait()
	sortFleet(fleet)
	return fleet, err
}

// sortFleet puts gateways in the order a run handles them: by region, then id.
func sortFleet(fleet []Gateway) {
	slices.SortFunc(fleet, func(a, b Gateway) int {
		return strings.Compare(a.Region+"/"+a.ID, b.Region+"/"+b.ID)
	})
}

// errInternal is a bug met on the way: its stack is in the log.
var errInternal = errors.New("internal error")

// listRegionSafely lists a region on a goroutine of its own: a panic there
// (onPage's included) is an error of that region's listing, not the end of
// the process.
func (r *run) listRegionSafely(ctx context.Context, region string, ids []string, onPage, answered func([]Gateway)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.listingPanic(region, p)
		}
	}()
	return r.listRegion(ctx, region, ids, onPage, answered)
}

// listingPanic logs a panic met while listing a region, with its stack,
// and returns it as that region's listing error.
func (r *run) listingPanic(region string, p any) error {
	r.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("regionId", region).Msg("listing aborted by a panic")
	return fmt.Errorf("%w: %v", errInternal, p)
}

// listRegion pages through a region, PageSize gateways a call, and hands
// each page's gateways to onPage in page order (a gateway once, though
// paging a fleet that changes can repeat it); named gateways are listed
// PageSize ids at a time. After an error, the pages handed over stand.
// answered, if not nil, sees each page as soon as it is answered, before
// the pages ahead of it are (repeats included).
func (r *run) listRegion(ctx context.Context, region string, ids []string, onPage, answered func([]Gateway)) error {
	var seen idSet
	hand := func(gws []Gateway) {
		fresh := make([]Gateway, 0, len(gws))
		for _, g := range gws {
			if seen.add(g.ID) {
				fresh = append(fresh, g)
			}
		}
		if len(fresh) > 0 {
			onPage(fresh)
		}
	}
	if len(ids) == 0 {
		return r.listPages(ctx, region, ListFilter{}, hand, answered)
	}
	for chunk := range slices.Chunk(ids, PageSize) {
		if err := r.listPages(ctx, region, ListFilter{IDs: chunk}, hand, answered); err != nil {
			return err
		}
	}
	return nil
}

// idSet is the ids a region's listing has handed over. It is what a
// planner holds most of, so a short id is kept in a fixed array rather than
// as a string (a header and an allocation of its own, which also kept the
// decoded page's string alive): 100,000 ids take 3.5 MB instead of 5.9.
type idSet struct {
	short map[shortID]struct{}
	long  map[string]struct{} // longer than a shortID holds (none the service is known to give)
}

// shortID is an id of up to 23 bytes, and its length, so that no two ids
// share one.
type shortID struct {
	b [23]byte
	n uint8
}

// add reports whether id is new to the set, and adds it.
func (s *idSet) add(id string) bool {
	if len(id) > len(shortID{}.b) {
		return addNew(&s.long, id)
	}
	k := shortID{n: uint8(len(id))}
	copy(k.b[:], id)
	return addNew(&s.short, k)
}

// addNew reports whether k is new to the set *m, and adds it.
func addNew[K comparable](m *map[K]struct{}, k K) bool {
	if _, ok := (*m)[k]; ok {
		return false
	}
	if *m == nil {
		*m = map[K]struct{}{}
	}
	(*m)[k] = struct{}{}
	return true
}

// listAhead is how many listing pages may be asked for at once. Pages are
// numbered, so once the first one has told how many there are, the next
// ones need not wait for each other's answers: the listing goes at its
// lane's pace, not one latency a page (2,000 pages of a 100,000-gateway
// fleet took a minute one after the other, at 30 ms each).
const listAhead = 8

// listPages hands over, in order, the pages of a region's gateways that
// pass f: the first, then the others, up to listAhead asked for at once. It
// stops at the first page that fails (those before it stand) or comes back
// empty (the fleet shrank while we paged). answered, if not nil, sees each
// page as it is answered: a page throttled and retried holds back the
// pages after it, which need not hold back what only counts them.
func (r *run) listPages(ctx context.Context, region string, f ListFilter, hand, answered func([]Gateway)) error {
	if answered == nil {
		answered = func([]Gateway) {}
	}
	gws, total, err := r.reads.page(ctx, region, f, 1)
	if err != nil || len(gws) == 0 {
		return err
	}
	answered(gws)
	hand(gws)
	type answer struct {
		gws   []Gateway
		total int
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()          // the pages asked for beyond a failure or the end
	var asked []chan answer // in page order
	for next := 2; ; {
		for len(asked) < listAhead && (next-1)*PageSize < total {
			a := make(chan answer, 1)
			asked = append(asked, a)
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				defer func() {
					if p := recover(); p != nil {
						a <- answer{err: r.listingPanic(region, p)}
					}
				}()
				gws, total, err := r.reads.page(ctx, region, f, n)
				if err == nil {
					answered(gws)
				}
				a <- answer{gws, total, err}
			}(next)
			next++
		}
		if len(asked) == 0 {
			return nil
		}
		got := <-asked[0]
		asked = asked[1:]
		if got.err != nil || len(got.gws) == 0 {
			return got.err
		}
		// A fleet that grew while we paged has more pages; one that
		// shrank ends at its first empty page.
		total = max(total, got.total)
		hand(got.gws)
	}
}

// countBelow counts, by region, the gateways of a model whose firmware is
// older than a version: one filtered listing page per region of the job,
// which counts without paging.
func (r *run) countBelow(j job) func(ctx context.Context, model, target string) (map[string]int, error) {
	return func(ctx context.Context, model, target string) (map[string]int, error) {
		below := map[string]int{}
		for _, region := range j.regions {
			_, total, err := r.reads.page(ctx, region, ListFilter{Model: model, Below: target}, 1)
			if err != nil {
				return nil, err
			}
			below[region] = total
		}
		return below, nil
	}
}

// unlisted gives each gateway the request named that no listed region has
// an outcome, so none vanishes: notFound when every region was listed, else
// the outcome of the listing that failed (its gateway may be there).
func (r *run) unlisted(j job, fleet []Gateway, listErr error, notFound upgrade.Outcome) {
	listed := make(map[string]bool, len(fleet))
	for _, g := range fleet {
		listed[g.ID] = true
	}
	for _, id := range j.gatewayIDs {
		if listed[id] {
			continue
		}
		for _, vt := range j.types {
			res := upgrade.Result{SmartAGID: id, VersionType: vt, Outcome: notFound, Reason: upgrade.ReasonNotFound,
				Error: "not found in regions " + strings.Join(j.regions, ", ")}
			if listErr != nil {
				res = listFailure(upgrade.Result{SmartAGID: id, VersionType: vt}, listErr)
				res.Error = "its region could not be listed: " + res.Error
			}
			r.report(j, res, 0)
		}
	}
}

// listFailure is the outcome of a listing that failed: deferred when the
// run's time ran out or the API kept throttling (a later run lists again),
// failed otherwise.
func listFailure(res upgrade.Result, err error) upgrade.Result {
	applyError(&res, err)
	switch {
	case errors.Is(err, errDeadline):
		res.Error = err.Error()
		return deferred(res, upgrade.ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, upgrade.ReasonThrottled)
	case errors.Is(err, errInternal):
		res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonInternal
		return res
	}
	res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonListFailed
	return res
}

// severity orders listing failures: one region's lasting failure outweighs
// another's throttling, which outweighs a deadline.
func severity(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errDeadline):
		return 1
	case classify(err) == throttled:
		return 2
	}
	return 3
}

// retryFailedOnly narrows a sweep to the gateways whose last upgrade failed or
// stayed unverified (in the penalty box or not). It reports false when there
// is nothing to sweep.
func (r *run) retryFailedOnly(ctx context.Context, j *job) bool {
	if r.ledger == nil {
		res := upgrade.Result{Outcome: upgrade.OutcomeRejected, Reason: upgrade.ReasonNoLedger,
			Error: "retryFailedOnly needs the ledger (LEDGER_ENDPOINT, LEDGER_INSTANCE, LEDGER_TABLE)"}
		r.report(*j, res, 0)
		return false
	}
	recs, err := retrying(ctx, r.lcall, func(ctx context.Context) ([]Record, error) {
		return r.ledger.Scan(ctx, StateFailed, StateUnverified)
	})
	if err != nil {
		r.report(*j, upgrade.Result{Outcome: upgrade.OutcomeFailed, Reason: upgrade.ReasonLedgerDown, Error: err.Error()}, 0)
		return false
	}
	var ids []string
	for _, rec := range recs {
		if slices.Contains(j.types, rec.VersionType) && slices.Contains(j.regions, rec.Region) &&
			(len(j.gatewayIDs) == 0 || slices.Contains(j.gatewayIDs, rec.Gateway)) && !slices.Contains(ids, rec.Gateway) {
			ids = append(ids, rec.Gateway)
		}
	}
	slices.Sort(ids)
	r.log.Info().Int("gateways", len(ids)).Strs("gatewayIds", ids).Msg("retryFailedOnly: gateways to retry")
	if len(ids) == 0 {
		return false
	}
	j.gatewayIDs = ids
	return true
}
