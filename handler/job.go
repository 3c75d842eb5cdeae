package handler

import (
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// job is one request of the run as the function reads it: the wire request
// translated once (jobFor), the configuration's defaults filled in. Nothing
// reads the wire request after.
type job struct {
	id         int // its index among the run's jobs
	kind       upgrade.Kind
	info       events.RunInfo // the run, and the request's correlation id
	regions    []string
	gatewayIDs []string // the gateways named; none: every gateway of the regions
	types      []upgrade.VersionType
	target     string // the pinned version (targetVersion); "": the newest release
	dryRun     bool   // the request's or the configuration's
	force      bool
	operator   string // who asks, as the caller declares it
	model      string // a control request's hardware model ("": every model)
	wave       int    // the wave an approval lets start
	// at is when a plan is evaluated: a region's next window opening (zero:
	// now). Eligibility, release ages, penalties and the window are judged
	// as at then; what earlier runs started is settled as of now.
	at time.Time
	// retryFailedOnly narrows a sweep to the gateways whose last upgrade
	// failed or stayed unverified.
	retryFailedOnly bool
	// listed: the named gateways as the planner listed them moments ago,
	// for its own sweep of its first batch, which lists them no more.
	listed []Gateway
}

// jobFor translates a wire request into a job: the configuration's
// defaults for what it leaves out. The run gives it its id.
func jobFor(req events.Request, cfg Config, info events.RunInfo) job {
	j := job{kind: req.Kind, info: info, regions: req.Regions, gatewayIDs: req.GatewayIDs, types: req.VersionTypes,
		target: req.TargetVersion, dryRun: cfg.DryRun || req.DryRun || req.Kind == upgrade.KindPlan, force: req.Force, retryFailedOnly: req.RetryFailedOnly,
		operator: req.Operator, model: req.Model, wave: req.Wave}
	j.info.CorrelationID = req.CorrelationID
	if len(j.regions) == 0 {
		j.regions = cfg.Regions
	}
	if len(j.types) == 0 {
		j.types = cfg.VersionTypes
	}
	return j
}

// when is the time the job judges by: at, or now.
func (j job) when(now func() time.Time) time.Time {
	if !j.at.IsZero() {
		return j.at
	}
	return now()
}
