package upgrade

// Outcome is what happened to one gateway and version type in a run.
type Outcome string

const (
	OutcomeRequested  Outcome = "requested"  // the update call was accepted
	OutcomePlanned    Outcome = "planned"    // dry run: would be requested
	OutcomeSkipped    Outcome = "skipped"    // not eligible or nothing to do; Reason says why
	OutcomeDeferred   Outcome = "deferred"   // eligible but not now; Reason says why
	OutcomeFailed     Outcome = "failed"     // the API refused or kept failing; ErrorCode holds the SAG code
	OutcomeRejected   Outcome = "rejected"   // a message that cannot be processed
	OutcomeVerified   Outcome = "verified"   // a later check found the new version
	OutcomeUnverified Outcome = "unverified" // a later check did not find it
)

// Result is one entry of a run report, and the data of its outcome event.
type Result struct {
	SmartAGID    string      `json:"smartAGId"`
	RegionID     string      `json:"regionId"`
	SerialNumber string      `json:"serialNumber"`
	VersionType  VersionType `json:"versionType"`
	FromVersion  string      `json:"fromVersion"`
	ToVersion    string      `json:"toVersion"`
	Outcome      Outcome     `json:"outcome"`
	Reason       string      `json:"reason"`    // e.g. up_to_date, outside_window
	ErrorCode    string      `json:"errorCode"` // the SAG error code of a failure
	RequestID    string      `json:"requestId"` // of the SAG call that decided the outcome

	Error     string `json:"error,omitempty"`     // human-readable cause of a failure or rejection
	Message   string `json:"message,omitempty"`   // a rejected message as it arrived
	MessageID string `json:"messageId,omitempty"` // the MNS message the result came from
	Force     bool   `json:"force,omitempty"`     // the request bypassed the window and the breaker
}

// Counts sums the outcomes of a run.
type Counts struct {
	Scanned    int `json:"scanned"` // gateways looked at; not an outcome
	Requested  int `json:"requested"`
	Planned    int `json:"planned"`
	Skipped    int `json:"skipped"`
	Deferred   int `json:"deferred"`
	Failed     int `json:"failed"`
	Rejected   int `json:"rejected"`
	Verified   int `json:"verified"`
	Unverified int `json:"unverified"`
}

// Add counts one outcome. It reports false, counting nothing, for an
// outcome it does not know.
func (c *Counts) Add(o Outcome) bool {
	n := c.counter(o)
	if n == nil {
		return false
	}
	*n++
	return true
}

func (c *Counts) counter(o Outcome) *int {
	switch o {
	case OutcomeRequested:
		return &c.Requested
	case OutcomePlanned:
		return &c.Planned
	case OutcomeSkipped:
		return &c.Skipped
	case OutcomeDeferred:
		return &c.Deferred
	case OutcomeFailed:
		return &c.Failed
	case OutcomeRejected:
		return &c.Rejected
	case OutcomeVerified:
		return &c.Verified
	case OutcomeUnverified:
		return &c.Unverified
	}
	return nil
}

// Known reports whether o is one of the outcomes above.
func (o Outcome) Known() bool { return new(Counts).counter(o) != nil }
