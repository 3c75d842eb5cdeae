package handler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// rolloutKey names a rollout: one version of one version type to one
// hardware model.
type rolloutKey struct {
	vt     events.VersionType
	model  string
	target string
}

func (k rolloutKey) id() string {
	return fmt.Sprintf("rollout#%s#%s#%s", k.vt, k.model, k.target)
}

// rolloutDoc is a rollout's stored state (a ledger document).
type rolloutDoc struct {
	VersionType     events.VersionType `json:"versionType"`
	Model           string             `json:"model"`
	Target          string             `json:"targetVersion"`
	Wave            int                `json:"wave"`      // 0: the canary
	Allocated       int                `json:"allocated"` // gateways let in so far, across runs
	Population      int                `json:"population"`
	WaveStartedAt   time.Time          `json:"waveStartedAt"`
	WaveVerifiedAt  time.Time          `json:"waveVerifiedAt,omitzero"` // the soak counts from here
	Breaker         string             `json:"breaker"`                 // "closed" or "open"
	BreakerOpenedAt time.Time          `json:"breakerOpenedAt,omitzero"`
	BreakerReason   string             `json:"breakerReason,omitempty"`
	// Finished and failed upgrades an operator acknowledged by a reset: the
	// breaker counts only what came after.
	BaseFinished int       `json:"baseFinished"`
	BaseFailed   int       `json:"baseFailed"`
	ResetAt      time.Time `json:"resetAt,omitzero"`
	Done         bool      `json:"done"`
}

// rolloutStats are a rollout's numbers, counted from the gateways' records.
type rolloutStats struct {
	started, inFlight, verified, failed int
}

func (s rolloutStats) finished() int { return s.verified + s.failed }

// rollouts is a run's view of its rollouts: documents and numbers, read once.
type rollouts struct {
	r     *run
	mu    sync.Mutex
	stats map[rolloutKey]rolloutStats
	seen  map[rolloutKey]events.Rollout // for the report
	fresh map[rolloutKey]int            // candidates of this run that had not started each rollout
}

// admitted adds gateways this run let into a rollout to its numbers: they
// are in flight from now, so a later chunk does not take the wave for done.
func (ro *rollouts) admitted(k rolloutKey, n int) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if n == 0 || ro.stats == nil {
		return
	}
	st := ro.stats[k]
	st.inFlight += n
	ro.stats[k] = st
}

func (ro *rollouts) sawFresh(k rolloutKey) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.fresh == nil {
		ro.fresh = map[rolloutKey]int{}
	}
	ro.fresh[k]++
}

// load counts every rollout's numbers from the ledger's records.
func (ro *rollouts) load(ctx context.Context) error {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.stats != nil {
		return nil
	}
	recs, err := store(ctx, ro.r.lcall, func(ctx context.Context) ([]Record, error) {
		return ro.r.ledger.Scan(ctx, StateClaimed, StateRequested, StateVerified, StateUnverified, StateFailed)
	})
	if err != nil {
		return err
	}
	ro.stats = map[rolloutKey]rolloutStats{}
	for _, rec := range recs {
		k := rolloutKey{rec.VersionType, rec.Model, rec.Target}
		s := ro.stats[k]
		s.started++
		switch rec.State {
		case StateClaimed, StateRequested:
			s.inFlight++
		case StateVerified:
			s.verified++
		default:
			s.failed++
		}
		ro.stats[k] = s
	}
	return nil
}

// cap is how many gateways the wave lets in, of a population.
func (r *run) waveCap(wave, population int) int {
	cap := r.cfg.RolloutCanary
	for i := 1; i <= wave && i <= len(r.cfg.RolloutWaves); i++ {
		cap = max(cap+1, int(math.Ceil(r.cfg.RolloutWaves[i-1]*float64(population))))
	}
	// The population may be only a lower bound (a batch sees its own
	// gateways): never cap a wave below the canary on it.
	return min(cap, max(population, r.cfg.RolloutCanary))
}

func (r *run) lastWave() int { return len(r.cfg.RolloutWaves) }

// decision is what a rollout lets a run do.
type decision struct {
	allow  int    // new gateways the run may start
	reason string // why the rest wait ("" when none wait)
	detail string
	force  bool // the breaker is open but force lets candidates through
}

