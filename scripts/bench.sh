#!/usr/bin/env bash
# bench.sh: sweeps of simulated fleets on the simulated cloud, with the
# compiled function under the FC runtime emulator. Needs only Go.
#
#   scripts/bench.sh                      1,000, 10,000 and 100,000 gateways (the last takes ~40 min),
#                                         each on the three flow control shapes (bucket, fixed, sliding)
#   scripts/bench.sh 1000 10000           other sizes
#   scripts/bench.sh -flow sliding 2000   one shape
#   scripts/bench.sh -latency 50ms -qps 50 -json out.json 10000
#   scripts/bench.sh -distributed         N = 1, 2, 4, 8 instances on 10,000 gateways
#
# Flags go before the sizes; `scripts/bench.sh -h` lists them. The last line
# is `bench: flow=F gateways=N calls=N throttled=N wall_s=X bound_s=X ratio=X rss_mb=X`
# for the largest size on the strictest shape measured (sliding, fixed, then bucket).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The function as scripts/build.sh builds it (its flags: static, stripped,
# no simulator), for this machine; its size is reported for the
# linux/amd64 build FC runs.
eval "$(grep '^flags=' scripts/build.sh)"
CGO_ENABLED=0 go build "${flags[@]}" -o "$tmp/main" .
if [ "$(go env GOOS)/$(go env GOARCH)" = linux/amd64 ]; then
	cp "$tmp/main" "$tmp/main-linux-amd64"
else
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build "${flags[@]}" -o "$tmp/main-linux-amd64" .
fi
go build -o "$tmp/bench" ./scripts/bench
# Which code was measured (others may be committing while a long run goes).
echo "bench: function built from $(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")$(git diff --quiet HEAD -- . ':!scripts' 2>/dev/null || echo " with uncommitted changes") at $(date -u +%H:%M:%SZ)" >&2
"$tmp/bench" -binary "$tmp/main" -size-of "$tmp/main-linux-amd64" "$@"
