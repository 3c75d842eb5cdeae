// Package handler is the function: it turns one invocation (a decoded trigger
// payload) into a run that lists the fleet, chooses each gateway's target
// version by policy, decides eligibility, requests the eligible upgrades under
// the rollout limits, and reports every outcome as an event, a log line and an
// entry of the run report.
//
// It talks to the cloud only through the small interfaces of ports.go and
// ledger.go; the adapters in internal/smartag, internal/mns and
// internal/tablestore implement them with the official SDKs, and main wires
// them together.
//
// A run, file by file:
//
//	handler.go   Invoke: decode the trigger, one job per message, the report
//	run.go       the sweep: list the fleet, then chunk by chunk plan, gate, execute
//	fanout.go    a large fleet's planner, and continuations near the deadline
//	plan.go      decide one gateway: ledger record, eligibility, versions, policy
//	gate.go      kill switch, maintenance window, rollout waves and breaker, run limit
//	execute.go   claim, update call, and what the call did
//	claims.go    the ledger protocol: claims, settling, verification, penalty box
//	rollout.go   staged rollouts: canary, waves, soak, breaker, reset
//	control.go   the kill switch
//	verify.go    verify requests
//	calls.go     one rate limit, classified retries
//	outbox.go    outcome events, published while the run goes on
//	reasons.go   the reason of every result
package handler
