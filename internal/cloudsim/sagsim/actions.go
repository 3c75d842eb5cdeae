package sagsim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

// An action runs with s.mu held and returns the answer's body (without
// error) or the error to answer.
type action func(s *Server, req *request) (any, *apiError)

var actions = map[string]action{
	"DescribeRegions":                     (*Server).describeRegions,
	"DescribeSmartAccessGateways":         (*Server).describeSmartAccessGateways,
	"DescribeSmartAccessGatewayAttribute": (*Server).describeSmartAccessGatewayAttribute,
	"DescribeSmartAccessGatewayVersions":  (*Server).describeSmartAccessGatewayVersions,
	"UpdateSmartAccessGatewayVersion":     (*Server).updateSmartAccessGatewayVersion,
}

// Wire shapes. Key names and types follow the SDK's structs exactly (its
// decoder is case-sensitive); lists are {"Wrapper":{"Item":[…]}}.

type regionJSON struct {
	RegionId       string
	LocalName      string
	RegionEndpoint string
}

type regionsResponse struct {
	RequestId string
	Regions   struct{ Region []regionJSON }
}

type linksJSON struct {
	Link []struct{} // no links are modelled; always empty
}

type gatewayJSON struct {
	SmartAGId             string
	Name                  string
	Description           string
	Status                string
	SoftwareVersion       string
	BackupSoftwareVersion string
	HardwareVersion       string
	SerialNumber          string
	AssociatedCcnId       string
	AssociatedCcnName     string
	City                  string
	CreateTime            int64
	EndTime               int64
	ResellerUid           string
	ResourceGroupId       string
	AclIds                string // a string here, an object in the Attribute answer
	QosIds                string
	VpnStatus             string
	IpsecStatus           string
	RoutingStrategy       string
	Links                 linksJSON
}

type gatewaysResponse struct {
	RequestId           string
	TotalCount          int
	PageNumber          int
	PageSize            int
	SmartAccessGateways struct{ SmartAccessGateway []gatewayJSON }
}

type deviceJSON struct {
	SerialNumber          string
	SoftwareVersion       string
	DpiSignatureDbVersion string
	HaState               string
}

type attributeResponse struct {
	RequestId         string
	SmartAGId         string
	Name              string
	Description       string
	Status            string
	InstanceType      string
	SerialNumber      string
	TrafficMasterSn   string
	AssociatedCcnId   string
	AssociatedCcnName string
	City              string
	CreateTime        int64
	EndTime           int64
	ResellerUid       string
	ResourceGroupId   string
	VpnStatus         string
	IpsecStatus       string
	RoutingStrategy   string
	AclIds            struct{ AclId []string }
	QosIds            struct{ QosId []string }
	FlowLogIds        struct{ FlowLogId []string }
	Devices           struct{ Device []deviceJSON }
	Links             linksJSON
}

type versionJSON struct {
	Type        string
	CreateTime  int64
	VersionName string
	VersionCode string
}

type versionsResponse struct {
	RequestId       string
	SmartAGVersions struct{ SmartAGVersion []versionJSON }
}

type updateResponse struct{ RequestId string }

func (s *Server) describeRegions(req *request) (any, *apiError) {
	resp := regionsResponse{RequestId: req.id}
	resp.Regions.Region = []regionJSON{}
	for _, id := range s.regionList {
		name := id
		for _, r := range sagRegions {
			if r.id == id {
				name = r.name
			}
		}
		resp.Regions.Region = append(resp.Regions.Region, regionJSON{id, name, "smartag." + id + ".aliyuncs.com"})
	}
	return resp, nil
}

