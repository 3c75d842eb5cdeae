package handler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fakeSAG is an in-memory SAG for the handler's pure logic. The adapters are
// tested against the emulators of internal/cloudsim instead.
type fakeSAG struct {
	mu       sync.Mutex
	gateways []Gateway
	details  map[string]Detail
	offered  []Release
	dpi      []Release // the Dpi list, when it differs from offered
	// fail decides the error of a call: action, gateway id, and how many
	// times that action was called for that gateway before.
	fail    func(action, id string, n int) error
	calls   map[string]int // "action id" -> count
	updates []string       // "id serial version" of every update call
	// onUpdate lets a test change the world when an update is accepted.
	onUpdate func(id, serial string)
	// onList, when set, sees every listing call before it is answered.
	onList func(region string, lf ListFilter, page int)
	// pageFails, when set, may fail a listing page.
	pageFails func(region string, lf ListFilter, page int) error
}

func newFakeSAG(gws ...Gateway) *fakeSAG {
	return &fakeSAG{gateways: gws, details: map[string]Detail{}, calls: map[string]int{}}
}

func (f *fakeSAG) call(action, id string) error {
	f.mu.Lock()
	n := f.calls[action+" "+id]
	f.calls[action+" "+id]++
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail(action, id, n)
	}
	return nil
}

func (f *fakeSAG) count(action, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action+" "+id]
}

func (f *fakeSAG) ListGateways(ctx context.Context, region string, lf ListFilter, page int) ([]Gateway, int, error) {
	if err := f.call("List", region); err != nil {
		return nil, 0, err
	}
	if f.onList != nil {
		f.onList(region, lf, page)
	}
	if f.pageFails != nil {
		if err := f.pageFails(region, lf, page); err != nil {
			return nil, 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []Gateway
	for _, g := range f.gateways {
		if g.Region == region && (len(lf.IDs) == 0 || slices.Contains(lf.IDs, g.ID)) && (lf.Model == "" || g.Model == lf.Model) &&
			(lf.Below == "" || compareVersions(g.SoftwareVersion, lf.Below) < 0) {
			all = append(all, g)
		}
	}
	from := min((page-1)*PageSize, len(all))
	return all[from:min(from+PageSize, len(all))], len(all), nil
}

func (f *fakeSAG) Versions(ctx context.Context, g Gateway, serial string, vt upgrade.VersionType) ([]Release, error) {
	if err := f.call("Versions", g.ID); err != nil {
		return nil, err
	}
	if vt == upgrade.VersionDpi && f.dpi != nil {
		return f.dpi, nil
	}
	return f.offered, nil
}

func (f *fakeSAG) Devices(ctx context.Context, g Gateway) (Detail, error) {
	if err := f.call("Devices", g.ID); err != nil {
		return Detail{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.details[g.ID]; ok {
		return d, nil
	}
	d := Detail{Status: g.Status}
	for i, sn := range g.SerialNumbers {
		v := g.SoftwareVersion
		if i == 1 {
			v = g.BackupSoftwareVersion
		}
		d.Devices = append(d.Devices, Device{SerialNumber: sn, Software: v, Dpi: "1.7.0"})
	}
	return d, nil
}

func (f *fakeSAG) Update(ctx context.Context, g Gateway, serial string, vt upgrade.VersionType, version string) (string, error) {
	if err := f.call("Update", g.ID); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.updates = append(f.updates, fmt.Sprintf("%s %s %s", g.ID, serial, version))
	on := f.onUpdate
	f.mu.Unlock()
	if on != nil {
		on(g.ID, serial)
	}
	return "REQ-" + g.ID, nil
}

func (f *fakeSAG) updatesSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.updates...)
}

// fakePublisher records events; fail makes the next publishes fail, and
// delay, when set, holds a publish back (outside the lock, as a slow topic
// would, so other publishes go on meanwhile).
type fakePublisher struct {
	mu       sync.Mutex
	events   []events.CloudEvent
	attempts int
	fail     func(ev events.CloudEvent) error
	delay    func(ctx context.Context, ev events.CloudEvent)
}

func (p *fakePublisher) Publish(ctx context.Context, ev events.CloudEvent) error {
	if p.delay != nil {
		p.delay(ctx, ev)
	}
	p.mu.Lock()
	p.attempts++
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(ev); err != nil {
			return err
		}
	}
	p.events = append(p.events, ev)
	return nil
}

type temporaryError struct{ error }

func (temporaryError) Temporary() bool { return true }

var (
	testNow = time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC) // 02:00 in Shanghai
	day     = 24 * time.Hour
)

func gateway(id, version string) Gateway {
	return Gateway{ID: id, Region: "cn-shanghai", Status: "Active", Model: "sag-1000", SerialNumbers: []string{"sn-" + id},
		SoftwareVersion: version, CcnID: "ccn-1", EndTime: testNow.Add(300 * day)}
}

// gateways makes n gateways on one version, named by idFormat and their
// index (for example "sag-%02d").
func gateways(idFormat string, n int, version string) []Gateway {
	gws := make([]Gateway, n)
	for i := range gws {
		gws[i] = gateway(fmt.Sprintf(idFormat, i), version)
	}
	return gws
}

func catalog() []Release {
	return []Release{
		{Code: "2.3.1", Type: "release", Created: testNow.Add(-60 * day)},
		{Code: "2.2.0", Type: "release", Created: testNow.Add(-200 * day)},
		{Code: "2.4.0", Type: "beta", Created: testNow.Add(-10 * day)},
	}
}
