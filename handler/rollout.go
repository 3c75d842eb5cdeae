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

	"github.com/rs/zerolog"
	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// rolloutKey names a rollout: one version of one version type to one
// hardware model.
type rolloutKey struct {
	vt     upgrade.VersionType
	model  string
	target string
}

func (k rolloutKey) id() string {
	return fmt.Sprintf("rollout#%s#%s#%s", k.vt, k.model, k.target)
}

// rolloutDoc is a rollout's stored state (a ledger document).
type rolloutDoc struct {
	VersionType     upgrade.VersionType `json:"versionType"`
	Model           string              `json:"model"`
	Target          string              `json:"targetVersion"`
	Wave            int                 `json:"wave"`      // 0: the canary
	Allocated       int                 `json:"allocated"` // gateways let in so far, across runs
	Population      int                 `json:"population"`
	WaveStartedAt   time.Time           `json:"waveStartedAt"`
	WaveVerifiedAt  time.Time           `json:"waveVerifiedAt,omitzero"` // the soak counts from here
	Breaker         string              `json:"breaker"`                 // "closed" or "open"
	BreakerOpenedAt time.Time           `json:"breakerOpenedAt,omitzero"`
	BreakerReason   string              `json:"breakerReason,omitempty"`
	// Finished and failed upgrades an operator acknowledged by a reset: the
	// breaker counts only what came after.
	BaseFinished int       `json:"baseFinished"`
	BaseFailed   int       `json:"baseFailed"`
	ResetAt      time.Time `json:"resetAt,omitzero"`
	Done         bool      `json:"done"`
	// The rollout's numbers: its gateways' ledger records by state, kept
	// current by every run that writes one and recounted by full sweeps.
	Records map[State]int `json:"records,omitempty"`
	// Reserved counts gateways a run let in and has not settled yet: they
	// are in flight before their claims are counted.
	Reserved  int       `json:"reserved"`
	CountedAt time.Time `json:"countedAt,omitzero"`
	// An operator's pause: no update call for the rollout's gateways until
	// unpaused.
	Paused   bool      `json:"paused,omitempty"`
	PausedBy string    `json:"pausedBy,omitempty"` // the operator, run and correlation id
	PausedAt time.Time `json:"pausedAt,omitzero"`
	// ApprovedWave is the highest wave an operator let start
	// (ROLLOUT_APPROVAL=manual), and who did.
	ApprovedWave int    `json:"approvedWave,omitempty"`
	ApprovedBy   string `json:"approvedBy,omitempty"`
	// AwaitingSince is when the next wave, soaked and healthy, began to
	// wait for an approval (zero: it does not wait).
	AwaitingSince time.Time `json:"awaitingSince,omitzero"`

	// Regions are the rollout's numbers by region, kept when regions have
	// windows of their own (MAINTENANCE_WINDOWS): each region's window lets
	// in its share of a wave, in proportion to its gateways, so the first
	// window to open does not take the whole wave.
	Regions map[string]regionCount `json:"regions,omitempty"`

	rev int64 // the ledger revision it was read at, or written as
}

// regionCount is a rollout's numbers in one region.
type regionCount struct {
	// Fresh: gateways due that had not started it, as the last full sweep
	// of the region counted; Below: those below its version, as the last
	// planner counted (population = started + fresh = below + verified).
	Fresh int `json:"fresh"`
	Below int `json:"below"`
	LetIn int `json:"letIn"` // gateways let in so far
}

// shared reports whether a wave's allowance is shared among regions.
func (ro *rollouts) shared() bool { return len(ro.cfg.Windows) > 0 }

// regionShare is how many of a wave's cap gateways a region may let in: its
// part of the model's gateways, rounded up (all of it when the sizes are
// unknown).
func regionShare(cap int, sizes map[string]int, region string) int {
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total == 0 {
		return cap
	}
	return int(math.Ceil(float64(cap) * float64(sizes[region]) / float64(total)))
}

// stats are the rollout's numbers from its document.
func (d rolloutDoc) stats() rolloutStats {
	c := d.Records
	return rolloutStats{
		started:  c[StateClaimed] + c[StateRequested] + c[StateVerified] + c[StateUnverified] + c[StateFailed],
		inFlight: c[StateClaimed] + c[StateRequested] + max(d.Reserved, 0),
		verified: c[StateVerified],
		failed:   c[StateFailed] + c[StateUnverified],
	}
}

