package handler

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// sagReader reads the SAG API for a run, at the run's pace and with its
// retries: listing pages, a gateway's live state, the versions it is offered.
type sagReader struct {
	sag SAG
	api *caller

	mu           sync.Mutex
	versionReads map[string]*versionRead // Versions reads of this run, by gateway and version type
	prefetch     sync.WaitGroup          // the goroutines of early reads
}

// page lists one page (from 1) of a region's gateways that pass f, and how
// many pass it in all.
func (s *sagReader) page(ctx context.Context, region string, f ListFilter, n int) ([]Gateway, int, error) {
	type page struct {
		gws   []Gateway
		total int
	}
	p, err := readSAG(ctx, s.api, region, listGateways, func(ctx context.Context) (page, error) {
		gws, total, err := s.sag.ListGateways(ctx, region, f, n)
		return page{gws, total}, err
	})
	return p.gws, p.total, err
}

// detail reads a gateway's live status and its devices' versions.
func (s *sagReader) detail(ctx context.Context, g Gateway) (Detail, error) {
	return readSAG(ctx, s.api, g.Region, readDevices, func(ctx context.Context) (Detail, error) { return s.sag.Devices(ctx, g) })
}

// versions returns the versions a gateway is offered, asking the API once a
// run: the same gateway's list does not change within an invocation (both
// devices of an HA pair share it; a batch may name a gateway twice). A read
// under way, early or not, is waited for, not repeated; a failed one is
// asked again by the next caller.
func (s *sagReader) versions(ctx context.Context, g Gateway, vt upgrade.VersionType) ([]Release, error) {
	key := g.ID + "/" + string(vt)
	for {
		rd, mine := s.reading(key)
		if mine {
			rd.offered, rd.err = readSAG(ctx, s.api, g.Region, readVersions, func(ctx context.Context) ([]Release, error) {
				return s.sag.Versions(ctx, g, "", vt)
			})
			s.done(key, rd)
			return rd.offered, rd.err
		}
		select {
		case <-rd.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !errors.Is(rd.err, errNotRead) {
			return rd.offered, rd.err
		}
	}
}

// versionRead is a Versions read of the run: under way until done closes.
type versionRead struct {
	done    chan struct{}
	offered []Release
	err     error // errNotRead: an early read no longer wanted when its turn came
}

// errNotRead is an early read that did not start: the plan no longer wanted it.
var errNotRead = errors.New("not read early")

// reading returns the read of key, and whether the caller is to make it
// (none was made or is under way).
func (s *sagReader) reading(key string) (*versionRead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rd := s.versionReads[key]; rd != nil {
		return rd, false
	}
	if s.versionReads == nil {
		s.versionReads = map[string]*versionRead{}
	}
	rd := &versionRead{done: make(chan struct{})}
	s.versionReads[key] = rd
	return rd, true
}

// done ends a read; one that failed is forgotten, for the next caller to
// make again.
func (s *sagReader) done(key string, rd *versionRead) {
	if rd.err != nil {
		s.mu.Lock()
		delete(s.versionReads, key)
		s.mu.Unlock()
	}
	close(rd.done)
}

// readEarly starts the Versions reads of a batch's gateways with its run,
// while they are listed, so its reads begin with the run instead of a
// listing call later. The reads start one after the other at the lane's
// pace, those the plan will make (wanted says which, as far as the run
// knows yet), and the plan waits for each one under way instead of reading
// again: a gateway the listing rules out costs at most the reads started
// during one listing call, and the plan's first reads of its own do not
// leave the lane a slot or more idle (its first chunks were read early,
// so they came 10 to 20 ms after the listing answered: a slot in every
// batch). wait waits for their goroutines.
func (s *sagReader) readEarly(ctx context.Context, region string, ids []string, types []upgrade.VersionType, wanted *wantedReads) {
	s.prefetch.Add(1)
	go func() {
		defer s.prefetch.Done()
		defer func() { _ = recover() }() // a read not made early is made by the plan
		for _, id := range ids {
			if !s.earlyAll(ctx, region, id, types, wanted) {
				return
			}
		}
	}()
}

// wantedReads says which of a batch's Versions reads the plan will make, as
// far as the run knows yet: every one until the listing answers; then those
// of the gateways the listing found eligible; once the ledger is read, only
// those with no record of the version type (a record may settle its gateway
// with no read); none once the sweep is over. A nil *wantedReads wants
// every read.
type wantedReads struct {
	mu       sync.Mutex
	listed   map[string]Gateway                        // nil until the listing answered
	records  map[upgrade.VersionType]map[string]Record // nil until the ledger was read
	over     bool                                      // the sweep ended
	eligible func(Gateway, upgrade.VersionType) bool   // as the plan sees a listed gateway
}

// listedAs notes the gateways the listing found.
func (w *wantedReads) listedAs(fleet []Gateway) {
	if w == nil {
		return
	}
	listed := make(map[string]Gateway, len(fleet))
	for _, g := range fleet {
		listed[g.ID] = g
	}
	w.mu.Lock()
	w.listed = listed
	w.mu.Unlock()
}

// recorded notes the ledger's records of the listed gateways.
func (w *wantedReads) recorded(records map[upgrade.VersionType]map[string]Record) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.records = records
	w.mu.Unlock()
}

