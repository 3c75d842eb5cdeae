// Package fleet defines the simulated fleet files of testdata/fleets: the
// regions, the gateways (every SmartAccessGateway field the function reads,
// plus how each device behaves when upgraded) and each hardware model's
// version catalog.
//
// A fleet file is JSON:
//
//	{
//	  "comment":   "free text",
//	  "accountId": "1234567890123456",         // the account the gateways belong to
//	  "start":     "2026-11-22T18:00:00Z",     // where the simulated clock starts
//	  "regions":   ["cn-shanghai", "ap-southeast-1"],
//	  "catalogs": {                             // by hardware model (HardwareVersion)
//	    "sag-1000": {
//	      "Device": [{"versionCode": "2.3.1", "type": "release", "createTime": "2026-09-15T02:00:00Z", "versionName": "…"}],
//	      "Dpi":    [{"versionCode": "1.8.3", "type": "release", "createTime": "…"}]
//	    }
//	  },
//	  "gateways": [{
//	    "smartAGId": "sag-…", "regionId": "cn-shanghai", "name": "…", "case": "outdated",
//	    "status": "Active", "hardwareVersion": "sag-1000", "associatedCcnId": "ccn-…",
//	    "endTime": "2027-…", "devices": [{"serialNumber": "sage…", "softwareVersion": "2.0.8", "dpiSignatureDbVersion": "1.7.0"}],
//	    "behavior": {"upgrade": "revert", "versions": ["2.3.1"], "upgradeMinutes": 12}
//	  }]
//	}
//
// A gateway has one device, or two for an HA pair (the first is the master).
// "case" is a label for people and tests (which eligibility case the gateway
// stands for); the emulator ignores it and reads only the state fields.
package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
)

// Fleet is a simulated fleet.
type Fleet struct {
	Comment   string             `json:"comment,omitempty"`
	AccountID string             `json:"accountId"`
	Start     time.Time          `json:"start"`
	Regions   []string           `json:"regions"`
	Catalogs  map[string]Catalog `json:"catalogs"`
	Gateways  []Gateway          `json:"gateways"`
}

// Catalog is one hardware model's versions, by version type.
type Catalog struct {
	Device []Release `json:"Device,omitempty"`
	Dpi    []Release `json:"Dpi,omitempty"`
}

// Releases returns the catalog's versions of the given type ("Device" or "Dpi").
func (c Catalog) Releases(versionType string) []Release {
	switch versionType {
	case "Device":
		return c.Device
	case "Dpi":
		return c.Dpi
	}
	return nil
}

// Release is one entry of DescribeSmartAccessGatewayVersions.
type Release struct {
	VersionCode string    `json:"versionCode"`
	VersionName string    `json:"versionName,omitempty"`
	Type        string    `json:"type"` // "release" or "beta"
	CreateTime  time.Time `json:"createTime"`
}

// Gateway is one SAG instance.
type Gateway struct {
	SmartAGID       string    `json:"smartAGId"`
	RegionID        string    `json:"regionId"`
	Name            string    `json:"name,omitempty"`
	Case            Case      `json:"case,omitempty"`
	Status          string    `json:"status"`
	HardwareVersion string    `json:"hardwareVersion"`
	AssociatedCcnID string    `json:"associatedCcnId,omitempty"`
	ResourceGroupID string    `json:"resourceGroupId,omitempty"`
	City            string    `json:"city,omitempty"`
	CreateTime      time.Time `json:"createTime"`
	EndTime         time.Time `json:"endTime"`
	// OwnerAccountID, when set and not the fleet's account, makes the gateway
	// another account's: invisible to listing, Forbidden when named.
	OwnerAccountID string `json:"ownerAccountId,omitempty"`
	// ResellerUID marks an instance managed by a reseller: PermissionError.
	ResellerUID string   `json:"resellerUid,omitempty"`
	Devices     []Device `json:"devices,omitempty"`
	Behavior    Behavior `json:"behavior,omitzero"`
}

// SerialNumber is the gateway's SerialNumber as the API shows it: the device
// serial numbers joined by commas.
func (g Gateway) SerialNumber() string {
	sns := make([]string, len(g.Devices))
	for i, d := range g.Devices {
		sns[i] = d.SerialNumber
	}
	return strings.Join(sns, ",")
}

// Device is one box of a gateway.
type Device struct {
	SerialNumber          string `json:"serialNumber"`
	SoftwareVersion       string `json:"softwareVersion"`
	DpiSignatureDbVersion string `json:"dpiSignatureDbVersion,omitempty"`
}

// Behavior says what a device does after an accepted update.
type Behavior struct {
	// Upgrade is "ok" (or empty): back online on the new version; "revert":
	// back online on the old version; "lost": never back online.
	Upgrade string `json:"upgrade,omitempty"`
	// Versions, when set, limits Upgrade to updates to these versions; other
	// updates behave "ok". This is how a fleet says "release X is bad here".
	Versions []string `json:"versions,omitempty"`
	// UpgradeMinutes overrides the emulator's upgrade time (simulated minutes).
	UpgradeMinutes int `json:"upgradeMinutes,omitempty"`
}