// rolloutStats are a rollout's numbers.
type rolloutStats struct {
	started, inFlight, verified, failed int
}

func (s rolloutStats) finished() int { return s.verified + s.failed }

// transition is a rollout's move and its numbers as it moved: the write
// that moves it may change them after (a chunk's retry let in once its wave
// is verified), and the move's event tells what made it.
type transition struct {
	name string
	doc  rolloutDoc
}

func transitionOf(name string, doc *rolloutDoc) transition {
	return transition{name, doc.clone()}
}

// clone is a copy of the document that shares none of its maps.
func (d rolloutDoc) clone() rolloutDoc {
	d.Records, d.Regions = maps.Clone(d.Records), maps.Clone(d.Regions)
	return d
}

// rollouts is a run's view of its rollouts. The numbers live in each
// rollout's document; the run tallies how its record writes move gateways
// between (rollout, state) and folds the tally into the document whenever it
// writes it anyway, so no run but a full sweep ever scans the ledger.
type rollouts struct {
	ledger  Ledger
	lcall   *caller
	cfg     Config // RolloutCanary, RolloutWaves, RolloutSoak, RolloutMinSample, RolloutMaxFailure
	now     func() time.Time
	log     zerolog.Logger
	publish func(events.CloudEvent) // a transition's event
	source  string                  // the events' source

	mu    sync.Mutex
	moves map[rolloutKey]map[State]int // record moves not yet in the documents
	base  map[rolloutKey]int           // gateways started when the run first saw each rollout
	fresh map[rolloutKey]int           // candidates of this run that had not started each rollout
	// freshIn is fresh by region.
	freshIn map[rolloutKey]map[string]int
	// sizes are each model's gateways by region (MAINTENANCE_WINDOWS): a
	// region's share of a wave.
	sizes     map[string]map[string]int
	sizesRead bool                           // sizes are this run's count, or the ledger's
	seen      map[rolloutKey]upgrade.Rollout // for the report
	// A dry run writes no document, but its chunks see what the ones
	// before them let in, as they would in the ledger: dry holds what it
	// would have written, and its writes take turns.
	dryMu sync.Mutex
	dry   map[rolloutKey]rolloutDoc
}

func keyOf(rec Record) rolloutKey { return rolloutKey{rec.VersionType, rec.Model, rec.Target} }

// moved notes that a record went from prev (nil: none) to next.
func (ro *rollouts) moved(prev *Record, next Record) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.moves == nil {
		ro.moves = map[rolloutKey]map[State]int{}
	}
	add := func(rec Record, n int) {
		if rec.State == StateReleased || rec.Target == "" {
			return
		}
		k := keyOf(rec)
		if ro.moves[k] == nil {
			ro.moves[k] = map[State]int{}
		}
		ro.moves[k][rec.State] += n
	}
	if prev != nil {
		add(*prev, -1)
	}
	add(next, 1)
}

// takeMoves hands the moves of a rollout not yet written to one update:
// two updates at once must not both fold them in (the second may read the
// document the first just wrote, before the first has heard back).
func (ro *rollouts) takeMoves(k rolloutKey) map[State]int {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	m := ro.moves[k]
	delete(ro.moves, k)
	return m
}

// giveBack returns moves an update did not write, for the next one.
func (ro *rollouts) giveBack(k rolloutKey, moves map[State]int) {
	if len(moves) == 0 {
		return
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.moves == nil {
		ro.moves = map[rolloutKey]map[State]int{}
	}
	if ro.moves[k] == nil {
		ro.moves[k] = map[State]int{}
	}
	for st, n := range moves {
		ro.moves[k][st] += n
		if ro.moves[k][st] == 0 {
			delete(ro.moves[k], st)
		}
	}
}

func (ro *rollouts) sawFresh(k rolloutKey, region string) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.fresh == nil {
		ro.fresh, ro.freshIn = map[rolloutKey]int{}, map[rolloutKey]map[string]int{}
	}
	ro.fresh[k]++
	if ro.freshIn[k] == nil {
		ro.freshIn[k] = map[string]int{}
	}
	ro.freshIn[k][region]++
}

