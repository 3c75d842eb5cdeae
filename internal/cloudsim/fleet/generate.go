package fleet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Case names the eligibility case a generated gateway stands for.
type Case string

// The cases a fleet covers. Each is produced by gateway state alone.
const (
	CaseOutdated       Case = "outdated"        // Active, bound, Device firmware behind the newest release: upgrade
	CaseUpToDate       Case = "up-to-date"      // already on the newest release
	CaseBetaAhead      Case = "beta-ahead"      // on the newest release, a newer beta exists
	CaseDpiOutdated    Case = "dpi-outdated"    // firmware current, DPI signatures behind
	CaseHAPair         Case = "ha-pair"         // two devices, both behind
	CaseReverts        Case = "reverts"         // accepts the update, comes back on the old version
	CaseLost           Case = "lost"            // accepts the update, never comes back
	CaseOffline        Case = "offline"         // Status Offline: SmartAccessGatewayNotOnline
	CaseNotActivated   Case = "not-activated"   // Ordered/Delivered/Received: SmartAccessGatewayNotActivated
	CaseUnconfirmed    Case = "unconfirmed"     // state unknown: GetSmartAccessGatewayStateError
	CaseArrears        Case = "arrears"         // Status Arrearage: SmartAccessGatewayInArrears
	CaseExpired        Case = "expired"         // EndTime passed: SmartAccessGatewayInArrears
	CaseNotBoundCCN    Case = "not-bound-ccn"   // no CCN: NotBoundCCN
	CaseReseller       Case = "reseller"        // reseller-managed: PermissionError
	CaseVersionUnknown Case = "version-unknown" // device reports no version: GetSmartAccessGatewayVersionError
	CaseSoftware       Case = "software"        // SAG App instance, no firmware: VersionNotExist
	CaseRecentRelease  Case = "recent-release"  // model whose newest release is days old (minimum release age)
	CaseOtherAccount   Case = "other-account"   // another account's gateway: Forbidden when named
)

// AllCases lists every case, in a stable order.
var AllCases = []Case{
	CaseOutdated, CaseUpToDate, CaseBetaAhead, CaseDpiOutdated, CaseHAPair, CaseReverts,
	CaseLost, CaseOffline, CaseNotActivated, CaseUnconfirmed, CaseArrears, CaseExpired,
	CaseNotBoundCCN, CaseReseller, CaseVersionUnknown, CaseSoftware, CaseRecentRelease,
	CaseOtherAccount,
}

// DefaultStart is where simulated fleets start the clock: 02:00 in Shanghai,
// inside a typical night maintenance window.
var DefaultStart = time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)

// Newest versions of the generated catalogs, for tests.
const (
	NewestDevice      = "2.3.1" // sag-1000 and HA pairs
	NewestBeta        = "2.4.0" // sag-1000 beta channel
	NewestDpi         = "1.8.3" // sag-1000 DPI signatures
	NewestRecentModel = "2.3.0" // sag-100wm, released two days before DefaultStart
	NewestVCPE        = "3.5.0"
)

// Catalogs returns the version catalogs that generated fleets use. The lists
// deliberately include versions older than any device and a beta newer than
// every release, so the function must filter and compare, not take the first.
func Catalogs(start time.Time) map[string]Catalog {
	day := 24 * time.Hour
	at := func(daysAgo int) time.Time { return start.Add(-time.Duration(daysAgo) * day).Truncate(time.Hour) }
	return map[string]Catalog{
		"sag-1000": {
			Device: []Release{
				{VersionCode: "1.9.0", VersionName: "SAG-1000 1.9.0", Type: "release", CreateTime: at(520)},
				{VersionCode: "2.0.8", VersionName: "SAG-1000 2.0.8", Type: "release", CreateTime: at(330)},
				{VersionCode: "2.2.0", VersionName: "SAG-1000 2.2.0", Type: "release", CreateTime: at(190)},
				{VersionCode: "2.3.1", VersionName: "SAG-1000 2.3.1", Type: "release", CreateTime: at(68)},
				{VersionCode: "2.4.0", VersionName: "SAG-1000 2.4.0 beta", Type: "beta", CreateTime: at(21)},
			},
			Dpi: []Release{
				{VersionCode: "1.6.2", Type: "release", CreateTime: at(300)},
				{VersionCode: "1.7.0", Type: "release", CreateTime: at(120)},
				{VersionCode: "1.8.3", Type: "release", CreateTime: at(30)},
			},
		},
		"sag-100wm": {
			Device: []Release{
				{VersionCode: "2.0.2", VersionName: "SAG-100WM 2.0.2", Type: "release", CreateTime: at(400)},
				{VersionCode: "2.1.5", VersionName: "SAG-100WM 2.1.5", Type: "release", CreateTime: at(150)},
				{VersionCode: "2.3.0", VersionName: "SAG-100WM 2.3.0", Type: "release", CreateTime: at(2)},
			},
			Dpi: []Release{
				{VersionCode: "1.7.0", Type: "release", CreateTime: at(120)},
			},
		},
		"sag-vcpe": {
			Device: []Release{
				{VersionCode: "3.4.2", VersionName: "vCPE 3.4.2", Type: "release", CreateTime: at(200)},
				{VersionCode: "3.5.0", VersionName: "vCPE 3.5.0", Type: "release", CreateTime: at(45)},
			},
		},
	}
}

