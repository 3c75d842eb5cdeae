package upgrade

import "time"

// RunSummary is one run as the status shows it.
type RunSummary struct {
	RunID         string    `json:"runId"`
	Kind          Kind      `json:"kind,omitempty"` // of its first request
	Trigger       string    `json:"trigger"`
	CorrelationID string    `json:"correlationId,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Counts        Counts    `json:"counts"`
}

// Fleet is the fleet's versions, each region as the last full sweep of it
// saw it (regions with windows of their own are swept at different times).
type Fleet struct {
	Regions []FleetRegion `json:"regions"`
}

// FleetRegion is one region's versions as a run saw them.
type FleetRegion struct {
	Region   string         `json:"regionId"`
	RunID    string         `json:"runId"`
	SeenAt   time.Time      `json:"seenAt"`
	Versions []FleetVersion `json:"versions"`
}

// FleetVersion counts the gateways of a model on one version of a type.
type FleetVersion struct {
	VersionType VersionType `json:"versionType"`
	Model       string      `json:"model"`
	Version     string      `json:"version"`
	Gateways    int         `json:"gateways"`
}

// GatewayRecord is a gateway's ledger record of one version type, as a
// history shows it.
type GatewayRecord struct {
	VersionType   VersionType `json:"versionType"`
	Region        string      `json:"regionId,omitempty"`
	Model         string      `json:"model,omitempty"`
	State         string      `json:"state"`
	From          string      `json:"fromVersion,omitempty"`
	Target        string      `json:"toVersion,omitempty"`
	Serial        string      `json:"serialNumber,omitempty"`
	Attempts      int         `json:"attempts"`
	PenaltyUntil  time.Time   `json:"penaltyUntil,omitzero"`
	ClaimedAt     time.Time   `json:"claimedAt,omitzero"`
	LeaseUntil    time.Time   `json:"leaseUntil,omitzero"`
	RequestedAt   time.Time   `json:"requestedAt,omitzero"`
	VerifyBy      time.Time   `json:"verifyBy,omitzero"`
	VerifiedAt    time.Time   `json:"verifiedAt,omitzero"`
	UpdatedAt     time.Time   `json:"updatedAt"`
	RunID         string      `json:"runId"`
	Trigger       string      `json:"trigger,omitempty"`
	CorrelationID string      `json:"correlationId,omitempty"`
	APIRequestID  string      `json:"apiRequestId,omitempty"`
	LastError     string      `json:"lastError,omitempty"`
}