// update reads a rollout's document, folds the run's moves into it, lets
// change modify it (returning the transitions), and writes it back under the
// revision rule, trying again on a conflict. A dry run writes nothing to
// the ledger: it keeps the document for its own later updates (ro.dry). A
// rollout without a document is created only when create says so.
func (ro *rollouts) update(ctx context.Context, j job, k rolloutKey, create bool, change func(doc *rolloutDoc) []transition) (rolloutDoc, error) {
	if j.dryRun {
		ro.dryMu.Lock()
		defer ro.dryMu.Unlock()
	}
	moves := ro.takeMoves(k)
	var early map[State]int // moves the document could not take yet
	written := false
	defer func() {
		if !written {
			ro.giveBack(k, moves)
		} else {
			ro.giveBack(k, early)
		}
	}()
	for attempt := 0; ; attempt++ {
		doc, rev, err := ro.current(ctx, j, k)
		if err != nil {
			return doc, err
		}
		if rev == 0 && !create {
			return doc, nil
		}
		if doc.Records == nil {
			doc.Records = map[State]int{}
		}
		before := doc.stats().started
		early = nil
		for st, n := range moves {
			// A gateway's move out of a state can come before its move in,
			// which a concurrent update took first and has not written yet:
			// the rest waits for a later update. Floored at zero instead, the
			// count would keep the gateway in flight until a recount.
			if below := doc.Records[st] + n; below < 0 {
				if early == nil {
					early = map[State]int{}
				}
				early[st], n = below, n-below
			}
			doc.Records[st] += n
		}
		ro.mu.Lock()
		if _, ok := ro.base[k]; !ok {
			if ro.base == nil {
				ro.base = map[rolloutKey]int{}
			}
			// The first update of a run to get here read a document none of
			// the run's updates had written: its count before this update's
			// moves is the count before the run. (Its claims alone would
			// miss a move out of "claimed" whose claim another update holds.)
			ro.base[k] = before
		}
		ro.mu.Unlock()
		transitions := change(&doc)
		if j.dryRun {
			if ro.dry == nil {
				ro.dry = map[rolloutKey]rolloutDoc{}
			}
			d := doc.clone()
			d.rev = rev + 1 // as if written
			ro.dry[k] = d
			written = true
			ro.report(k, doc, doc.BreakerReason)
			return doc, nil
		}
		if err := ro.put(ctx, k, doc, rev); errors.Is(err, ErrConflict) && attempt < 5 {
			continue // another run moved the rollout: start again from its state
		} else if err != nil {
			return doc, err
		}
		written = true
		doc.rev = rev + 1
		for _, tr := range transitions {
			ro.announce(j, k, tr.doc, tr.name)
		}
		return doc, nil
	}
}

// recount sets every rollout's numbers from the ledger's records: one scan, by
// full sweeps only (the nightly planner), which also mends what a crashed run
// left uncounted.
func (ro *rollouts) recount(ctx context.Context, j job) {
	recs, err := retrying(ctx, ro.lcall, func(ctx context.Context) ([]Record, error) {
		return ro.ledger.Scan(ctx, StateClaimed, StateRequested, StateVerified, StateUnverified, StateFailed)
	})
	if err != nil {
		ro.log.Warn().Err(err).Msg("rollout numbers not recounted")
		return
	}
	counts := map[rolloutKey]map[State]int{}
	started := map[rolloutKey]map[string]int{} // by region
	for _, rec := range recs {
		k := keyOf(rec)
		if counts[k] == nil {
			counts[k], started[k] = map[State]int{}, map[string]int{}
		}
		counts[k][rec.State]++
		started[k][rec.Region]++ // every state scanned has started the rollout
	}
	for k, c := range counts {
		_, err := ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
			doc.Records, doc.Reserved, doc.CountedAt = c, 0, ro.now()
			doc.Allocated = doc.stats().started
			if ro.shared() {
				doc.Regions = recountRegions(doc.Regions, started[k])
			}
			return nil
		})
		if err != nil {
			ro.log.Warn().Err(err).Str("rollout", k.id()).Msg("rollout numbers not recounted")
		}
		ro.mu.Lock()
		if ro.base == nil {
			ro.base = map[rolloutKey]int{}
		}
		ro.base[k] = rolloutDoc{Records: c}.stats().started
		ro.mu.Unlock()
	}
}

// recountRegions sets what each region let in to its gateways that
// started the rollout, from a scan of the ledger.
func recountRegions(old map[string]regionCount, started map[string]int) map[string]regionCount {
	out := map[string]regionCount{}
	for region, rc := range old {
		rc.LetIn = 0
		out[region] = rc
	}
	for region, n := range started {
		rc := out[region]
		rc.LetIn = n
		out[region] = rc
	}
	return out
}

