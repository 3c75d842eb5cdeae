#!/usr/bin/env bash
# distributed.sh: one fan-out night of 10,000 simulated gateways (or SIZE) on
# N = 1, 2, 4, 8 emulated instances, each with API_QPS 25, against the
# emulator's limit of 100 calls a second per action. Needs only Go.
#
#   scripts/distributed.sh [flags] [SIZE]     e.g. -instances 1,2,3,4,6,8 -instance-qps 20 10000
set -euo pipefail
exec "$(dirname "$0")/bench.sh" -distributed "$@"
