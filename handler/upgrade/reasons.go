package upgrade

// The reason of every result, by outcome. Operators filter events and logs on
// them; the README lists them too.

// skipped: not eligible, or nothing to do.
const (
	ReasonUpToDate       = "up_to_date"         // already on the newest acceptable version
	ReasonNoRelease      = "no_release"         // the gateway is offered no version of the channel
	ReasonHeld           = "held"               // every newer version is on the hold list
	ReasonTooNew         = "release_too_new"    // every newer version is younger than MIN_RELEASE_AGE
	ReasonVersionUnknown = "version_unknown"    // the device reports no version
	ReasonNotOffered     = "target_not_offered" // the pinned targetVersion is not in the gateway's list
	ReasonWouldDowngrade = "would_downgrade"    // the pinned targetVersion is older than the device's
	ReasonOffline        = "offline"            // Status Offline
	ReasonNotActivated   = "not_activated"      // Ordered, Delivered, Received, Init, Returning
	ReasonExpired        = "expired"            // in arrears or past its EndTime
	ReasonStateUnknown   = "state_unknown"      // Unconfirmed, or a status this version does not know
	ReasonNotBoundCCN    = "not_bound_ccn"      // no cloud connect network
	ReasonNoDevice       = "no_device"          // no hardware bound (e.g. a SAG App instance)
	ReasonNotFound       = "not_found"          // named in gatewayIds but not in any swept region
	ReasonInProgress     = "in_progress"        // a claim or an upgrade not yet verified holds the gateway
	ReasonPenalty        = "penalty"            // too many failed attempts: held back until the cool-down ends
)

// deferred: eligible, but not now.
const (
	ReasonOutsideWindow = "outside_window"     // the upgrade would not end inside the maintenance window
	ReasonDeadline      = "deadline"           // no time left in this invocation
	ReasonRunLimit      = "run_limit"          // MAX_UPGRADES_PER_RUN reached
	ReasonThrottled     = "throttled"          // the API kept answering Throttling
	ReasonTryLater      = "try_later"          // the device could not report its version or state
	ReasonLedgerDown    = "ledger_unavailable" // no claim could be written, so no call was made
	ReasonQueueDown     = "queue_unavailable"  // its batch or continuation could not be put on the work queue
	ReasonWave          = "rollout_wave"       // waiting for its wave (the wave is full, or soaking)
	ReasonBreakerOpen   = "breaker_open"       // the rollout's breaker is open
	ReasonKillSwitch    = "kill_switch"        // the kill switch stops every update call
	ReasonPaused        = "paused"             // an operator paused its rollout
	// Its rollout's next wave has soaked and waits for an operator's
	// approval (ROLLOUT_APPROVAL=manual).
	ReasonAwaitingApproval = "awaiting_approval"
	ReasonNightLimit       = "night_limit" // MAX_UPGRADES_PER_NIGHT reached
	// The gateway's other version type is being upgraded (in this run, or
	// in flight from an earlier one): one at a time, firmware first.
	ReasonTypeInFlight = "type_in_flight"
)

// requested.
const (
	ReasonConfirmed     = "confirmed_by_read" // the update call failed but the device shows the upgrade started
	ReasonHAPeerPending = "ha_peer_pending"   // an HA pair: this device now, the other in a later run
)

// failed.
const (
	ReasonAPIError    = "api_error"      // the API refused (errorCode says why)
	ReasonUnconfirmed = "unconfirmed"    // the update call failed and the device shows no upgrade
	ReasonListFailed  = "list_failed"    // the region's gateways could not be listed
	ReasonInternal    = "internal_error" // a bug stopped its handling; the log has the panic
	// A run delivered again (the same message or trigger) finds a gateway it
	// failed already: the outcome stands (failed or unverified), no second call.
	ReasonAttempted = "attempted_this_run"
)

// unverified.
const ReasonVersionDiff = "version_mismatch" // the device does not run the target

// rejected.
const (
	ReasonInvalidRequest = "invalid_request" // the message cannot be read as a request (the error names the field)
	ReasonNoLedger       = "no_ledger"       // the request needs the ledger, which is not configured
	// A control request or force from where only requests come (a
	// trigger): only the operators' function serves them.
	ReasonUnauthorized = "unauthorized"
	// An approval named a wave that is not the rollout's next one (or
	// waves start by themselves: ROLLOUT_APPROVAL=auto).
	ReasonNotNextWave = "not_next_wave"
)
