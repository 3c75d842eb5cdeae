package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var unpauseCmd = &command{
	name:    "unpause",
	summary: "let a paused rollout go on",
	about: `Unpause lets a paused rollout go on: the next runs upgrade its gateways as
its waves allow. A rollout that does not exist is rejected.`,
	examples: []string{
		"sagctl unpause --target 2.3.1",
		"sagctl unpause --target 2.3.1 --model sag-1000",
	},
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		return rolloutFlags(fs, upgrade.KindUnpause)
	},
	show: showControl,
}
