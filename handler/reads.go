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

	mu       sync.Mutex
	catalogs map[string][]Release  // Versions answers of this run, by gateway and version type
	early    map[string]*earlyRead // Versions reads started before the gateway was listed
	prefetch sync.WaitGroup        // those reads' goroutines
}

// earlyRead is a Versions read started while the gateways were listed.
type earlyRead struct {
	done    chan struct{} // closed once offered and err are set
	offered []Release
	err     error // errNotRead: the listing answered before its turn came
}

// errNotRead is an early read that did not start: the listing had answered.
var errNotRead = errors.New("not read early")

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
// devices of an HA pair share it; a batch may name a gateway twice).
func (s *sagReader) versions(ctx context.Context, g Gateway, vt upgrade.VersionType) ([]Release, error) {
	key := g.ID + "/" + string(vt)
	s.mu.Lock()
	cached, ok := s.catalogs[key]
	early := s.early[key]
	s.mu.Unlock()
	if ok {
		return cached, nil
	}
	if early != nil {
		select {
		case <-early.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !errors.Is(early.err, errNotRead) {
			return early.offered, early.err
		}
	}
	offered, err := readSAG(ctx, s.api, g.Region, readVersions, func(ctx context.Context) ([]Release, error) {
		return s.sag.Versions(ctx, g, "", vt)
	})
	if err == nil {
		s.mu.Lock()
		if s.catalogs == nil {
			s.catalogs = map[string][]Release{}
		}
		s.catalogs[key] = offered
		s.mu.Unlock()
	}
	return offered, err
}

// readEarly starts the Versions reads of named gateways of one region while
// they are listed (listed is closed when the listing answered): a batch's
// reads begin with the run instead of a listing call later. The reads start
// one after the other at the lane's pace, and none starts once the listing
// has answered: from then on the plan reads what it needs, in its order,
// and a gateway the listing rules out costs at most the reads started
// during one listing call. wait waits for their goroutines.
func (s *sagReader) readEarly(ctx context.Context, region string, ids []string, types []upgrade.VersionType, listed <-chan struct{}) {
	s.mu.Lock()
	if s.early == nil {
		s.early = map[string]*earlyRead{}
	}
	s.mu.Unlock()
	s.prefetch.Add(1)
	go func() {
		defer s.prefetch.Done()
		defer func() { _ = recover() }() // a read not made early is made by the plan
		for _, id := range ids {
			for _, vt := range types {
				key := id + "/" + string(vt)
				e := &earlyRead{done: make(chan struct{})}
				s.mu.Lock()
				_, dup := s.early[key]
				if !dup {
					s.early[key] = e
				}
				s.mu.Unlock()
				if dup {
					continue
				}
				started := make(chan bool, 1)
				s.prefetch.Add(1)
				go func() {
					defer s.prefetch.Done()
					defer close(e.done)
					defer func() {
						if p := recover(); p != nil {
							e.offered, e.err = nil, errNotRead
							select {
							case started <- false:
							default:
							}
						}
					}()
					var once sync.Once
					e.offered, e.err = readSAG(ctx, s.api, region, readVersions, func(ctx context.Context) ([]Release, error) {
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
					if e.err != nil && !errors.Is(e.err, errNotRead) {
						once.Do(func() { started <- false })
					}
				}()
				if !<-started {
					return
				}
			}
		}
	}()
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
