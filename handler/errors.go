package handler

import "strings"

// The errors an invocation fails with, after publishing its events; main
// gives each its FC errorType.

// RejectedError is returned when every message of an invocation was rejected:
// the caller (s invoke, an async destination) sees why. The rejected events
// were published already.
type RejectedError struct{ Problems []string }

func (e *RejectedError) Error() string {
	return "request rejected: " + strings.Join(e.Problems, "; ")
}

// InternalError is returned when a bug aborted a request: its report says
// which gateways it left failed (internal_error), and the log has the stack.
type InternalError struct{ Problems []string }

func (e *InternalError) Error() string { return strings.Join(e.Problems, "; ") }

// InfrastructureError is returned, after the run's events are out, when a
// request could do nothing because a service it needs could not be reached
// (every listing failed, or SAG or the ledger for every gateway): FC retries
// the invocation and its onFailure destination records it.
type InfrastructureError struct{ Problems []string }

func (e *InfrastructureError) Error() string {
	return "services unreachable: " + strings.Join(e.Problems, "; ")
}

// ControlError is returned when a control request could not be carried out:
// the caller must not believe it was.
type ControlError struct{ Problems []string }

func (e *ControlError) Error() string {
	return "control request failed: " + strings.Join(e.Problems, "; ")
}
