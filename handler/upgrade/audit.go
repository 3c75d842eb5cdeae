package upgrade

import "time"

// AuditEntry is one line of the ledger's history: who did what, when. A
// gateway's trail holds the moves of its records (Event is the state a
// record moved to: claimed, requested, verified, unverified, failed,
// released); a rollout's or the kill switch's holds the control requests
// that acted on it (Event is the request's kind, and Operator who asked).
type AuditEntry struct {
	Gateway      string      `json:"smartAGId"` // or the subject of a control request
	VersionType  VersionType `json:"versionType,omitempty"`
	Time         time.Time   `json:"time"`
	Event        string      `json:"event"`
	Target       string      `json:"toVersion,omitempty"`
	From         string      `json:"fromVersion,omitempty"`
	Serial       string      `json:"serialNumber,omitempty"`
	RunID        string      `json:"runId"`
	RequestID    string      `json:"requestId"`
	APIRequestID string      `json:"apiRequestId,omitempty"`
	Trigger      string      `json:"trigger"`
	Correlation  string      `json:"correlationId,omitempty"`
	Operator     string      `json:"operator,omitempty"` // as the caller declared it
	Force        bool        `json:"force,omitempty"`
	Error        string      `json:"error,omitempty"`
	// Rev is the record's revision the entry moved it to. It orders the
	// entries of one gateway and version type written at the same instant
	// (a frozen test clock, a release and a new claim in one run).
	Rev int64 `json:"rev,omitempty"`
}
