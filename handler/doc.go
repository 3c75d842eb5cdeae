// Package handler is the function: it turns one invocation (a decoded
// trigger payload) into a run, and a run into a report, an event and a log
// line for every gateway it touched.
//
// It talks to the cloud only through the small interfaces of ports.go and
// ledger.go; the adapters in internal/smartag, internal/mns and
// internal/tablestore implement them with the official SDKs, and main wires
// them together. The words of the domain (kinds, version types, outcomes and
// their reasons, results) are in handler/upgrade; the wire formats in events.
//
// An invocation, and who may ask what:
//
//	handler.go     Invoke: decode, take each message (reject, or translate into a job and serve it), finish, the verdict
//	authority.go   who may steer: control and force only at the control endpoint; forced batches bound in the ledger
//	run.go         a run: the stages composed with what each needs; job.go: one request as the function reads it
//	budget.go      the time to the deadline: when calls, publishes and ledger writes stop starting
//	errors.go      the errors an invocation fails with
//
// A sweep (sweep.go) lists the fleet, reads its ledger records, then chunk
// by chunk runs each gateway and version type through the stages, each in
// its file:
//
//	list.go        list the regions (or the named gateways); what a failed listing means
//	settle.go      settle what earlier runs started: verified, in progress, unverified; the penalty box; a device still down
//	plan.go        due or not, and to which version: eligibility, devices and versions read, the policy, HA order (writes nothing)
//	gate.go        together for a chunk: kill switch, maintenance window, one call per gateway and type, rollout wave and breaker, run limit
//	execute.go     claim, the update call, the kill switch right before it, what a failed call did
//	report.go      the result three ways (report entry, log line, event); which gateways still lack one
//
// What the stages use:
//
//	reads.go       the SAG reads of a run: listing pages, a gateway's devices, the versions it is offered (once a run; a batch's from its start)
//	book.go        the ledger's records: read, claim, every move with its audit entry (only settle and execute write)
//	policy.go      which release a device should run; eligibility.go: which gateways can be upgraded; window.go: when
//	rollout.go     staged rollouts: canary, waves, soak, breaker, reset (their ledger documents)
//	killswitch.go  the kill switch; control.go: the answers of control requests
//	verify.go      the verify kind; verifications.go: the verify requests a run queues for its upgrades
//	fanout.go      a large fleet's planner: lists, becomes one past FANOUT_THRESHOLD; the batches; continuations near the deadline
//	stream.go      the planner's listing, page by page: counts kept, each region's batch sent as its pages fill it (or swept by the planner itself while it has none)
//	outbox.go      the events: published while the run goes on, kept in the ledger while the topic is down
//	calls.go       the retries of every call; pacing.go: the SAG rate, found per action and region (slow start, cut on throttling, CUBIC back)
//	config.go, config_vars.go  the configuration, one row per variable
package handler
