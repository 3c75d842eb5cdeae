package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var stopCmd = &command{
	name:    "stop",
	summary: "the kill switch: no update call anywhere until resume",
	about: `Stop turns the fleet-wide kill switch on: every run, including runs under
way, reads it before each update call, and makes none until resume. Use
pause to hold back one rollout instead.`,
	examples: []string{
		"sagctl stop --correlation-id INC-8812",
	},
	flags: func(*flag.FlagSet) func([]string) (events.Request, error) {
		return noArgs("stop", func() events.Request { return events.Request{Kind: upgrade.KindStop} })
	},
	show: showControl,
}