func (s *Server) describeSmartAccessGateways(req *request) (any, *apiError) {
	p := req.params
	size, err := intParam(p, "PageSize", 10, 1, 50)
	if err != nil {
		return nil, err
	}
	number, err := intParam(p, "PageNumber", 1, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	f := gatewayFilter{
		id:            p.Get("SmartAGId"),
		status:        p.Get("Status"),
		sn:            p.Get("SerialNumber"),
		ccn:           p.Get("AssociatedCcnId"),
		hardware:      p.Get("HardwareType"),
		name:          p.Get("Name"),
		group:         p.Get("ResourceGroupId"),
		instanceType:  p.Get("InstanceType"),
		businessState: p.Get("BusinessState"),
		version:       p.Get("SoftwareVersion"),
		comparator:    strings.ToLower(p.Get("VersionComparator")),
		now:           s.clock.Now(),
	}
	switch f.comparator {
	case "", "greater", "less", "equals":
	default:
		return nil, invalidParameter("VersionComparator")
	}
	for k := range p {
		if strings.HasPrefix(k, "SmartAGIds.") {
			f.ids = append(f.ids, p.Get(k))
		}
	}

	var matched []*gateway
	for _, g := range s.gateways {
		if g.RegionID != req.region || g.owner != req.account {
			continue // another region's or another account's: invisible
		}
		g.settle(f.now)
		if f.match(g) {
			matched = append(matched, g)
		}
	}
	resp := gatewaysResponse{RequestId: req.id, TotalCount: len(matched), PageNumber: number, PageSize: size}
	resp.SmartAccessGateways.SmartAccessGateway = []gatewayJSON{}
	start := len(matched)
	if number-1 <= len(matched)/size {
		start = (number - 1) * size
	}
	for _, g := range matched[start:min(start+size, len(matched))] {
		resp.SmartAccessGateways.SmartAccessGateway = append(resp.SmartAccessGateways.SmartAccessGateway, listJSON(g))
	}
	return resp, nil
}

// gatewayFilter holds DescribeSmartAccessGateways' filters; empty ones match all.
type gatewayFilter struct {
	id, status, sn, ccn, hardware, name, group string
	instanceType, businessState                string
	version, comparator                        string
	ids                                        []string
	now                                        time.Time
}

func (f gatewayFilter) match(g *gateway) bool {
	switch {
	case f.id != "" && g.SmartAGID != f.id,
		len(f.ids) > 0 && !slices.Contains(f.ids, g.SmartAGID),
		f.status != "" && !strings.EqualFold(g.status(), f.status),
		f.sn != "" && g.device(f.sn) == nil,
		f.ccn != "" && g.AssociatedCcnID != f.ccn,
		f.hardware != "" && g.HardwareVersion != f.hardware,
		f.name != "" && g.Name != f.name, // exact: whether the real filter is fuzzy is undocumented
		f.group != "" && g.ResourceGroupID != f.group,
		f.instanceType != "" && !strings.EqualFold(instanceType(g), f.instanceType),
		f.businessState != "" && !strings.EqualFold(businessState(g, f.now), f.businessState):
		return false
	}
	if f.version == "" {
		return true
	}
	v := g.softwareVersion(0)
	if v == "" {
		return false // a gateway without a version never matches a version filter
	}
	c := fleet.CompareVersions(v, f.version)
	switch f.comparator {
	case "greater":
		return c > 0
	case "less":
		return c < 0
	}
	return c == 0
}

// instanceType is the list filter's InstanceType: the SAG App is
// "software", every box (and vCPE) "hardware".
func instanceType(g *gateway) string {
	if g.HardwareVersion == "sag-software" {
		return "software"
	}
	return "hardware"
}

// businessState is the list filter's BusinessState.
func businessState(g *gateway, now time.Time) string {
	if g.inArrears(now) {
		return "Arrearage"
	}
	return "Normal"
}

func listJSON(g *gateway) gatewayJSON {
	st := g.status()
	return gatewayJSON{
		SmartAGId:             g.SmartAGID,
		Name:                  g.Name,
		Status:                st,
		SoftwareVersion:       g.softwareVersion(0),
		BackupSoftwareVersion: g.softwareVersion(1),
		HardwareVersion:       g.HardwareVersion,
		SerialNumber:          g.serialNumber(),
		AssociatedCcnId:       g.AssociatedCcnID,
		City:                  g.City,
		CreateTime:            millis(g.CreateTime),
		EndTime:               millis(g.EndTime),
		ResellerUid:           g.ResellerUID,
		ResourceGroupId:       g.ResourceGroupID,
		VpnStatus:             upDown(st),
		IpsecStatus:           upDown(st),
		RoutingStrategy:       "static",
		Links:                 linksJSON{Link: []struct{}{}},
	}
}

func (s *Server) describeSmartAccessGatewayAttribute(req *request) (any, *apiError) {
	g, err := s.lookup(req)
	if err != nil {
		return nil, err
	}
	st := g.status()
	resp := attributeResponse{
		RequestId:       req.id,
		SmartAGId:       g.SmartAGID,
		Name:            g.Name,
		Status:          st,
		InstanceType:    g.HardwareVersion, // sag-1000, sag-100wm, sag-vcpe, sag-software
		SerialNumber:    g.serialNumber(),
		AssociatedCcnId: g.AssociatedCcnID,
		City:            g.City,
		CreateTime:      millis(g.CreateTime),
		EndTime:         millis(g.EndTime),
		ResellerUid:     g.ResellerUID,
		ResourceGroupId: g.ResourceGroupID,
		VpnStatus:       upDown(st),
		IpsecStatus:     upDown(st),
		RoutingStrategy: "static",
		Links:           linksJSON{Link: []struct{}{}},
	}
	resp.AclIds.AclId = []string{}
	resp.QosIds.QosId = []string{}
	resp.FlowLogIds.FlowLogId = []string{}
	resp.Devices.Device = []deviceJSON{}
	master := g.master()
	if master != nil {
		resp.TrafficMasterSn = master.sn
	}
	for _, d := range g.devices {
		role := "backup"
		if d == master {
			role = "master"
		}
		resp.Devices.Device = append(resp.Devices.Device, deviceJSON{
			SerialNumber: d.sn, SoftwareVersion: d.version, DpiSignatureDbVersion: d.dpi, HaState: role,
		})
	}
	return resp, nil
}

func (s *Server) describeSmartAccessGatewayVersions(req *request) (any, *apiError) {
	vt, err := versionType(req.params)
	if err != nil {
		return nil, err
	}
	g, err := s.lookup(req)
	if err != nil {
		return nil, err
	}
	// Unverified: the real API's answer to an SN that is not the gateway's.
	if sn := req.params.Get("SmartAGSn"); sn != "" && g.device(sn) == nil {
		return nil, invalidParameter("SmartAGSn")
	}
	releases := s.catalogs[g.HardwareVersion].Releases(vt)
	if len(releases) == 0 {
		return nil, errVersionNotExist
	}
	resp := versionsResponse{RequestId: req.id}
	for _, r := range unsorted(releases) {
		resp.SmartAGVersions.SmartAGVersion = append(resp.SmartAGVersions.SmartAGVersion,
			versionJSON{Type: r.Type, CreateTime: millis(r.CreateTime), VersionName: r.VersionName, VersionCode: r.VersionCode})
	}
	return resp, nil
}

// unsorted returns the releases in a fixed order that is neither ascending
// nor descending (for three or more), so that a client must sort and filter
// itself: ordered by version, the odd positions first, then the even ones.
func unsorted(releases []fleet.Release) []fleet.Release {
	byVersion := slices.Clone(releases)
	slices.SortStableFunc(byVersion, func(a, b fleet.Release) int { return fleet.CompareVersions(a.VersionCode, b.VersionCode) })
	out := make([]fleet.Release, 0, len(byVersion))
	for _, first := range []int{1, 0} {
		for i := first; i < len(byVersion); i += 2 {
			out = append(out, byVersion[i])
		}
	}
	return out
}

var errVersionNotExist = &apiError{http.StatusBadRequest, "VersionNotExist", "The specified version does not exist."}

// The documented errors of UpdateSmartAccessGatewayVersion.
var (
	errPermission      = &apiError{http.StatusInternalServerError, "PermissionError", "No permission to operate the instance."}
	errNotActivated    = &apiError{http.StatusInternalServerError, "SmartAccessGatewayNotActivated", "The specified Smart Access Gateway has not been activated."}
	errInArrears       = &apiError{http.StatusInternalServerError, "SmartAccessGatewayInArrears", "The specified Smart Access Gateway has expired."}
	errNotBoundCCN     = &apiError{http.StatusForbidden, "NotBoundCCN", "The specified smart access gateway has not bound CCN; please bind CCN first."}
	errStateError      = &apiError{http.StatusForbidden, "GetSmartAccessGatewayStateError", "An error occurred while obtaining the smart access gateway status."}
	errNotOnline       = &apiError{http.StatusForbidden, "SmartAccessGatewayNotOnline", "The specified smart access gateway is not online."}
	errVersionError    = &apiError{http.StatusForbidden, "GetSmartAccessGatewayVersionError", "An error occurred while obtaining the smart access gateway version."}
	errVersionTooOld   = &apiError{http.StatusForbidden, "VersionTooOld", "The specified version is outdated; please select a newer version."}
	errInvalidID       = &apiError{http.StatusForbidden, "InvalidId.SMARTAG", "The specified smart access gateway instance id is invalid."}
	errForbidden       = &apiError{http.StatusForbidden, "Forbidden", "User not authorized to operate on the specified resource."}
	errUnknownSerialNo = invalidParameter("SerialNumber") // unverified: undocumented for a foreign SN
)

func (s *Server) updateSmartAccessGatewayVersion(req *request) (any, *apiError) {
	p := req.params
	code := p.Get("VersionCode")
	if code == "" {
		return nil, missingParameter("VersionCode")
	}
	vt, err := versionType(p)
	if err != nil {
		return nil, err
	}
	g, err := s.lookup(req)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()

	// The targets: the named device, else every device. An SN that is not
	// the gateway's is refused only last; until then every device is a target.
	sn := p.Get("SerialNumber")
	targets := g.devices
	if d := g.device(sn); d != nil {
		targets = []*device{d}
	}
	anyTarget := func(bad func(*device) bool) bool { return slices.ContainsFunc(targets, bad) }

	// The documented errors, in the order the real service checks them (as
	// far as can be told: the order is unverified).
	switch {
	case g.ResellerUID != "":
		return nil, errPermission
	case g.Status == "Ordered" || g.Status == "Delivered" || g.Status == "Received":
		return nil, errNotActivated
	case g.inArrears(now):
		return nil, errInArrears
	case g.AssociatedCcnID == "":
		return nil, errNotBoundCCN
	case g.Status == "Unconfirmed":
		return nil, errStateError
	case g.status() != "Active" || anyTarget(func(d *device) bool { return !d.up() }):
		return nil, errNotOnline
	case anyTarget(func(d *device) bool { return d.version == "" }):
		return nil, errVersionError
	}
	if !slices.ContainsFunc(s.catalogs[g.HardwareVersion].Releases(vt), func(r fleet.Release) bool { return r.VersionCode == code }) {
		return nil, errVersionNotExist
	}
	if len(targets) == 0 {
		return nil, errVersionError // a gateway without a device has no version to report
	}
	// Unverified for HA pairs updated as a whole: any device already at or
	// past the version refuses, so such a pair must be upgraded per device.
	if anyTarget(func(d *device) bool { return fleet.CompareVersions(code, current(d, vt)) <= 0 }) {
		return nil, errVersionTooOld
	}
	if sn != "" && g.device(sn) == nil {
		return nil, errUnknownSerialNo
	}
	g.start(targets, vt, code, now, s.upgradeTime, s.dpiUpgradeTime)
	req.applied = true
	return updateResponse{RequestId: req.id}, nil
}

// current is the device's version of the given type; "" (no DPI database
// yet) is older than any version.
func current(d *device, versionType string) string {
	if versionType == "Dpi" {
		if d.dpi == "" {
			return "0.0"
		}
		return d.dpi
	}
	return d.version
}

// lookup finds the gateway a call names: InvalidId.SMARTAG when it does not
// exist in the request's region, Forbidden when it is another account's.
func (s *Server) lookup(req *request) (*gateway, *apiError) {
	id := req.params.Get("SmartAGId")
	if id == "" {
		return nil, missingParameter("SmartAGId")
	}
	g := s.byID[id]
	if g == nil || g.RegionID != req.region {
		return nil, errInvalidID
	}
	if g.owner != req.account {
		return nil, errForbidden
	}
	g.settle(s.clock.Now())
	return g, nil
}

func versionType(p map[string][]string) (string, *apiError) {
	vs := p["VersionType"]
	if len(vs) == 0 || vs[0] == "" {
		return "Device", nil
	}
	if vs[0] != "Device" && vs[0] != "Dpi" {
		return "", invalidParameter("VersionType")
	}
	return vs[0], nil
}

// intParam reads an optional integer parameter within [lo, hi].
func intParam(p map[string][]string, name string, def, lo, hi int) (int, *apiError) {
	vs := p[name]
	if len(vs) == 0 || vs[0] == "" {
		return def, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lo || n > hi {
		return 0, invalidParameter(name)
	}
	return n, nil
}

func (g *gateway) serialNumber() string {
	sns := make([]string, len(g.devices))
	for i, d := range g.devices {
		sns[i] = d.sn
	}
	return strings.Join(sns, ",")
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func upDown(status string) string {
	if status == "Active" {
		return "up"
	}
	return "down"
}
