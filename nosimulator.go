//go:build fc

package main

import (
	"fmt"
	"io"
)

// simulator stands in for simulate.go in the FC build (-tags fc), which
// links no emulator.
func simulator(_ cliOptions, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "sag-upgrade: this build has no simulator (the FC build, -tags fc); run the source's: go run . -simulate")
	return 2
}