// admit decides how many new gateways of a rollout a chunk of this run may
// start (want asks), and takes them from the wave's allowance. It evaluates
// the breaker and the waves first, publishing each transition. A dry run
// decides the same way but writes nothing. Wave sizes are shares of the
// population a full sweep counted last (the canary needs none).
func (ro *rollouts) admit(ctx context.Context, j job, k rolloutKey, want int) (decision, error) {
	r := ro.r
	if err := ro.load(ctx); err != nil {
		return decision{}, err
	}
	for attempt := 0; ; attempt++ {
		doc, rev, err := ro.doc(ctx, k)
		if err != nil {
			return decision{}, err
		}
		ro.mu.Lock()
		st := ro.stats[k]
		seen := ro.fresh[k]
		ro.mu.Unlock()
		// At least the gateways started and those this run has seen so far.
		doc.Population = max(doc.Population, st.started+seen)
		var transitions []string
		if rev == 0 {
			transitions = append(transitions, events.RolloutStarted)
		}
		transitions = append(transitions, r.review(&doc, st)...)

		d := decision{}
		switch {
		case doc.Breaker == "open":
			d.reason, d.detail = ReasonBreakerOpen, doc.BreakerReason
		case doc.Done:
			d.allow = want // every wave is behind it: late gateways go straight in
		default:
			cap := r.waveCap(doc.Wave, doc.Population)
			soaking := !doc.WaveVerifiedAt.IsZero()
			d.allow = max(min(want, cap-doc.Allocated), 0)
			if soaking {
				d.allow = 0
			}
			if d.allow < want {
				d.reason = ReasonWave
				d.detail = fmt.Sprintf("wave %d lets in %d of %d gateways, %d already in", doc.Wave, cap, doc.Population, doc.Allocated)
				if soaking {
					d.detail = fmt.Sprintf("wave %d was verified at %s; wave %d starts after the %v soak", doc.Wave,
						doc.WaveVerifiedAt.UTC().Format(time.RFC3339), doc.Wave+1, r.cfg.RolloutSoak)
				}
			}
			doc.Allocated += d.allow
		}
		r.log.Info().Str("rollout", k.id()).Int("wave", doc.Wave).Int("waveLimit", r.waveCap(doc.Wave, doc.Population)).
			Int("population", doc.Population).Int("allocated", doc.Allocated).Int("started", st.started).
			Int("inFlight", st.inFlight).Int("verified", st.verified).Int("failed", st.failed).
			Str("breaker", doc.Breaker).Int("candidates", want).Int("admitted", d.allow).Str("reason", d.reason).
			Str("detail", d.detail).Msg("rollout")

		if j.dryRun {
			ro.report(k, doc, st, d.detail)
			return d, nil
		}
		if err := ro.put(ctx, k, doc, rev); errors.Is(err, ErrConflict) && attempt < 5 {
			continue // another run moved the rollout: decide again on its state
		} else if err != nil {
			return decision{}, err
		}
		for _, tr := range transitions {
			ro.publish(j, k, doc, st, tr)
		}
		ro.report(k, doc, st, d.detail)
		return d, nil
	}
}

// review applies what the numbers say to a rollout: the breaker opens on too
// many failures; a wave whose upgrades are all finished is verified; after
// the soak the next wave begins; when the last wave is verified the rollout
// is done. It returns the transitions.
func (r *run) review(doc *rolloutDoc, st rolloutStats) []string {
	remaining := max(doc.Population-st.started, 0) // gateways still to start
	now := r.now()
	var out []string
	if doc.Breaker == "" {
		doc.Breaker = "closed"
		doc.WaveStartedAt = now
	}
	finished, failed := st.finished()-doc.BaseFinished, st.failed-doc.BaseFailed
	if doc.Breaker == "closed" && finished >= r.cfg.RolloutMinSample && finished > 0 &&
		float64(failed)/float64(finished) > r.cfg.RolloutMaxFailure {
		doc.Breaker, doc.BreakerOpenedAt = "open", now
		doc.BreakerReason = fmt.Sprintf("%d of %d finished upgrades failed or stayed unverified (%.0f%% > %.0f%%, sample %d ≥ %d) in wave %d",
			failed, finished, 100*float64(failed)/float64(finished), 100*r.cfg.RolloutMaxFailure, finished, r.cfg.RolloutMinSample, doc.Wave)
		out = append(out, events.RolloutBreaker)
		return out
	}
	if doc.Breaker == "open" || doc.Done {
		return out
	}
	cap := r.waveCap(doc.Wave, doc.Population)
	waveFull := doc.Allocated >= cap || remaining == 0
	if doc.WaveVerifiedAt.IsZero() && st.inFlight == 0 && st.started > 0 && waveFull {
		doc.WaveVerifiedAt = now
		out = append(out, events.RolloutVerified)
		if doc.Wave >= r.lastWave() || remaining == 0 {
			doc.Done = true
			out = append(out, events.RolloutDone)
			return out
		}
	}
	if !doc.WaveVerifiedAt.IsZero() && now.Sub(doc.WaveVerifiedAt) >= r.cfg.RolloutSoak && remaining > 0 && doc.Wave < r.lastWave() {
		doc.Wave++
		doc.WaveStartedAt, doc.WaveVerifiedAt = now, time.Time{}
		out = append(out, events.RolloutWave)
	}
	return out
}