// cap is how many gateways the wave lets in, of a population.
func (ro *rollouts) waveCap(wave, population int) int {
	cap := ro.cfg.RolloutCanary
	for i := 1; i <= wave && i <= len(ro.cfg.RolloutWaves); i++ {
		cap = max(cap+1, int(math.Ceil(ro.cfg.RolloutWaves[i-1]*float64(population))))
	}
	// The population may be only a lower bound (a batch sees its own
	// gateways): never cap a wave below the canary on it.
	return min(cap, max(population, ro.cfg.RolloutCanary))
}

func (ro *rollouts) lastWave() int { return len(ro.cfg.RolloutWaves) }

// decision is what a rollout lets a run do.
type decision struct {
	allow  int    // new gateways the run may start
	reason string // why the rest wait ("" when none wait)
	detail string
}

// holdsAll reports whether the rollout holds back its retries too: it is
// paused, or its breaker is open.
func (d decision) holdsAll() bool {
	return d.reason == upgrade.ReasonPaused || d.reason == upgrade.ReasonBreakerOpen
}

func pausedDetail(doc rolloutDoc) string {
	return fmt.Sprintf("rollout %s %s to %s paused by %s at %s", doc.VersionType, doc.Model, doc.Target, doc.PausedBy,
		doc.PausedAt.UTC().Format(time.RFC3339))
}

func awaitingDetail(doc rolloutDoc) string {
	state := fmt.Sprintf("wave %d is full", doc.Wave)
	switch {
	case !doc.AwaitingSince.IsZero():
		state = fmt.Sprintf("wave %d soaked and is healthy (since %s)", doc.Wave, doc.AwaitingSince.UTC().Format(time.RFC3339))
	case !doc.WaveVerifiedAt.IsZero():
		state = fmt.Sprintf("wave %d is soaking", doc.Wave)
	}
	return fmt.Sprintf("%s: wave %d waits for an operator's approval (sagctl approve --type %s --model %s --target %s --wave %d)",
		state, doc.Wave+1, doc.VersionType, doc.Model, doc.Target, doc.Wave+1)
}

// admit decides how many new gateways of a rollout a chunk of this run may
// start (fresh asks; retries of gateways already in it need no allowance),
// and takes them from the wave's allowance. It reviews the rollout first,
// publishing each transition. Wave sizes are shares of the population a
// full sweep counted last (the canary needs none).
func (ro *rollouts) admit(ctx context.Context, j job, k rolloutKey, region string, fresh, retries int) (decision, error) {
	var d decision
	var sizes map[string]int
	if ro.shared() && region != "" {
		sizes = ro.sizesOf(ctx, k.model)
	}
	_, err := ro.update(ctx, j, k, true, func(doc *rolloutDoc) []transition {
		d = decision{}
		var transitions []transition
		if doc.Breaker == "" {
			transitions = append(transitions, transitionOf(events.RolloutStarted, doc))
		}
		ro.mu.Lock()
		seen := ro.fresh[k]
		base := ro.base[k]
		ro.mu.Unlock()
		// At least the gateways started before this run and those it has
		// seen so far.
		doc.Population = max(doc.Population, base+seen)
		transitions = append(transitions, ro.review(doc)...)
		st := doc.stats()
		switch {
		case doc.Paused:
			d.reason, d.detail = upgrade.ReasonPaused, pausedDetail(*doc)
		case doc.Breaker == "open":
			d.reason, d.detail = upgrade.ReasonBreakerOpen, doc.BreakerReason
		case doc.Done:
			d.allow = fresh // every wave is behind it: late gateways go straight in
		default:
			cap := ro.waveCap(doc.Wave, doc.Population)
			soaking := !doc.WaveVerifiedAt.IsZero()
			d.allow = max(min(fresh, cap-doc.Allocated), 0)
			if soaking {
				d.allow = 0
			}
			if d.allow < fresh {
				d.reason = upgrade.ReasonWave
				d.detail = fmt.Sprintf("wave %d lets in %d of %d gateways, %d already in", doc.Wave, cap, doc.Population, doc.Allocated)
				switch {
				case !doc.AwaitingSince.IsZero():
					d.reason, d.detail = upgrade.ReasonAwaitingApproval, awaitingDetail(*doc)
				case soaking:
					d.detail = fmt.Sprintf("wave %d was verified at %s; wave %d starts after the %v soak", doc.Wave,
						doc.WaveVerifiedAt.UTC().Format(time.RFC3339), doc.Wave+1, ro.cfg.RolloutSoak)
					if ro.cfg.Manual() && doc.ApprovedWave <= doc.Wave {
						d.detail += " and an operator's approval"
					}
				}
			}
		}
		if ro.shared() && region != "" && !doc.Done && d.allow > 0 {
			// The region's share of the wave: a window that opens first
			// takes its part, not the whole wave.
			cap, rc := ro.waveCap(doc.Wave, doc.Population), doc.Regions[region]
			share := regionShare(cap, sizes, region)
			if room := max(share-rc.LetIn, 0); room < d.allow {
				d.allow, d.reason = room, upgrade.ReasonWave
				d.detail = fmt.Sprintf("%s's share of wave %d is %d of %d (%d of the model's gateways are in its region; %v), %d already in",
					region, doc.Wave, share, cap, sizes[region], sizes, rc.LetIn)
			}
		}
		if !d.holdsAll() {
			doc.Allocated += d.allow
			doc.Reserved += d.allow + retries
			if ro.shared() && region != "" {
				if doc.Regions == nil {
					doc.Regions = map[string]regionCount{}
				}
				rc := doc.Regions[region]
				rc.LetIn += d.allow
				doc.Regions[region] = rc
			}
		}
		ro.log.Info().Str("rollout", k.id()).Int("wave", doc.Wave).Int("waveLimit", ro.waveCap(doc.Wave, doc.Population)).
			Int("population", doc.Population).Int("allocated", doc.Allocated).Int("started", st.started).
			Int("inFlight", st.inFlight).Int("verified", st.verified).Int("failed", st.failed).
			Str("breaker", doc.Breaker).Int("candidates", fresh).Int("retries", retries).Int("admitted", d.allow).
			Str("reason", d.reason).Str("detail", d.detail).Msg("rollout")
		ro.report(k, *doc, d.detail)
		return transitions
	})
	return d, err
}

