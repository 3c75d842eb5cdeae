#!/usr/bin/env bash
# soak.sh: a fan-out night of 100,000 simulated gateways (or SIZE) with 10%
# injected SAG faults of every kind, processes killed in the middle of their
# batches and the batches redelivered, then the verifications. Fails unless
# every gateway ends with exactly one final outcome and none gets two update
# calls. Without API latency it takes minutes. Needs only Go.
#
#   scripts/soak.sh [flags] [SIZE]     e.g. -soak-runtimes 6 -kills 3 -seed 2 20000
set -euo pipefail
exec "$(dirname "$0")/bench.sh" -soak "$@"