// Options shape a generated fleet.
type Options struct {
	Seed    uint64
	Regions []string // default cn-shanghai and ap-southeast-1
	Start   time.Time
	// Counts fixes how many gateways of each case to make (Demo uses this).
	Counts map[Case]int
	// Gateways and Mix make a large fleet: Gateways in all, each case drawn
	// with the weight Mix gives it (default DefaultMix).
	Gateways int
	Mix      map[Case]float64
	// BadRelease makes NewestDevice a bad release: that share of the
	// gateways that would install it come back on the old version.
	BadRelease float64
}

// DefaultMix is a realistic night for a large fleet: most gateways behind,
// some current, a few in every other state.
var DefaultMix = map[Case]float64{
	CaseOutdated: 60, CaseUpToDate: 20, CaseBetaAhead: 2, CaseDpiOutdated: 3, CaseHAPair: 3,
	CaseOffline: 4, CaseNotActivated: 1, CaseUnconfirmed: 0.5, CaseArrears: 1, CaseExpired: 1,
	CaseNotBoundCCN: 1, CaseReseller: 0.5, CaseVersionUnknown: 0.5, CaseSoftware: 1,
	CaseRecentRelease: 1.5,
}

// ParseMix reads a mix written "case=weight,case=weight" (genfleet's -mix),
// for a night DefaultMix leaves out, such as devices that are lost or revert.
func ParseMix(s string) (map[Case]float64, error) {
	known := map[Case]bool{}
	for _, c := range AllCases {
		known[c] = true
	}
	mix := map[Case]float64{}
	for _, part := range strings.Split(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want case=weight", part)
		}
		c := Case(name)
		if !known[c] {
			return nil, fmt.Errorf("mix: unknown case %q", name)
		}
		w, err := strconv.ParseFloat(weight, 64)
		if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
			return nil, fmt.Errorf("mix: weight of %s: %q is not a number of 0 or more", name, weight)
		}
		mix[c] = w
	}
	total := 0.0
	for _, w := range mix {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q: the weights add up to 0", s)
	}
	return mix, nil
}

// Generate builds a fleet. The same options always give the same fleet.
func Generate(o Options) *Fleet {
	if len(o.Regions) == 0 {
		o.Regions = []string{"cn-shanghai", "ap-southeast-1"}
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5a6))
	f := &Fleet{
		AccountID: "1234567890123456",
		Start:     o.Start,
		Regions:   o.Regions,
		Catalogs:  Catalogs(o.Start),
	}
	var cases []Case
	if o.Counts != nil {
		for _, c := range AllCases {
			for range o.Counts[c] {
				cases = append(cases, c)
			}
		}
		rng.Shuffle(len(cases), func(i, j int) { cases[i], cases[j] = cases[j], cases[i] })
	} else {
		mix := o.Mix
		if mix == nil {
			mix = DefaultMix
		}
		for range o.Gateways {
			cases = append(cases, draw(rng, mix))
		}
	}
	g := generator{rng: rng, start: o.Start, ids: map[string]bool{}}
	ccns := map[string][]string{}
	for _, r := range o.Regions {
		for range 8 {
			ccns[r] = append(ccns[r], "ccn-"+g.token(15))
		}
	}
	for i, c := range cases {
		region := o.Regions[i%len(o.Regions)]
		gw := g.gateway(c, region, ccns[region][rng.IntN(len(ccns[region]))], i+1)
		if o.BadRelease > 0 && gw.Behavior.Upgrade == "" && wouldInstallNewest(gw) && rng.Float64() < o.BadRelease {
			gw.Behavior = Behavior{Upgrade: UpgradeRevert, Versions: []string{NewestDevice}}
		}
		f.Gateways = append(f.Gateways, gw)
	}
	return f
}

// demoCounts make the 200 gateways of the demo fleets.
var demoCounts = map[Case]int{
	CaseOutdated: 120, CaseUpToDate: 30, CaseBetaAhead: 4, CaseDpiOutdated: 6, CaseHAPair: 4,
	CaseReverts: 3, CaseLost: 2, CaseOffline: 6, CaseNotActivated: 3, CaseUnconfirmed: 2,
	CaseArrears: 2, CaseExpired: 2, CaseNotBoundCCN: 3, CaseReseller: 2, CaseVersionUnknown: 2,
	CaseSoftware: 3, CaseRecentRelease: 4, CaseOtherAccount: 2,
}

// Demo is the fleet of testdata/fleets/demo.json: 200 gateways in two regions
// covering every case.
func Demo() *Fleet {
	f := Generate(Options{Seed: 20261122, Counts: demoCounts})
	f.Comment = "Demo fleet: 200 gateways in two regions, every eligibility case (see the case label of each gateway). " +
		"Generated by: go run ./internal/cloudsim/fleet/genfleet -demo > testdata/fleets/demo.json"
	return f
}

