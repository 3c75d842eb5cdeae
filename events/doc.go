// Package events holds every wire format the function speaks: the request
// that each trigger carries, the trigger envelopes around it (timer, MNS
// topic in JSON and STREAM format, MNS queue through EventBridge), the run
// report returned to the caller, and the CloudEvents published per outcome.
//
// Each envelope type lives in its own file and is round-trip tested against
// a real-shaped fixture in testdata/events/ at the repository root. Decode
// turns any payload FC hands the function into an Invocation without ever
// failing: what cannot be understood becomes a Message with Err set and its
// raw text kept, so it can be reported as rejected instead of being lost.
//
// It holds only what crosses the wire. The values inside (kinds, version
// types, results, their outcomes and reasons) and the rules of a request
// (the fields each kind takes and requires, what a gateway id or a version
// looks like, the SAG regions) are the domain's, in handler/upgrade; the
// function (package handler) translates a request once into its own job.
package events
