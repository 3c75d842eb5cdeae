package handler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// The report's results are sorted without allocating per comparison: a
// planner of 100,000 gateways sorts about ten thousand of them as its run
// ends, at its memory's peak.
func TestTallySortsWithoutAllocating(t *testing.T) {
	rp := &reporter{}
	for i := range 2000 {
		rp.results = append(rp.results, upgrade.Result{RegionID: []string{"cn-shanghai", "ap-southeast-1"}[i%2],
			SmartAGID: fmt.Sprintf("sag-%05d", (i*7919)%2000), VersionType: upgrade.VersionDevice})
	}
	_, results := rp.tally()
	if !slices.IsSortedFunc(results, func(a, b upgrade.Result) int {
		return cmp.Or(strings.Compare(a.RegionID, b.RegionID), strings.Compare(a.SmartAGID, b.SmartAGID))
	}) {
		t.Fatal("the results are not in region and gateway order")
	}
	if n := testing.AllocsPerRun(5, func() { rp.tally() }); n > 5 {
		t.Fatalf("tally allocated %.0f times for 2,000 results", n)
	}
}