// end wants no more reads.
func (w *wantedReads) end() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.over = true
	w.mu.Unlock()
}

// wants reports whether the plan will read the versions of type vt of
// gateway id, as far as the run knows.
func (w *wantedReads) wants(id string, vt upgrade.VersionType) bool {
	if w == nil {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.over:
		return false
	case w.listed == nil:
		return true
	}
	g, ok := w.listed[id]
	if !ok || !w.eligible(g, vt) {
		return false
	}
	_, recorded := w.records[vt][id]
	return !recorded
}

// earlyAll makes a gateway's early reads of each type the plan wants, one
// after the other (one already read, or being read, is not read again); it
// reports whether the next gateway's may follow (false: a read failed
// before it could start, the run's time being over).
func (s *sagReader) earlyAll(ctx context.Context, region, id string, types []upgrade.VersionType, wanted *wantedReads) bool {
	for _, vt := range types {
		if !wanted.wants(id, vt) {
			continue
		}
		key := id + "/" + string(vt)
		if rd, mine := s.reading(key); mine && !s.early(ctx, region, id, vt, key, rd, wanted) {
			return false
		}
	}
	return true
}

// early makes one early read on a goroutine of its own, and reports once
// its slot came whether the reads may go on (false: it failed before it
// could start). A read no longer wanted when its slot came is not made.
func (s *sagReader) early(ctx context.Context, region, id string, vt upgrade.VersionType, key string, rd *versionRead, wanted *wantedReads) bool {
	goOn := make(chan bool, 1)
	s.prefetch.Add(1)
	go func() {
		defer s.prefetch.Done()
		var once sync.Once
		defer func() {
			if p := recover(); p != nil {
				rd.offered, rd.err = nil, errNotRead
			}
			once.Do(func() { goOn <- false }) // it never started
			s.done(key, rd)
		}()
		rd.offered, rd.err = readSAG(ctx, s.api, region, readVersions, func(ctx context.Context) ([]Release, error) {
			want := true
			once.Do(func() {
				want = wanted.wants(id, vt)
				goOn <- true
			})
			if !want {
				return nil, errNotRead
			}
			return s.sag.Versions(ctx, Gateway{ID: id, Region: region}, "", vt)
		})
	}()
	return <-goOn
}

// wait waits for the goroutines of early reads.
func (s *sagReader) wait() { s.prefetch.Wait() }

// devices returns the devices to consider for a version type and which one
// carries traffic. A single-device gateway's firmware version is in the
// listing already; DPI versions and HA pairs need the gateway's attributes,
// which also give a fresher status (live).
func (s *sagReader) devices(ctx context.Context, g Gateway, vt upgrade.VersionType) (devs []Device, master string, live Gateway, err error) {
	if vt == upgrade.VersionDevice && !g.HA() {
		return []Device{{SerialNumber: g.SerialNumbers[0], Software: g.SoftwareVersion}}, "", g, nil
	}
	d, err := s.detail(ctx, g)
	if err != nil {
		return nil, "", g, err
	}
	live = g
	live.Status = d.Status
	return d.Devices, d.MasterSN, live, nil
}

// versionsOf lists the devices' versions of a type, serial=version.
func versionsOf(d Detail, vt upgrade.VersionType) string {
	var vs []string
	for _, dev := range d.Devices {
		vs = append(vs, dev.SerialNumber+"="+dev.Version(vt))
	}
	return strings.Join(vs, ",")
}
