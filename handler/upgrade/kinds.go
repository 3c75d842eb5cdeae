package upgrade

import (
	"regexp"
	"slices"
	"strings"
)

// Kind says what a request asks the function to do.
type Kind string

const (
	KindSweep   Kind = "sweep"   // upgrade every eligible gateway (the default)
	KindVerify  Kind = "verify"  // re-check gateways after an upgrade
	KindPlan    Kind = "plan"    // what a sweep would do at the next window opening: a dry run, no fan-out
	KindStatus  Kind = "status"  // how the rollouts, the kill switch and the last runs stand (no SAG call)
	KindHistory Kind = "history" // one gateway's ledger record and audit trail
	KindStop    Kind = "stop"    // the kill switch: no update call anywhere until resume
	KindResume  Kind = "resume"  // clear the kill switch
	KindReset   Kind = "reset"   // close a rollout's breaker (targetVersion, versionTypes, model)
	KindPause   Kind = "pause"   // no update call for a rollout's gateways until unpause
	KindUnpause Kind = "unpause" // let a paused rollout go on
	KindApprove Kind = "approve" // let the next wave of a rollout start (ROLLOUT_APPROVAL=manual)
)

// kindFields is every kind a request may name, with the fields that apply
// to it besides kind, correlationId and operator (which apply to every
// kind). Any other field given is an error: a stop naming gateways would
// stop the whole fleet. A kind that steers is served only to an operator. A
// new kind is one constant above and one row here.
var kindFields = []kindRow{
	{kind: KindSweep, fields: []string{"regions", "gatewayIds", "versionTypes", "targetVersion", "dryRun", "force", "retryFailedOnly", "parentRunId", "batchId"}},
	{kind: KindVerify, fields: []string{"regions", "gatewayIds", "versionTypes", "targetVersion", "parentRunId"}},
	{kind: KindPlan, looks: true, fields: []string{"regions", "gatewayIds", "versionTypes", "targetVersion"}},
	{kind: KindStatus, looks: true},
	{kind: KindHistory, looks: true, fields: []string{"gatewayIds", "versionTypes"},
		required: map[string]string{"gatewayIds": "a history names the gateway whose trail it reads"}},
	{kind: KindStop, steers: true},
	{kind: KindResume, steers: true},
	{kind: KindReset, steers: true, fields: []string{"versionTypes", "targetVersion", "model"},
		required: map[string]string{"targetVersion": "a reset names the rollout's targetVersion (and versionTypes, default the configured ones)"}},
	{kind: KindPause, steers: true, fields: []string{"versionTypes", "targetVersion", "model"},
		required: map[string]string{"targetVersion": "a pause names the rollout's targetVersion (and versionTypes and model to narrow it)"}},
	{kind: KindUnpause, steers: true, fields: []string{"versionTypes", "targetVersion", "model"},
		required: map[string]string{"targetVersion": "an unpause names the rollout's targetVersion (and versionTypes and model to narrow it)"}},
	{kind: KindApprove, steers: true, fields: []string{"versionTypes", "targetVersion", "model", "wave"},
		required: map[string]string{
			"targetVersion": "an approval names the rollout's targetVersion, model and the wave it lets start",
			"model":         "an approval names the rollout's model: it approves one rollout's wave",
			"wave":          "an approval names the wave it lets start (the next one, 1 or more)",
		}},
}

type kindRow struct {
	kind     Kind
	steers   bool // a control request: stops, resumes, resets, pauses, approves
	looks    bool // a query: changes nothing, served to those who may only look
	fields   []string
	required map[string]string // field -> why a request of the kind must give it
}

// Steers reports whether a kind is a control request, served only to an
// operator.
func (k Kind) Steers() bool {
	for _, row := range kindFields {
		if row.kind == k {
			return row.steers
		}
	}
	return false
}

// Looks reports whether a kind only reads (a query): it changes nothing
// and calls for no upgrade, so the query function serves it to operators
// who may only look.
func (k Kind) Looks() bool {
	for _, row := range kindFields {
		if row.kind == k {
			return row.looks
		}
	}
	return false
}

// Required returns the fields a request of kind k must give, each with why.
func Required(k Kind) map[string]string {
	for _, row := range kindFields {
		if row.kind == k {
			return row.required
		}
	}
	return nil
}

// Known reports whether k is a kind this version of the function handles.
func (k Kind) Known() bool {
	_, ok := fieldsOf(k)
	return ok
}

// fieldsOf returns the row of kind k, and whether there is one.
func fieldsOf(k Kind) ([]string, bool) {
	for _, row := range kindFields {
		if row.kind == k {
			return row.fields, true
		}
	}
	return nil, false
}

// Applies reports whether field may be given in a request of kind k.
func Applies(k Kind, field string) bool {
	fields, _ := fieldsOf(k)
	return field == "kind" || field == "correlationId" || field == "operator" || slices.Contains(fields, field)
}

// Kinds lists the kinds in the table's order.
func Kinds() []Kind {
	ks := make([]Kind, len(kindFields))
	for i, row := range kindFields {
		ks[i] = row.kind
	}
	return ks
}

// KindsTaking names the kinds that field applies to, for an error message.
func KindsTaking(field string) string {
	var ks []string
	for _, row := range kindFields {
		if Applies(row.kind, field) {
			ks = append(ks, string(row.kind))
		}
	}
	return strings.Join(ks, ", ")
}

// VersionType names the software a version belongs to.
type VersionType string

const (
	VersionDevice VersionType = "Device" // the gateway firmware
	VersionDpi    VersionType = "Dpi"    // the DPI signature database
)

// Known reports whether v is Device or Dpi, in the exact case SAG uses.
func (v VersionType) Known() bool { return v == VersionDevice || v == VersionDpi }

// sagRegions are the regions with a SAG endpoint: the SDK's endpoint table
// plus the three the newer Smartag client adds.
var sagRegions = []string{
	"cn-shanghai", "cn-hongkong", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
	"ap-southeast-5", "eu-central-1", "cn-hangzhou", "cn-shanghai-finance-1", "ap-northeast-1",
}

// SAGRegions returns the regions that have a SAG endpoint.
func SAGRegions() []string { return slices.Clone(sagRegions) }

// KnownRegion reports whether id is a region with a SAG endpoint.
func KnownRegion(id string) bool { return slices.Contains(sagRegions, id) }

var (
	gatewayIDPattern = regexp.MustCompile(`^sag-[a-z0-9]+$`)
	versionPattern   = regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}$`)
)

// ValidGatewayID reports whether id is shaped like a SmartAGId: "sag-" and
// lowercase letters and digits.
func ValidGatewayID(id string) bool { return gatewayIDPattern.MatchString(id) }

// ValidTarget reports whether v can name a version a request pins: 2 to 4
// dot-separated numbers, such as 2.3.1.
func ValidTarget(v string) bool { return versionPattern.MatchString(v) }