// gated says what holds a rollout's gateways back whatever force says: a
// pause (all of them), or a wave that waits for an operator's approval (its
// fresh gateways). It reads the rollout, uncached, and writes nothing.
func (ro *rollouts) gated(ctx context.Context, k rolloutKey) (decision, error) {
	doc, rev, err := ro.doc(ctx, k)
	switch {
	case err != nil || rev == 0:
		return decision{}, err
	case doc.Paused:
		return decision{reason: upgrade.ReasonPaused, detail: pausedDetail(doc)}, nil
	case ro.awaits(doc):
		return decision{reason: upgrade.ReasonAwaitingApproval, detail: awaitingDetail(doc)}, nil
	}
	return decision{}, nil
}

// paused says why a rollout is paused ("" when it is not), read uncached
// right before an update call, as the kill switch is.
func (ro *rollouts) paused(ctx context.Context, k rolloutKey) (string, error) {
	doc, _, err := ro.doc(ctx, k)
	if err != nil || !doc.Paused {
		return "", err
	}
	return pausedDetail(doc), nil
}

// awaits reports whether a rollout's next wave waits for an approval: with
// ROLLOUT_APPROVAL=manual, once the current wave is full or verified and
// until the next one is approved.
func (ro *rollouts) awaits(doc rolloutDoc) bool {
	if !ro.cfg.Manual() || doc.Done || doc.Wave >= ro.lastWave() || doc.ApprovedWave > doc.Wave {
		return false
	}
	return !doc.WaveVerifiedAt.IsZero() || doc.Allocated >= ro.waveCap(doc.Wave, doc.Population)
}

// release folds a chunk's calls into a rollout: its reservations end (the
// claims it made are counted as records now), and the fresh gateways it let
// in but did not start give their allowance back.
func (ro *rollouts) release(ctx context.Context, j job, k rolloutKey, region string, admitted, unusedFresh int) {
	_, err := ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
		doc.Reserved = max(doc.Reserved-admitted, 0)
		doc.Allocated = max(doc.Allocated-unusedFresh, 0)
		if rc, ok := doc.Regions[region]; ok {
			rc.LetIn = max(rc.LetIn-unusedFresh, 0)
			doc.Regions[region] = rc
		}
		transitions := ro.review(doc)
		ro.report(k, *doc, doc.BreakerReason)
		return transitions
	})
	if err != nil {
		ro.log.Warn().Err(err).Str("rollout", k.id()).Msg("rollout not released; the next full sweep recounts it")
	}
}