// reviewAll reviews the rollouts of the keys after a verify run, so a
// breaker opens as soon as the failures are known, not on the next sweep.
func (ro *rollouts) reviewAll(ctx context.Context, j job, keys []rolloutKey) {
	for _, k := range keys {
		ro.mu.Lock()
		ro.stats = nil // the verifications changed the numbers
		ro.mu.Unlock()
		if err := ro.load(ctx); err != nil {
			ro.r.log.Warn().Err(err).Msg("rollouts not reviewed: ledger unreadable")
			return
		}
		for attempt := 0; attempt < 5; attempt++ {
			doc, rev, err := ro.doc(ctx, k)
			if err != nil || rev == 0 {
				break
			}
			ro.mu.Lock()
			st := ro.stats[k]
			ro.mu.Unlock()
			transitions := ro.r.review(&doc, st)
			if len(transitions) == 0 {
				ro.report(k, doc, st, doc.BreakerReason)
				break
			}
			if err := ro.put(ctx, k, doc, rev); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				ro.r.log.Warn().Err(err).Str("rollout", k.id()).Msg("rollout not updated")
				break
			}
			for _, tr := range transitions {
				ro.publish(j, k, doc, st, tr)
			}
			ro.report(k, doc, st, doc.BreakerReason)
			break
		}
	}
}

func (ro *rollouts) doc(ctx context.Context, k rolloutKey) (rolloutDoc, int64, error) {
	type got struct {
		d     Doc
		found bool
	}
	g, err := store(ctx, ro.r.lcall, func(ctx context.Context) (got, error) {
		d, found, err := ro.r.ledger.GetDoc(ctx, k.id())
		return got{d, found}, err
	})
	if err != nil {
		return rolloutDoc{}, 0, err
	}
	doc := rolloutDoc{VersionType: k.vt, Model: k.model, Target: k.target}
	if !g.found {
		return doc, 0, nil
	}
	if err := json.Unmarshal(g.d.Body, &doc); err != nil {
		return rolloutDoc{}, 0, fmt.Errorf("rollout %s: %w", k.id(), err)
	}
	return doc, g.d.Rev, nil
}

func (ro *rollouts) put(ctx context.Context, k rolloutKey, doc rolloutDoc, rev int64) error {
	body, _ := json.Marshal(doc)
	_, err := store(ctx, ro.r.lcall, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ro.r.ledger.PutDoc(ctx, Doc{ID: k.id(), Rev: rev + 1, Body: body})
	})
	return err
}

func (ro *rollouts) status(k rolloutKey, doc rolloutDoc, st rolloutStats, reason string) events.Rollout {
	rate := 0.0
	if f := st.finished(); f > 0 {
		rate = float64(st.failed) / float64(f)
	}
	return events.Rollout{ID: k.id(), VersionType: k.vt, Model: k.model, Target: k.target, Wave: doc.Wave,
		WaveLimit: ro.r.waveCap(doc.Wave, doc.Population), Population: max(doc.Population, doc.Allocated), Started: st.started,
		InFlight: st.inFlight, Verified: st.verified, Failed: st.failed, FailureRate: math.Round(rate*1000) / 1000,
		LetIn: doc.Allocated, Breaker: doc.Breaker, Done: doc.Done, Reason: reason}
}

func (ro *rollouts) report(k rolloutKey, doc rolloutDoc, st rolloutStats, reason string) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.seen == nil {
		ro.seen = map[rolloutKey]events.Rollout{}
	}
	ro.seen[k] = ro.status(k, doc, st, reason)
}

func (ro *rollouts) publish(j job, k rolloutKey, doc rolloutDoc, st rolloutStats, transition string) {
	s := ro.status(k, doc, st, doc.BreakerReason)
	lvl := ro.r.log.Info()
	if transition == events.RolloutBreaker {
		lvl = ro.r.log.Error()
	}
	lvl.Str("rollout", k.id()).Str("transition", transition).Int("wave", doc.Wave).Int("waveLimit", s.WaveLimit).
		Int("population", s.Population).Int("verified", s.Verified).Int("failed", s.Failed).Float64("failureRate", s.FailureRate).
		Str("reason", doc.BreakerReason).Msg("rollout " + transition)
	ro.r.out.add(events.RolloutEvent(ro.r.out.source, j.info, s, transition, ro.r.now()))
}

