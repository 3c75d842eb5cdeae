package handler

import (
	"strings"
	"time"
)

// Skip reasons for gateways that cannot be upgraded now, decided from the
// list before any per-gateway API call.
const (
	ReasonOffline      = "offline"       // Status Offline
	ReasonNotActivated = "not_activated" // Ordered, Delivered, Received, Init, Returning
	ReasonExpired      = "expired"       // in arrears or past its EndTime
	ReasonStateUnknown = "state_unknown" // Unconfirmed, or a status this version does not know
	ReasonNotBoundCCN  = "not_bound_ccn" // no cloud connect network
	ReasonNoDevice     = "no_device"     // no hardware bound (e.g. a SAG App instance)
	ReasonNotFound     = "not_found"     // named in gatewayIds but not in any swept region
)

// ineligible returns why g cannot be upgraded at now, or "" when it can.
// Statuses compare case-insensitively: the API's own docs spell them both ways.
func ineligible(g Gateway, now time.Time) string {
	switch strings.ToLower(g.Status) {
	case "active":
	case "offline":
		return ReasonOffline
	case "ordered", "delivered", "received", "init", "returning":
		return ReasonNotActivated
	case "arrearage":
		return ReasonExpired
	default:
		return ReasonStateUnknown
	}
	switch {
	case !g.EndTime.IsZero() && !now.Before(g.EndTime):
		return ReasonExpired
	case g.CcnID == "":
		return ReasonNotBoundCCN
	case len(g.SerialNumbers) == 0:
		return ReasonNoDevice
	}
	return ""
}
