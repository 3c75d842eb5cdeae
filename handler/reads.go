package handler

import (
	"context"
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
	catalogs map[string][]Release // Versions answers of this run, by gateway and version type
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
// devices of an HA pair share it; a batch may name a gateway twice).
func (s *sagReader) versions(ctx context.Context, g Gateway, vt upgrade.VersionType) ([]Release, error) {
	key := g.ID + "/" + string(vt)
	s.mu.Lock()
	cached, ok := s.catalogs[key]
	s.mu.Unlock()
	if ok {
		return cached, nil
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