// review applies what the numbers say to a rollout: the breaker opens on too
// many failures; a wave whose upgrades are all finished is verified; after
// the soak the next wave begins; when the last wave is verified the rollout
// is done. It returns the transitions.
func (ro *rollouts) review(doc *rolloutDoc) []transition {
	st := doc.stats()
	remaining := max(doc.Population-st.started, 0) // gateways still to start
	now := ro.now()
	var out []transition
	if doc.Breaker == "" {
		doc.Breaker = "closed"
		doc.WaveStartedAt = now
	}
	finished, failed := st.finished()-doc.BaseFinished, st.failed-doc.BaseFailed
	// The rate counts upgrades still in flight as not failed (yet): a refused
	// call finishes at once while an accepted one takes minutes to verify, so
	// a rate over the finished ones alone would, mid-wave, weigh the quick
	// refusals against only the few upgrades already verified. Once the wave
	// has finished the two rates are the same.
	judged := finished + st.inFlight
	if doc.Breaker == "closed" && finished >= ro.cfg.RolloutMinSample && finished > 0 &&
		float64(failed)/float64(judged) > ro.cfg.RolloutMaxFailure {
		doc.Breaker, doc.BreakerOpenedAt = "open", now
		doc.BreakerReason = fmt.Sprintf("%d of %d started upgrades failed or stayed unverified (%.0f%% > %.0f%%; %d finished ≥ sample %d, %d in flight) in wave %d",
			failed, judged, 100*float64(failed)/float64(judged), 100*ro.cfg.RolloutMaxFailure, finished, ro.cfg.RolloutMinSample, st.inFlight, doc.Wave)
		out = append(out, transitionOf(events.RolloutBreaker, doc))
		return out
	}
	if doc.Breaker == "open" || doc.Done {
		return out
	}
	cap := ro.waveCap(doc.Wave, doc.Population)
	waveFull := doc.Allocated >= cap || remaining == 0
	if doc.WaveVerifiedAt.IsZero() && st.inFlight == 0 && st.started > 0 && waveFull {
		doc.WaveVerifiedAt = now
		out = append(out, transitionOf(events.RolloutVerified, doc))
		if doc.Wave >= ro.lastWave() || remaining == 0 {
			doc.Done = true
			out = append(out, transitionOf(events.RolloutDone, doc))
			return out
		}
	}
	if doc.Paused {
		return out // a paused rollout's waves wait too
	}
	if !doc.WaveVerifiedAt.IsZero() && now.Sub(doc.WaveVerifiedAt) >= ro.cfg.RolloutSoak && remaining > 0 && doc.Wave < ro.lastWave() {
		if ro.cfg.Manual() && doc.ApprovedWave <= doc.Wave {
			// Soaked and healthy: the next wave waits for an operator.
			if doc.AwaitingSince.IsZero() {
				doc.AwaitingSince = now
				out = append(out, transitionOf(events.RolloutAwaiting, doc))
			}
			return out
		}
		doc.Wave++
		doc.WaveStartedAt, doc.WaveVerifiedAt, doc.AwaitingSince = now, time.Time{}, time.Time{}
		out = append(out, transitionOf(events.RolloutWave, doc))
	}
	return out
}

// reviewAll writes the run's remaining moves into their rollouts and
// reviews them, so a breaker opens as soon as the failures are known, not on
// the next sweep.
func (ro *rollouts) reviewAll(ctx context.Context, j job) {
	ro.mu.Lock()
	var keys []rolloutKey
	for k, m := range ro.moves {
		if len(m) > 0 {
			keys = append(keys, k)
		}
	}
	ro.mu.Unlock()
	slices.SortFunc(keys, func(a, b rolloutKey) int { return strings.Compare(a.id(), b.id()) })
	for _, k := range keys {
		_, err := ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
			transitions := ro.review(doc)
			ro.report(k, *doc, doc.BreakerReason)
			return transitions
		})
		if err != nil {
			ro.log.Warn().Err(err).Str("rollout", k.id()).Msg("rollout not reviewed; the next full sweep recounts it")
		}
	}
}

