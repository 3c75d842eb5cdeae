package upgrade

import "time"

// Rollout is where a staged rollout of one version to one hardware model
// stands, and the numbers behind its last decision.
type Rollout struct {
	ID          string      `json:"id"` // rollout#<versionType>#<model>#<targetVersion>
	VersionType VersionType `json:"versionType"`
	Model       string      `json:"model"`
	Target      string      `json:"targetVersion"`
	Wave        int         `json:"wave"` // 0 is the canary
	WaveLimit   int         `json:"waveLimit"`
	Population  int         `json:"population"` // gateways that started or would take this version
	LetIn       int         `json:"letIn"`      // gateways the waves have let in so far
	Started     int         `json:"started"`    // gateways with an upgrade to this version in the ledger (before the run)
	InFlight    int         `json:"inFlight"`
	Verified    int         `json:"verified"`
	Failed      int         `json:"failed"` // failed and unverified
	FailureRate float64     `json:"failureRate"`
	Breaker     string      `json:"breaker"` // "closed" or "open"
	Done        bool        `json:"done"`
	// Paused: an operator paused it; no update call for its gateways.
	Paused   bool   `json:"paused,omitempty"`
	PausedBy string `json:"pausedBy,omitempty"`
	// AwaitingApproval is the wave that has soaked and waits for an
	// operator's approval to start (ROLLOUT_APPROVAL=manual); 0: none.
	AwaitingApproval int `json:"awaitingApproval,omitempty"`
	// ApprovedWave is the highest wave an operator approved.
	ApprovedWave int `json:"approvedWave,omitempty"`
	// NextWaveAt is when the next wave may start: the soak ends.
	NextWaveAt time.Time `json:"nextWaveAt,omitzero"`
	// Reason says why the rollout is where it is, with the numbers.
	Reason string `json:"reason,omitempty"`
}
