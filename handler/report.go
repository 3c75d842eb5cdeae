package handler

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// reporter is the last stage of every gateway: its outcome goes three ways
// at once, an entry of the run's report, a "decision" log line and an
// outcome event. It also knows, for each request, which gateways still lack
// an outcome: a request a panic ends fails them, so none is left without
// one.
type reporter struct {
	log zerolog.Logger
	out *outbox
	now func() time.Time
	// changesOnly publishes no event for a gateway that is simply up to
	// date (PUBLISH_OUTCOMES=changes); its log line and report entry stay.
	changesOnly bool

	mu      sync.Mutex
	results []upgrade.Result
	counts  upgrade.Counts
	scanned map[string]bool
	// handed are gateways listed and handed over whole (a fan-out's):
	// scanned, though the outcomes are the workers'.
	handed int
	jobs   []*jobOutcomes
}

// jobOutcomes are the gateways a job must give an outcome, and those it has.
type jobOutcomes struct {
	due  map[string]Gateway // by id: listed, or named by the request
	done map[string]bool    // id/versionType
	// Its results, and those that say a service it needs could not be
	// reached (infrastructureFailure).
	results, unreachable int
}

func newReporter(log zerolog.Logger, out *outbox, now func() time.Time, changesOnly bool) *reporter {
	return &reporter{log: log, out: out, now: now, changesOnly: changesOnly, scanned: map[string]bool{}}
}

// newJob starts the tally of a job that names the gateways named (none: its
// listing says which), and returns its id.
func (rp *reporter) newJob(named []string) int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	jo := &jobOutcomes{due: map[string]Gateway{}, done: map[string]bool{}}
	for _, id := range named {
		jo.due[id] = Gateway{ID: id}
	}
	rp.jobs = append(rp.jobs, jo)
	return len(rp.jobs) - 1
}

// listed notes gateways a job listed: each counts as scanned and must end
// with an outcome.
func (rp *reporter) listed(j job, gws []Gateway) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, g := range gws {
		rp.scanned[g.ID] = true
		if jo := rp.job(j); jo != nil {
			jo.due[g.ID] = g
		}
	}
}

// handedOver counts n gateways a job listed and handed over without keeping
// them: scanned, but not due here.
func (rp *reporter) handedOver(n int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.handed += n
}

// job returns the tally of j, or nil for a result that belongs to no job
// (a rejected message); rp.mu is held.
func (rp *reporter) job(j job) *jobOutcomes {
	if j.id < 0 || j.id >= len(rp.jobs) {
		return nil
	}
	return rp.jobs[j.id]
}

// report adds a result to the report, logs the decision and queues its
// event.
func (rp *reporter) report(j job, res upgrade.Result, took time.Duration) {
	rp.mu.Lock()
	rp.results = append(rp.results, res)
	rp.counts.Add(res.Outcome)
	if jo := rp.job(j); jo != nil {
		if res.SmartAGID != "" {
			jo.done[res.SmartAGID+"/"+string(res.VersionType)] = true
		}
		jo.results++
		if infrastructureFailure(res) {
			jo.unreachable++
		}
	}
	rp.mu.Unlock()

	ev := rp.log.Info()
	if res.Outcome == upgrade.OutcomeFailed || res.Outcome == upgrade.OutcomeRejected {
		ev = rp.log.Warn()
	}
	ev.Str("smartAGId", res.SmartAGID).Str("regionId", res.RegionID).Str("versionType", string(res.VersionType)).
		Str("fromVersion", res.FromVersion).Str("toVersion", res.ToVersion).
		Str("outcome", string(res.Outcome)).Str("reason", res.Reason).Dur("duration", took)
	// Optional fields only when they say something.
	for k, v := range map[string]string{"serialNumber": res.SerialNumber, "errorCode": res.ErrorCode, "error": res.Error,
		"apiRequestId": res.RequestID, "correlationId": j.info.CorrelationID, "messageId": res.MessageID} {
		if v != "" {
			ev.Str(k, v)
		}
	}
	if j.dryRun {
		ev.Bool("dryRun", true)
	}
	if res.Force {
		ev.Bool("force", true)
	}
	ev.Msg("decision")
	if rp.changesOnly && res.Outcome == upgrade.OutcomeSkipped && res.Reason == upgrade.ReasonUpToDate {
		return
	}
	rp.out.add(events.OutcomeEvent(rp.out.source, j.info, res, rp.now()))
}

// reportAll gives every version type of these gateways one outcome, where
// the run settles them together without looking at each; those that have
// one already keep it.
func (rp *reporter) reportAll(j job, gws []Gateway, outcome upgrade.Outcome, reason, detail string) {
	for _, g := range gws {
		for _, vt := range j.types {
			if rp.has(j, g.ID, vt) {
				continue
			}
			res := upgrade.Result{SmartAGID: g.ID, RegionID: g.Region, VersionType: vt, Outcome: outcome, Reason: reason, Error: detail}
			if vt == upgrade.VersionDevice {
				res.FromVersion = g.SoftwareVersion
			}
			rp.report(j, res, 0)
		}
	}
}

