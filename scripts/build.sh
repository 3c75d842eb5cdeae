#!/usr/bin/env bash
# build.sh: the Function Compute code package, from any directory, with only Go.
#
#   dist/main             the function: linux/amd64 (FC's go1 runtime is x86_64
#                         only), static (CGO off), without paths or symbols
#   dist/sag-upgrade.zip  main at the root and executable: what s.yaml uploads
#
# s.yaml runs this before `s deploy`. deploy_test.go reads the two names below
# and checks s.yaml's handler and code against them.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=main
package=dist/sag-upgrade.zip

# The fc tag leaves the simulator out (simulate.go), and with it every
# emulator: internal/e2e's TestFCBuildLinksNoEmulator runs this script to
# read the flags and checks what they link. bench.sh builds with them too.
flags=(-trimpath -tags fc -ldflags="-s -w")

mkdir -p dist
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build "${flags[@]}" -o "dist/$binary" .
# The zip helper runs here, so it is built for this machine whatever GOOS or
# GOARCH the caller has exported (empty means the host's).
GOOS= GOARCH= go run ./scripts/fczip "$package" "dist/$binary"

size() { wc -c <"$1" | awk -v f="$1" '{ printf "%-22s %9d bytes (%.1f MiB)\n", f, $1, $1 / 1048576 }'; }
size "dist/$binary"
size "$package"
