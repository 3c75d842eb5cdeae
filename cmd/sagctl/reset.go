package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var resetCmd = &command{
	name:    "reset",
	summary: "close a rollout's breaker",
	about: `Reset closes the breaker of the rollout of a target version (of the version
types named, and of one model when --model is given) after its failures
were dealt with: the next runs go on with it. A rollout that does not
exist is rejected.`,
	examples: []string{
		"sagctl reset --target 2.3.1",
		"sagctl reset --target 2.3.1 --model sag-1000 --correlation-id CHG-4712",
	},
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		return rolloutFlags(fs, upgrade.KindReset)
	},
	show: showControl,
}
