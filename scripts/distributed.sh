#!/usr/bin/env bash
# distributed.sh: one fan-out night of 10,000 simulated gateways (or SIZE) on
# N = 1, 2, 4, 8 emulated instances sharing the emulator's limit of 100 calls
# a second per action, counted in sliding one-second windows; each instance
# has the whole limit as its API_QPS ceiling and finds its share by its
# pacing. Needs only Go.
#
#   scripts/distributed.sh [flags] [SIZE]     e.g. -instances 1,2,3,4,6,8 -instance-qps 25 -flow bucket 10000
set -euo pipefail
exec "$(dirname "$0")/bench.sh" -distributed -flow sliding "$@"
