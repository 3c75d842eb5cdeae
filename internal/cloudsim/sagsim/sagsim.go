// Package sagsim emulates the Smart Access Gateway OpenAPI (Smartag
// 2018-03-13) closely enough that the real alibaba-cloud-sdk-go client, pointed
// at it over HTTP, cannot tell it from Alibaba Cloud for the calls the
// function makes: the RPC protocol with its signature, timestamp, nonce and
// STS checks, the documented error codes produced from gateway state, paging,
// and upgrades that take the device offline for a while and end as the
// fleet's behaviour says.
//
// A Server is an http.Handler:
//
//	sim := sagsim.New(f, sagsim.Options{Keyring: keys, Clock: clk})
//	srv := httptest.NewServer(sim)
//	client.Domain = strings.TrimPrefix(srv.URL, "http://")
//
// Each call is handled in this order: protocol and credential checks, injected
// faults, per-action QPS limit, latency, then the action itself.
package sagsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/chaos"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// Options configure a Server. Only Keyring is required.
type Options struct {
	// Keyring holds the credentials the server accepts.
	Keyring *auth.Keyring
	// Clock is the devices' time: upgrades, EndTime expiry. Default clock.Real{}.
	Clock clock.Clock
	// Wall is the time the Timestamp skew and nonce window are judged by.
	// The SDK signs with the machine's time, so this is never the simulated
	// clock. Default time.Now.
	Wall func() time.Time
	// UpgradeTime is how long a device reboots after a Device update (Clock
	// time) unless the gateway's behaviour says otherwise. Default 10 min.
	UpgradeTime time.Duration
	// DpiUpgradeTime is how long a Dpi update takes. Default 2 min.
	DpiUpgradeTime time.Duration
	// Latency, plus a random share of Jitter, is slept in real time by every
	// call that reaches its action.
	Latency time.Duration
	Jitter  time.Duration
	// QPS limits each action to so many calls a second (real time), by
	// action name; DefaultQPS applies to the actions not named. 0 = unlimited.
	QPS        map[string]float64
	DefaultQPS float64
	// Flow is how the limits count (default TokenBucket), and Burst a
	// bucket's size (default a tenth of a second's calls).
	Flow  Flow
	Burst int
	// Faults are injected failures; see SetFaults.
	Faults Faults
}

// Call is the record of one request, whatever its outcome.
type Call struct {
	RequestID    string
	Action       string
	Region       string
	SmartAGID    string
	VersionType  string // as sent; "Device" when an Update or Versions call leaves it out
	VersionCode  string
	SerialNumber string // SerialNumber, or SmartAGSn for DescribeSmartAccessGatewayVersions
	HTTPStatus   int    // the status answered (for a LostReply, the one lost); 0 for a Drop
	Code         string // the error Code answered; "" on success and on non-JSON answers
	Fault        FaultKind
	// N is the call's number (from 1) among the authenticated calls with the
	// same Action and SmartAGId, the input of the fault decision; 0 for calls
	// refused before that.
	N int
	// Applied is true only for an Update that started an upgrade, even when
	// its answer was then lost.
	Applied bool
}

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	keys           *auth.Keyring
	clock          clock.Clock
	wall           func() time.Time
	upgradeTime    time.Duration
	dpiUpgradeTime time.Duration
	latency        time.Duration
	jitter         time.Duration
	limiters       map[string]limiter       // read-only after New
	regions        map[string]bool          // read-only after New
	regionList     []string                 // DescribeRegions: SAG regions, then the fleet's others
	catalogs       map[string]fleet.Catalog // read-only after New
	nonces         auth.Nonces

	mu        sync.Mutex // guards everything below
	gateways  []*gateway // fleet order: the list's stable order
	byID      map[string]*gateway
	faults    Faults
	seq       map[[2]string]int // authenticated calls per (action, SmartAGId), for faults
	calls     []Call
	counts    map[[2]string]int // all calls per (action, SmartAGId), for Count
	applied   map[string]int    // applied updates per SmartAGId
	throttled int
}

