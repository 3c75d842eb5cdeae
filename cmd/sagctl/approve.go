package main

import (
	"flag"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

var approveCmd = &command{
	name:    "approve",
	summary: "let the next wave of a rollout start",
	about: `Approve lets exactly one wave of one rollout start (ROLLOUT_APPROVAL=manual):
the wave that has soaked and is healthy, which "sagctl status" shows as
awaiting approval. Approving any other wave is rejected; force never passes
an approval gate.`,
	examples: []string{
		"sagctl status   # AWAITING APPROVAL: wave 2",
		"sagctl approve --target 2.3.1 --model sag-1000 --wave 2",
	},
	flags: func(fs *flag.FlagSet) func([]string) (events.Request, error) {
		target := fs.String("target", "", "the rollout's target `version` (required)")
		model := fs.String("model", "", "the rollout's hardware `model`, e.g. sag-1000 (required)")
		wave := fs.Int("wave", 0, "the `wave` to let start: the one awaiting approval (required)")
		types := fs.String("type", "", "version `types`: Device or Dpi (default the function's VERSION_TYPES)")
		return noArgs("approve", func() events.Request {
			return events.Request{Kind: upgrade.KindApprove, TargetVersion: *target, Model: *model, Wave: *wave, VersionTypes: versionTypes(*types)}
		})
	},
	show: showControl,
}
