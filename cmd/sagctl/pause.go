package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var pauseCmd = &command{
	name:    "pause",
	summary: "hold back one rollout until unpause",
	about: `Pause holds back the rollout of a target version (of the version types
named, and of one model when --model is given): every run reads it before
each update call, and its gateways are deferred as paused, across runs,
until unpause. A rollout that does not exist is rejected.`,
	examples: []string{
		"sagctl pause --target 2.3.1",
		"sagctl pause --target 2.3.1 --model sag-1000 --type Device",
	},
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		return rolloutFlags(fs, upgrade.KindPause)
	},
	show: showControl,
}

// rolloutFlags are the flags that name a rollout (pause, unpause, reset).
func rolloutFlags(fs *flag.FlagSet, kind upgrade.Kind) func([]string) (events.Request, error) {
	target := fs.String("target", "", "the rollout's target `version` (required)")
	model := fs.String("model", "", "only the rollout of this hardware `model`, e.g. sag-1000")
	types := fs.String("type", "", "version `types`: Device, Dpi or Device,Dpi (default the function's VERSION_TYPES)")
	return noArgs(string(kind), func() events.Request {
		return events.Request{Kind: kind, TargetVersion: *target, Model: *model, VersionTypes: versionTypes(*types)}
	})
}