// BadReleaseDemo is the fleet of testdata/fleets/bad-release.json: the demo's
// mix, but the newest SAG-1000 firmware comes back on the old version on half
// the gateways that install it. A staged rollout must stop early.
func BadReleaseDemo() *Fleet {
	f := Generate(Options{Seed: 20261123, Counts: demoCounts, BadRelease: 0.5})
	f.Comment = "Bad-release fleet: the demo's 200 gateways, but " + NewestDevice + " fails (comes back on the old version) on half " +
		"the SAG-1000s that install it. Generated by: go run ./internal/cloudsim/fleet/genfleet -bad-release-demo > testdata/fleets/bad-release.json"
	return f
}

func wouldInstallNewest(g Gateway) bool {
	return g.HardwareVersion == "sag-1000" && g.Status == "Active" && g.AssociatedCcnID != "" &&
		len(g.Devices) > 0 && g.Devices[0].SoftwareVersion != "" &&
		CompareVersions(g.Devices[0].SoftwareVersion, NewestDevice) < 0
}

func draw(rng *rand.Rand, mix map[Case]float64) Case {
	total := 0.0
	for _, c := range AllCases {
		total += mix[c]
	}
	x := rng.Float64() * total
	for _, c := range AllCases {
		if x < mix[c] {
			return c
		}
		x -= mix[c]
	}
	return CaseOutdated
}

type generator struct {
	rng   *rand.Rand
	start time.Time
	ids   map[string]bool
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func (g *generator) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = lowerAlnum[g.rng.IntN(len(lowerAlnum))]
	}
	return string(b)
}

func (g *generator) uniqueID() string {
	for {
		id := "sag-" + g.token(13)
		if !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *generator) device(version, dpi string) Device {
	return Device{SerialNumber: "sage" + g.token(10), SoftwareVersion: version, DpiSignatureDbVersion: dpi}
}

func (g *generator) pick(options ...string) string { return options[g.rng.IntN(len(options))] }

func (g *generator) gateway(c Case, region, ccn string, n int) Gateway {
	day := 24 * time.Hour
	created := g.start.Add(-time.Duration(200+g.rng.IntN(600)) * day).Truncate(time.Second)
	gw := Gateway{
		SmartAGID:       g.uniqueID(),
		RegionID:        region,
		Name:            fmt.Sprintf("%s-site-%05d", region, n),
		Case:            c,
		Status:          "Active",
		HardwareVersion: "sag-1000",
		AssociatedCcnID: ccn,
		City:            region,
		CreateTime:      created,
		EndTime:         g.start.Add(time.Duration(90+g.rng.IntN(700)) * day).Truncate(time.Second),
	}
	old := func() string { return g.pick("1.9.0", "2.0.8", "2.2.0") }
	gw.Devices = []Device{g.device(old(), NewestDpi)}
	switch c {
	case CaseOutdated:
		if g.rng.IntN(10) == 0 {
			gw.HardwareVersion = "sag-vcpe"
			gw.Devices = []Device{g.device("3.4.2", "")}
		}
	case CaseUpToDate:
		gw.Devices = []Device{g.device(NewestDevice, NewestDpi)}
	case CaseBetaAhead:
		gw.Devices = []Device{g.device(NewestDevice, NewestDpi)}
	case CaseDpiOutdated:
		gw.Devices = []Device{g.device(NewestDevice, g.pick("1.6.2", "1.7.0"))}
	case CaseHAPair:
		v := old()
		gw.Devices = []Device{g.device(v, NewestDpi), g.device(v, NewestDpi)}
	case CaseReverts:
		gw.Behavior = Behavior{Upgrade: UpgradeRevert}
	case CaseLost:
		gw.Behavior = Behavior{Upgrade: UpgradeLost}
	case CaseOffline:
		gw.Status = "Offline"
	case CaseNotActivated:
		gw.Status = g.pick("Ordered", "Delivered", "Received")
		gw.AssociatedCcnID = ""
	case CaseUnconfirmed:
		gw.Status = "Unconfirmed"
	case CaseArrears:
		gw.Status = "Arrearage"
	case CaseExpired:
		gw.EndTime = g.start.Add(-time.Duration(1+g.rng.IntN(30)) * day).Truncate(time.Second)
	case CaseNotBoundCCN:
		gw.AssociatedCcnID = ""
	case CaseReseller:
		gw.ResellerUID = fmt.Sprintf("%d", 1000000000000000+g.rng.Int64N(8999999999999999))
	case CaseVersionUnknown:
		gw.Devices[0].SoftwareVersion = ""
	case CaseSoftware:
		gw.HardwareVersion = "sag-software"
		gw.Devices = nil
	case CaseRecentRelease:
		gw.HardwareVersion = "sag-100wm"
		gw.Devices = []Device{g.device("2.1.5", "1.7.0")}
	case CaseOtherAccount:
		gw.OwnerAccountID = "9876543210987654"
	}
	return gw
}
