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
	err     error // errNotRead: an early read whose turn came too late
}

// errNotRead is an early read that did not start: the listing had answered.
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

// readEarly starts the Versions reads of a batch's gateways while they are
// listed (listed is closed when the listing answered), so its reads begin
// with the run instead of a listing call later. The reads start one after
// the other at the lane's pace, and none starts once the listing has
// answered: from then on the plan reads what it needs, in its order, and a
// gateway the listing rules out costs at most the reads started during one
// listing call. wait waits for their goroutines.
func (s *sagReader) readEarly(ctx context.Context, region string, ids []string, types []upgrade.VersionType, listed <-chan struct{}) {
	s.prefetch.Add(1)
	go func() {
		defer s.prefetch.Done()
		defer func() { _ = recover() }() // a read not made early is made by the plan
		for _, id := range ids {
			if !s.earlyAll(ctx, region, id, types, listed) {
				return
			}
		}
	}()
}

// earlyAll makes a gateway's early reads of each type, one after the other
// (one read already, or being read, is not read again); it reports whether
// the next gateway's may follow (false: the listing had answered, or a read
// failed before it could start). listed nil: every read is wanted.
func (s *sagReader) earlyAll(ctx context.Context, region, id string, types []upgrade.VersionType, listed <-chan struct{}) bool {
	for _, vt := range types {
		key := id + "/" + string(vt)
		if rd, mine := s.reading(key); mine && !s.early(ctx, region, id, vt, key, rd, listed) {
			return false
		}
	}
	return true
}

// early makes one early read on a goroutine of its own, and reports once
// it started whether it was made (false: the listing had answered, or it
// failed before it could start).
func (s *sagReader) early(ctx context.Context, region, id string, vt upgrade.VersionType, key string, rd *versionRead, listed <-chan struct{}) bool {
	started := make(chan bool, 1)
	s.prefetch.Add(1)
	go func() {
		defer s.prefetch.Done()
		var once sync.Once
		defer func() {
			if p := recover(); p != nil {
				rd.offered, rd.err = nil, errNotRead
			}
			once.Do(func() { started <- false }) // it never started
			s.done(key, rd)
		}()
		rd.offered, rd.err = readSAG(ctx, s.api, region, readVersions, func(ctx context.Context) ([]Release, error) {
			wanted := true
			once.Do(func() {
				select {
				case <-listed:
					wanted = false
				default:
				}
				started <- wanted
			})
			if !wanted {
				return nil, errNotRead
			}
			return s.sag.Versions(ctx, Gateway{ID: id, Region: region}, "", vt)
		})
	}()
	return <-started
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
