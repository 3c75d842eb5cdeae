package handler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// SAG is the Smart Access Gateway API, one region at a time. Implementations
// make exactly one API call per method call (retries, rate limiting and error
// policy live in this package) and report API failures as *APIError.
type SAG interface {
	// ListGateways returns one page (numbered from 1) of a region's
	// gateways, at most PageSize of them, and how many match in all.
	ListGateways(ctx context.Context, region string, f ListFilter, page int) (gws []Gateway, total int, err error)
	// Versions returns the versions the gateway is offered for a version
	// type. serial, when set, names one device of an HA pair.
	Versions(ctx context.Context, g Gateway, serial string, vt upgrade.VersionType) ([]Release, error)
	// Devices reads the gateway's live status and each device's versions.
	Devices(ctx context.Context, g Gateway) (Detail, error)
	// Update starts an upgrade and returns the API's RequestId. serial, when
	// set, names one device of an HA pair.
	Update(ctx context.Context, g Gateway, serial string, vt upgrade.VersionType, version string) (string, error)
}

// PageSize is the largest page DescribeSmartAccessGateways serves.
const PageSize = 50

// ListFilter narrows a listing.
type ListFilter struct {
	IDs   []string // only these gateways (at most PageSize)
	Model string   // only this hardware model (HardwareType)
	Below string   // only gateways whose firmware is older than this version
}

// Publisher sends one outcome event to the outcome topic.
type Publisher interface {
	Publish(ctx context.Context, ev events.CloudEvent) error
}

// Cloud is what one invocation talks to, built with that invocation's
// credentials.
type Cloud struct {
	SAG    SAG
	Events Publisher // nil: outcome events are not published (OUTCOME_TOPIC unset)
	Ledger Ledger    // nil: no claims, no verification follow-up (LEDGER_* unset)
	Work   WorkQueue // nil: no verify messages; the next sweep verifies (WORK_QUEUE unset)
	// CallTimeout is the longest an adapter's SDK call can run: the SDKs of
	// MNS and Tablestore take no context, so an abandoned call's goroutine
	// lives until this timeout ends it. The run starts none so late that it
	// would outlive the invocation.
	CallTimeout time.Duration
}

// Gateway is a SAG instance as the list shows it.
type Gateway struct {
	ID                    string
	Region                string
	Name                  string
	Status                string
	Model                 string // HardwareVersion: sag-1000, sag-100wm, sag-vcpe, …
	SerialNumbers         []string
	SoftwareVersion       string // the master device's firmware
	BackupSoftwareVersion string // the second device's, for an HA pair
	CcnID                 string
	EndTime               time.Time // zero when unknown
}

// HA reports whether the gateway is an HA pair of two devices.
func (g Gateway) HA() bool { return len(g.SerialNumbers) > 1 }

// Detail is a gateway's live state, from DescribeSmartAccessGatewayAttribute.
type Detail struct {
	Status   string
	MasterSN string // TrafficMasterSn: the device carrying traffic
	Devices  []Device
}

// Device is one box of a gateway.
type Device struct {
	SerialNumber string
	Software     string // SoftwareVersion
	Dpi          string // DpiSignatureDbVersion
}

// Version returns the device's version of a version type.
func (d Device) Version(vt upgrade.VersionType) string {
	if vt == upgrade.VersionDpi {
		return d.Dpi
	}
	return d.Software
}

// Release is one version a gateway is offered.
type Release struct {
	Code    string // VersionCode
	Name    string
	Type    string // "release" or "beta"
	Created time.Time
}

// APIError is a failed SAG API call, as an adapter reports it. Message must
// never contain credentials: adapters scrub what the SDK says.
type APIError struct {
	Action    string
	Code      string // the SAG error code; "" when the answer was not a JSON error
	Status    int    // HTTP status; 0 when there was no answer
	Message   string
	RequestID string
	// NoAnswer: the call got no HTTP answer (connection refused, reset,
	// timeout). NotSent: it certainly never reached the service.
	NoAnswer bool
	NotSent  bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Action)
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	case e.NoAnswer:
		b.WriteString(": no answer")
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (RequestId %s)", e.RequestID)
	}
	return b.String()
}