// New returns a server over a deep copy of f. It panics if opts.Keyring is
// nil: a programming error, not something a request can cause.
func New(f *fleet.Fleet, opts Options) *Server {
	if opts.Keyring == nil {
		panic("sagsim: Options.Keyring is required")
	}
	if f == nil {
		f = &fleet.Fleet{}
	}
	s := &Server{
		keys:           opts.Keyring,
		clock:          opts.Clock,
		wall:           opts.Wall,
		upgradeTime:    opts.UpgradeTime,
		dpiUpgradeTime: opts.DpiUpgradeTime,
		latency:        opts.Latency,
		jitter:         opts.Jitter,
		limiters:       map[string]limiter{},
		regions:        map[string]bool{},
		catalogs:       map[string]fleet.Catalog{},
		byID:           map[string]*gateway{},
		faults:         cloneFaults(opts.Faults),
		seq:            map[[2]string]int{},
		counts:         map[[2]string]int{},
		applied:        map[string]int{},
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.wall == nil {
		s.wall = time.Now
	}
	if s.upgradeTime <= 0 {
		s.upgradeTime = 10 * time.Minute
	}
	if s.dpiUpgradeTime <= 0 {
		s.dpiUpgradeTime = 2 * time.Minute
	}
	for action := range actions {
		q, ok := opts.QPS[action]
		if !ok {
			q = opts.DefaultQPS
		}
		if q > 0 {
			s.limiters[action] = newLimiter(opts.Flow, q, opts.Burst)
		}
	}
	for _, r := range sagRegions {
		s.regions[r.id] = true
		s.regionList = append(s.regionList, r.id)
	}
	for _, r := range f.Regions {
		if !s.regions[r] {
			s.regions[r] = true
			s.regionList = append(s.regionList, r)
		}
	}
	for model, c := range f.Catalogs {
		s.catalogs[model] = fleet.Catalog{Device: slices.Clone(c.Device), Dpi: slices.Clone(c.Dpi)}
	}
	for _, g := range f.Gateways {
		gw := newGateway(g, f.AccountID)
		s.gateways = append(s.gateways, gw)
		s.byID[gw.SmartAGID] = gw
	}
	return s
}

func cloneFaults(f Faults) Faults {
	f.Kinds = slices.Clone(f.Kinds)
	f.Actions = slices.Clone(f.Actions)
	return f
}

// ServeHTTP answers one OpenAPI call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := s.authenticate(r)
	call := newCall(req)
	if err != nil {
		s.answerError(w, req, &call, err)
		return
	}

	s.mu.Lock()
	key := [2]string{req.action, call.SmartAGID}
	s.seq[key]++
	call.N = s.seq[key]
	call.Fault = s.faults.pick(req.action, call.SmartAGID, call.N)
	slowDelay := s.faults.slowDelay()
	s.mu.Unlock()

	switch call.Fault {
	case InternalError, ServiceUnavailable:
		s.answerError(w, req, &call, faultErrors[call.Fault])
		return
	case BadGateway:
		call.HTTPStatus = http.StatusBadGateway
		s.record(call)
		chaos.WriteBadGateway(w)
		return
	case Drop:
		if conn := chaos.Hijack(w); conn != nil {
			s.record(call)
			_ = conn.Close()
			return
		}
		s.answerError(w, req, &call, faultErrors[ServiceUnavailable])
		return
	case Slow:
		time.Sleep(slowDelay)
	}

	// A throttled call is refused before it runs, so it never has an effect.
	if l := s.limiters[req.action]; l != nil && !l.allow(s.wall()) {
		s.mu.Lock()
		s.throttled++
		s.mu.Unlock()
		s.answerError(w, req, &call, &apiError{http.StatusBadRequest, "Throttling.User", "Request was denied due to user flow control."})
		return
	}

	// Like a real server, a client that gives up during the latency does not
	// cancel the call: it still runs, unseen.
	if d := s.delay(); d > 0 {
		time.Sleep(d)
	}

	s.mu.Lock()
	body, err := actions[req.action](s, req)
	s.mu.Unlock()
	call.Applied = req.applied

	if call.Fault == LostReply {
		if err != nil {
			call.HTTPStatus, call.Code = err.status, err.code
		} else {
			call.HTTPStatus = http.StatusOK
		}
		if conn := chaos.Hijack(w); conn != nil {
			s.record(call)
			_ = conn.Close()
			return
		}
		// Cannot drop on this connection: answer, as a lost reply that was not.
	}
	if err != nil {
		s.answerError(w, req, &call, err)
		return
	}
	call.HTTPStatus, call.Code = http.StatusOK, ""
	s.record(call)
	writeJSON(w, req.id, http.StatusOK, encode(body))
}

func newCall(req *request) Call {
	p := req.params
	c := Call{
		RequestID:    req.id,
		Action:       req.action,
		Region:       p.Get("RegionId"),
		SmartAGID:    p.Get("SmartAGId"),
		VersionType:  p.Get("VersionType"),
		VersionCode:  p.Get("VersionCode"),
		SerialNumber: p.Get("SerialNumber"),
	}
	switch req.action {
	case "DescribeSmartAccessGatewayVersions":
		c.SerialNumber = p.Get("SmartAGSn")
		fallthrough
	case "UpdateSmartAccessGatewayVersion":
		if c.VersionType == "" {
			c.VersionType = "Device"
		}
	}
	return c
}

func (s *Server) answerError(w http.ResponseWriter, req *request, call *Call, e *apiError) {
	call.HTTPStatus, call.Code = e.status, e.code
	s.record(*call)
	region := req.params.Get("RegionId")
	writeJSON(w, req.id, e.status, encode(errorBody{
		RequestId: req.id,
		HostId:    hostID(region, s.regions[region]),
		Code:      e.code,
		Message:   e.message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + e.code + "&product=Smartag",
	}))
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	s.counts[[2]string{c.Action, c.SmartAGID}]++
	if c.Applied {
		s.applied[c.SmartAGID]++
	}
}

func (s *Server) delay() time.Duration {
	d := s.latency
	if s.jitter > 0 {
		d += rand.N(s.jitter)
	}
	return d
}

// Calls returns every call so far, in the order they were answered.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count returns how many calls of action named smartAGID ("" for calls that
// named none), whatever their outcome.
func (s *Server) Count(action, smartAGID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[[2]string{action, smartAGID}]
}

// Applied returns how many updates of smartAGID started an upgrade.
func (s *Server) Applied(smartAGID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[smartAGID]
}

// Throttled returns how many calls were refused with Throttling.User.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// SetFaults replaces the injected faults from the next call on. The call
// numbers that faults are decided from keep counting.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = cloneFaults(f)
}

// Gateway returns the live state of a gateway at the Clock's now.
func (s *Server) Gateway(id string) (GatewayState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byID[id]
	if g == nil {
		return GatewayState{}, false
	}
	g.settle(s.clock.Now())
	return g.state(), true
}

// SetStatus changes a gateway's Status as if it changed on the device side
// (for example Offline to Active). Upgrades under way are not affected.
func (s *Server) SetStatus(id, status string) error {
	if !slices.Contains(fleet.Statuses, status) {
		return fmt.Errorf("sagsim: status %q is not one of %v", status, fleet.Statuses)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byID[id]
	if g == nil {
		return fmt.Errorf("sagsim: no gateway %q", id)
	}
	g.Status = status
	return nil
}