// list returns the rollouts the run touched, for the report.
func (ro *rollouts) list() []events.Rollout {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	var out []events.Rollout
	for _, s := range ro.seen {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b events.Rollout) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// reset closes the breaker of the request's rollouts (every model of the
// target version), acknowledging the failures seen so far.
func (ro *rollouts) reset(ctx context.Context, j job) {
	r := ro.r
	if r.ledger == nil {
		r.record(j, events.Result{Outcome: events.OutcomeRejected, Reason: ReasonNoLedger, Error: "reset needs the ledger"}, 0)
		return
	}
	if err := ro.load(ctx); err != nil {
		r.record(j, events.Result{Outcome: events.OutcomeFailed, Reason: ReasonLedgerDown, Error: err.Error()}, 0)
		return
	}
	for _, vt := range j.types {
		docs, err := store(ctx, r.lcall, func(ctx context.Context) ([]Doc, error) {
			return r.ledger.ListDocs(ctx, fmt.Sprintf("rollout#%s#", vt))
		})
		if err != nil {
			r.record(j, events.Result{Outcome: events.OutcomeFailed, Reason: ReasonLedgerDown, Error: err.Error()}, 0)
			return
		}
		for _, d := range docs {
			var doc rolloutDoc
			if json.Unmarshal(d.Body, &doc) != nil || compareVersions(doc.Target, j.req.TargetVersion) != 0 || doc.Breaker != "open" {
				continue
			}
			k := rolloutKey{doc.VersionType, doc.Model, doc.Target}
			st := ro.stats[k]
			doc.Breaker, doc.BaseFinished, doc.BaseFailed, doc.ResetAt = "closed", st.finished(), st.failed, r.now()
			doc.BreakerReason = fmt.Sprintf("reset by %s (correlationId %q) acknowledging %d failed of %d finished",
				j.info.RunID, j.info.CorrelationID, st.failed, st.finished())
			if err := ro.put(ctx, k, doc, d.Rev); err != nil {
				r.log.Error().Err(err).Str("rollout", k.id()).Msg("rollout not reset")
				continue
			}
			r.log.Warn().Str("rollout", k.id()).Str("correlationId", j.info.CorrelationID).Msg("rollout breaker reset")
			ro.publish(j, k, doc, st, events.RolloutReset)
			ro.report(k, doc, st, doc.BreakerReason)
		}
	}
}

// countPopulation stores, after a full sweep, how many gateways each
// rollout covers: those that started it, and those this run found due.
func (ro *rollouts) countPopulation(ctx context.Context) {
	ro.mu.Lock()
	fresh := maps.Clone(ro.fresh)
	ro.mu.Unlock()
	for k, n := range fresh {
		for attempt := 0; attempt < 5; attempt++ {
			doc, rev, err := ro.doc(ctx, k)
			if err != nil || rev == 0 {
				break // a rollout nobody was let into yet starts from the next sweep's count
			}
			ro.mu.Lock()
			population := ro.stats[k].started + n
			ro.mu.Unlock()
			if doc.Population == population {
				break
			}
			doc.Population = population
			if err := ro.put(ctx, k, doc, rev); !errors.Is(err, ErrConflict) {
				break
			}
		}
	}
}

// spreadGateways orders a fleet so a wave takes gateways across regions and
// CCNs rather than one site's neighbours: round-robin over (region, CCN)
// groups, each in a stable order by a hash of the gateway id, so a run
// tomorrow picks the same canary.
func spreadGateways(fleet []Gateway) []Gateway {
	groups := map[string][]Gateway{}
	var order []string
	for _, g := range fleet {
		key := g.Region + "/" + g.CcnID
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], g)
	}
	slices.SortFunc(order, func(a, b string) int { return cmp.Compare(hash(a), hash(b)) })
	for _, key := range order {
		slices.SortFunc(groups[key], func(a, b Gateway) int { return cmp.Compare(hash(a.ID), hash(b.ID)) })
	}
	out := make([]Gateway, 0, len(fleet))
	for i := 0; len(out) < len(fleet); i++ {
		for _, key := range order {
			if i < len(groups[key]) {
				out = append(out, groups[key][i])
			}
		}
	}
	return out
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