// Outcome returns what upgrading to version does on this gateway.
func (b Behavior) Outcome(version string) string {
	if b.Upgrade == "" || (len(b.Versions) > 0 && !slices.Contains(b.Versions, version)) {
		return UpgradeOK
	}
	return b.Upgrade
}

// Upgrade behaviours.
const (
	UpgradeOK     = "ok"
	UpgradeRevert = "revert"
	UpgradeLost   = "lost"
)

// Statuses of a SAG instance, as the API spells them.
var Statuses = []string{"Ordered", "Delivered", "Received", "Unconfirmed", "Active", "Offline", "Arrearage"}

// Load reads and validates a fleet file.
func Load(path string) (*Fleet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a fleet. Unknown fields are errors, so a typo in
// a hand-written fleet does not silently change a test.
func Parse(b []byte) (*Fleet, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f Fleet
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Marshal encodes the fleet as indented JSON, one stable layout so generated
// files diff well.
func (f *Fleet) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	gatewayIDPattern = regexp.MustCompile(`^sag-[a-z0-9]+$`)
	versionPattern   = regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}$`)
)

// ValidVersion reports whether v is a dotted number of 2 to 4 parts.
func ValidVersion(v string) bool { return versionPattern.MatchString(v) }

// Validate checks that the fleet is consistent; the error names the first
// offending gateway or catalog entry.
func (f *Fleet) Validate() error {
	if f.AccountID == "" {
		return fmt.Errorf("fleet: accountId is empty")
	}
	if len(f.Regions) == 0 {
		return fmt.Errorf("fleet: regions is empty")
	}
	for model, c := range f.Catalogs {
		for _, vt := range []string{"Device", "Dpi"} {
			for i, r := range c.Releases(vt) {
				where := fmt.Sprintf("fleet: catalogs[%q].%s[%d]", model, vt, i)
				if !ValidVersion(r.VersionCode) {
					return fmt.Errorf("%s: versionCode %q is not a dotted version", where, r.VersionCode)
				}
				if r.Type != "release" && r.Type != "beta" {
					return fmt.Errorf("%s: type %q is not release or beta", where, r.Type)
				}
			}
		}
	}
	seen := make(map[string]bool, len(f.Gateways))
	for i, g := range f.Gateways {
		where := fmt.Sprintf("fleet: gateways[%d] (%s)", i, g.SmartAGID)
		switch {
		case !gatewayIDPattern.MatchString(g.SmartAGID):
			return fmt.Errorf("%s: smartAGId is not sag- followed by lowercase letters and digits", where)
		case seen[g.SmartAGID]:
			return fmt.Errorf("%s: duplicate smartAGId", where)
		case !slices.Contains(f.Regions, g.RegionID):
			return fmt.Errorf("%s: regionId %q is not one of the fleet's regions", where, g.RegionID)
		case !slices.Contains(Statuses, g.Status):
			return fmt.Errorf("%s: status %q is not one of %v", where, g.Status, Statuses)
		case g.HardwareVersion == "":
			return fmt.Errorf("%s: hardwareVersion is empty", where)
		case len(g.Devices) > 2:
			return fmt.Errorf("%s: %d devices; a gateway has one, or two for an HA pair", where, len(g.Devices))
		}
		seen[g.SmartAGID] = true
		for j, d := range g.Devices {
			if d.SerialNumber == "" {
				return fmt.Errorf("%s: devices[%d].serialNumber is empty", where, j)
			}
			if d.SoftwareVersion != "" && !ValidVersion(d.SoftwareVersion) {
				return fmt.Errorf("%s: devices[%d].softwareVersion %q is not a dotted version", where, j, d.SoftwareVersion)
			}
		}
		switch g.Behavior.Upgrade {
		case "", UpgradeOK, UpgradeRevert, UpgradeLost:
		default:
			return fmt.Errorf("%s: behavior.upgrade %q is not ok, revert or lost", where, g.Behavior.Upgrade)
		}
		if g.Behavior.UpgradeMinutes < 0 {
			return fmt.Errorf("%s: behavior.upgradeMinutes is negative", where)
		}
	}
	return nil
}

// Gateway returns the gateway with the given id.
func (f *Fleet) Gateway(id string) (Gateway, bool) {
	for _, g := range f.Gateways {
		if g.SmartAGID == id {
			return g, true
		}
	}
	return Gateway{}, false
}

// CompareVersions compares dotted numeric versions part by part, a missing
// part counting as 0 (so "2.0" == "2.0.0"). It returns -1, 0 or +1; a version
// that does not parse sorts first.
func CompareVersions(a, b string) int {
	va, errA := version.NewVersion(a)
	vb, errB := version.NewVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}