// current is the rollout's document as update starts from it: a dry run's
// own, once it has one (ro.dryMu is held), else the ledger's.
func (ro *rollouts) current(ctx context.Context, j job, k rolloutKey) (rolloutDoc, int64, error) {
	if j.dryRun {
		if d, ok := ro.dry[k]; ok {
			return d.clone(), d.rev, nil
		}
	}
	return ro.doc(ctx, k)
}

func (ro *rollouts) doc(ctx context.Context, k rolloutKey) (rolloutDoc, int64, error) {
	d, found, err := getDoc(ctx, ro.ledger, ro.lcall, k.id())
	if err != nil {
		return rolloutDoc{}, 0, err
	}
	doc := rolloutDoc{VersionType: k.vt, Model: k.model, Target: k.target}
	if !found {
		return doc, 0, nil
	}
	if err := decodeRollout(k.id(), d.Body, &doc); err != nil {
		return rolloutDoc{}, 0, err
	}
	doc.rev = d.Rev
	return doc, d.Rev, nil
}

func (ro *rollouts) put(ctx context.Context, k rolloutKey, doc rolloutDoc, rev int64) error {
	body, _ := json.Marshal(doc)
	return putDoc(ctx, ro.ledger, ro.lcall, Doc{ID: k.id(), Rev: rev + 1, Body: body})
}

func (ro *rollouts) status(k rolloutKey, doc rolloutDoc, reason string) upgrade.Rollout {
	st := doc.stats()
	rate := 0.0
	if f := st.finished(); f > 0 {
		rate = float64(st.failed) / float64(f)
	}
	s := upgrade.Rollout{ID: k.id(), VersionType: k.vt, Model: k.model, Target: k.target, Wave: doc.Wave,
		WaveLimit: ro.waveCap(doc.Wave, doc.Population), Population: max(doc.Population, doc.Allocated), Started: st.started,
		InFlight: st.inFlight, Verified: st.verified, Failed: st.failed, FailureRate: math.Round(rate*1000) / 1000,
		LetIn: doc.Allocated, Breaker: doc.Breaker, Done: doc.Done, Reason: reason,
		Paused: doc.Paused, PausedBy: doc.PausedBy, ApprovedWave: doc.ApprovedWave, NextWaveAt: ro.nextWaveAt(doc)}
	if !doc.AwaitingSince.IsZero() {
		s.AwaitingApproval = doc.Wave + 1
	}
	return s
}

// nextWaveAt is when the rollout's next wave may start: its soak's end
// (zero when the wave is not verified yet, or none follows).
func (ro *rollouts) nextWaveAt(doc rolloutDoc) time.Time {
	if doc.WaveVerifiedAt.IsZero() || doc.Done || doc.Wave >= ro.lastWave() {
		return time.Time{}
	}
	return doc.WaveVerifiedAt.Add(ro.cfg.RolloutSoak)
}

func (ro *rollouts) report(k rolloutKey, doc rolloutDoc, reason string) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.seen == nil {
		ro.seen = map[rolloutKey]upgrade.Rollout{}
	}
	ro.seen[k] = ro.status(k, doc, reason)
}

// announce logs a rollout's transition and publishes its event.
func (ro *rollouts) announce(j job, k rolloutKey, doc rolloutDoc, transition string) {
	s := ro.status(k, doc, doc.BreakerReason)
	lvl := ro.log.Info()
	if transition == events.RolloutBreaker {
		lvl = ro.log.Error()
	}
	lvl.Str("rollout", k.id()).Str("transition", transition).Int("wave", doc.Wave).Int("waveLimit", s.WaveLimit).
		Int("population", s.Population).Int("verified", s.Verified).Int("failed", s.Failed).Float64("failureRate", s.FailureRate).
		Str("reason", doc.BreakerReason).Msg("rollout " + transition)
	ro.publish(events.RolloutEvent(ro.source, j.info, s, transition, ro.now()))
}