// has reports whether a job gave a gateway and version type an outcome.
func (rp *reporter) has(j job, id string, vt upgrade.VersionType) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	jo := rp.job(j)
	return jo != nil && jo.done[id+"/"+string(vt)]
}

// failUnfinished fails every gateway and version type of a job that has no
// outcome yet: a panic ended the job.
func (rp *reporter) failUnfinished(j job, cause string) {
	rp.mu.Lock()
	var left []Gateway
	if jo := rp.job(j); jo != nil {
		for _, g := range jo.due {
			for _, vt := range j.types {
				if !jo.done[g.ID+"/"+string(vt)] {
					left = append(left, g)
					break
				}
			}
		}
	}
	rp.mu.Unlock()
	slices.SortFunc(left, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	rp.reportAll(j, left, upgrade.OutcomeFailed, upgrade.ReasonInternal, cause)
}

// unreachable lists the jobs whose every result is an infrastructure
// failure: the invocation fails, so FC's retries and its onFailure
// destination see it. A job with nothing to do, or with some gateways
// settled, is not one.
func (rp *reporter) unreachable() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []string
	for i, jo := range rp.jobs {
		if jo.results > 0 && jo.unreachable == jo.results {
			out = append(out, fmt.Sprintf("request %d: every one of its %d results says a service could not be reached", i+1, jo.results))
		}
	}
	return out
}

// tally returns the counts and the results so far, sorted by region,
// gateway and version type.
func (rp *reporter) tally() (upgrade.Counts, []upgrade.Result) {
	rp.mu.Lock()
	rp.counts.Scanned = len(rp.scanned) + rp.handed
	counts, results := rp.counts, slices.Clone(rp.results)
	rp.mu.Unlock()
	// Field by field: joining the keys allocated two strings a comparison,
	// 15 MB of a 100,000-gateway planner's last moments.
	slices.SortStableFunc(results, func(a, b upgrade.Result) int {
		return cmp.Or(strings.Compare(a.RegionID, b.RegionID), strings.Compare(a.SmartAGID, b.SmartAGID),
			strings.Compare(string(a.VersionType), string(b.VersionType)))
	})
	return counts, results
}

// infrastructureFailure reports whether a result says a service the run
// needs could not be reached: the ledger, the work queue, a region's
// listing, or SAG itself (no answer, a server error that outlasted the
// retries).
func infrastructureFailure(res upgrade.Result) bool {
	switch res.Reason {
	case upgrade.ReasonLedgerDown, upgrade.ReasonListFailed, upgrade.ReasonQueueDown:
		return true
	case upgrade.ReasonAPIError: // a read; an update that may have acted is unconfirmed, and a retry of the invocation must not call again
		return res.Outcome == upgrade.OutcomeFailed &&
			(res.ErrorCode == "" || res.ErrorCode == "NoAnswer" || slices.Contains(transientCodes, res.ErrorCode))
	}
	return false
}

// The results of what happened, as the stages make them.

func skipped(res upgrade.Result, reason string) upgrade.Result {
	res.Outcome, res.Reason = upgrade.OutcomeSkipped, reason
	return res
}

func deferred(res upgrade.Result, reason string) upgrade.Result {
	res.Outcome, res.Reason = upgrade.OutcomeDeferred, reason
	return res
}

// readFailure turns a failed read into an outcome.
func readFailure(res upgrade.Result, err error) upgrade.Result {
	applyError(&res, err)
	var ae *APIError
	errors.As(err, &ae)
	switch {
	case errors.Is(err, errDeadline):
		return deferred(res, upgrade.ReasonDeadline)
	case classify(err) == throttled:
		return deferred(res, upgrade.ReasonThrottled)
	case ae != nil && ae.Code == "SmartAccessGatewayNotOnline":
		return skipped(res, upgrade.ReasonOffline)
	case classify(err) == laterRun:
		return deferred(res, upgrade.ReasonTryLater)
	}
	res.Outcome, res.Reason = upgrade.OutcomeFailed, upgrade.ReasonAPIError
	return res
}

// applyError puts an API failure's text and code in a result.
func applyError(res *upgrade.Result, err error) {
	if errors.Is(err, errDeadline) {
		return
	}
	res.Error = err.Error()
	var ae *APIError
	if errors.As(err, &ae) {
		res.ErrorCode = ae.Code
		if res.ErrorCode == "" && ae.NoAnswer {
			res.ErrorCode = "NoAnswer"
		}
	}
}
