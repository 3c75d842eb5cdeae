package handler

import (
	"strings"
	"time"
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