// list returns the rollouts the run touched, for the report.
func (ro *rollouts) list() []upgrade.Rollout {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	var out []upgrade.Rollout
	for _, s := range ro.seen {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b upgrade.Rollout) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// countPopulation stores, after a full sweep, how many gateways each
// rollout covers: those that had started it, and those this run found due.
func (ro *rollouts) countPopulation(ctx context.Context, j job) {
	ro.mu.Lock()
	fresh := maps.Clone(ro.fresh)
	ro.mu.Unlock()
	for k, n := range fresh {
		_, err := ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
			ro.mu.Lock()
			defer ro.mu.Unlock()
			if !ro.shared() {
				doc.Population = ro.base[k] + n
				return nil
			}
			// By region: those of the regions this sweep listed (the others
			// keep what their own sweeps counted).
			if doc.Regions == nil {
				doc.Regions = map[string]regionCount{}
			}
			fresh := 0
			for _, region := range j.regions {
				rc := doc.Regions[region]
				rc.Fresh = ro.freshIn[k][region]
				doc.Regions[region] = rc
			}
			for _, rc := range doc.Regions {
				fresh += rc.Fresh
			}
			doc.Population = ro.base[k] + fresh
			return nil
		})
		if err != nil {
			ro.log.Warn().Err(err).Str("rollout", k.id()).Msg("rollout population not stored")
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

// planPopulations sets, for every firmware rollout under way, how many
// gateways it covers: those of its model still below its version (counted
// by countBelow) and those verified on it. Batches see only their own
// gateways; the planner sees the fleet.
func (ro *rollouts) planPopulations(ctx context.Context, j job, countBelow func(ctx context.Context, model, target string) (map[string]int, error)) {
	docs, err := retrying(ctx, ro.lcall, func(ctx context.Context) ([]Doc, error) {
		return ro.ledger.ListDocs(ctx, "rollout#"+string(upgrade.VersionDevice)+"#")
	})
	if err != nil {
		ro.log.Warn().Err(err).Msg("rollout populations not counted")
		return
	}
	for _, d := range docs {
		var doc rolloutDoc
		if err := decodeRollout(d.ID, d.Body, &doc); err != nil {
			ro.log.Warn().Err(err).Msg("rollout population not counted")
			continue
		}
		if doc.Done {
			continue
		}
		below, err := countBelow(ctx, doc.Model, doc.Target)
		if err != nil {
			ro.log.Warn().Err(err).Str("rollout", d.ID).Msg("rollout population not counted")
			continue
		}
		k := rolloutKey{doc.VersionType, doc.Model, doc.Target}
		_, err = ro.update(ctx, j, k, false, func(doc *rolloutDoc) []transition {
			total := 0
			for _, n := range below {
				total += n
			}
			doc.Population = total + doc.stats().verified
			if ro.shared() {
				// The regions this planner did not list keep their count.
				if doc.Regions == nil {
					doc.Regions = map[string]regionCount{}
				}
				for region, n := range below {
					rc := doc.Regions[region]
					rc.Below = n
					doc.Regions[region] = rc
				}
				total = 0
				for _, rc := range doc.Regions {
					total += rc.Below
				}
				doc.Population = total + doc.stats().verified
			}
			ro.log.Info().Str("rollout", d.ID).Int("population", doc.Population).Int("belowTarget", total).Msg("rollout population")
			return nil
		})
		if err != nil {
			ro.log.Warn().Err(err).Str("rollout", d.ID).Msg("rollout population not stored")
		}
	}
}

// decodeRollout reads a rollout document over doc, which holds the
// rollout's key.
func decodeRollout(id string, body []byte, doc *rolloutDoc) error {
	if err := json.Unmarshal(body, doc); err != nil {
		return fmt.Errorf("rollout document %s: %w", id, err)
	}
	bad := func(field string, v any) error {
		return fmt.Errorf("rollout document %s: %s is %v, out of range", id, field, v)
	}
	switch {
	case doc.Breaker != "" && doc.Breaker != "closed" && doc.Breaker != "open":
		return bad("breaker", fmt.Sprintf("%q", doc.Breaker))
	case doc.Wave < 0:
		return bad("wave", doc.Wave)
	case doc.Allocated < 0:
		return bad("allocated", doc.Allocated)
	case doc.Population < 0:
		return bad("population", doc.Population)
	case doc.BaseFinished < 0:
		return bad("baseFinished", doc.BaseFinished)
	case doc.BaseFailed < 0 || doc.BaseFailed > doc.BaseFinished:
		return bad("baseFailed", doc.BaseFailed)
	case doc.Reserved < 0:
		return bad("reserved", doc.Reserved)
	case doc.ApprovedWave < 0:
		return bad("approvedWave", doc.ApprovedWave)
	}
	for st, n := range doc.Records {
		if n < 0 {
			return bad("records."+string(st), n)
		}
	}
	return nil
}
