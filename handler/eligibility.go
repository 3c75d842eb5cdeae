package handler

import (
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// ineligible returns why g cannot be upgraded at now, or "" when it can.
// Statuses compare case-insensitively: the API's own docs spell them both ways.
func ineligible(g Gateway, now time.Time) string {
	switch strings.ToLower(g.Status) {
	case "active":
	case "offline":
		return upgrade.ReasonOffline
	case "ordered", "delivered", "received", "init", "returning":
		return upgrade.ReasonNotActivated
	case "arrearage":
		return upgrade.ReasonExpired
	default:
		return upgrade.ReasonStateUnknown
	}
	switch {
	case !g.EndTime.IsZero() && !now.Before(g.EndTime):
		return upgrade.ReasonExpired
	case g.CcnID == "":
		return upgrade.ReasonNotBoundCCN
	case len(g.SerialNumbers) == 0:
		return upgrade.ReasonNoDevice
	}
	return ""
}
