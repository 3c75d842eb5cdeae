package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var resumeCmd = &command{
	name:    "resume",
	summary: "turn the kill switch off",
	about: `Resume turns the fleet-wide kill switch off: the next runs make update calls
again. (A KILL_SWITCH=true in the function's configuration stays on.)`,
	examples: []string{
		"sagctl resume --correlation-id INC-8812",
	},
	flags: func(*flag.FlagSet) func([]string) (events.Request, error) {
		return noArgs("resume", func() events.Request { return events.Request{Kind: upgrade.KindResume} })
	},
	show: showControl,
}
