// Command genfleet writes a simulated fleet file to stdout.
//
//	go run ./internal/cloudsim/fleet/genfleet -demo > testdata/fleets/demo.json
//	go run ./internal/cloudsim/fleet/genfleet -bad-release-demo > testdata/fleets/bad-release.json
//	go run ./internal/cloudsim/fleet/genfleet -gateways 100000 -seed 7 > /tmp/fleet-100k.json
//	go run ./internal/cloudsim/fleet/genfleet -gateways 2000 -bad-release 0.5 > /tmp/bad.json
//	go run ./internal/cloudsim/fleet/genfleet -gateways 10000 -mix outdated=90,lost=5,reverts=5 > /tmp/rough.json
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

func main() {
	demo := flag.Bool("demo", false, "write the demo fleet (testdata/fleets/demo.json)")
	badDemo := flag.Bool("bad-release-demo", false, "write the bad-release demo fleet (testdata/fleets/bad-release.json)")
	n := flag.Int("gateways", 1000, "number of gateways")
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same fleet")
	regions := flag.String("regions", "cn-shanghai,ap-southeast-1", "comma-separated regions")
	bad := flag.Float64("bad-release", 0, "share (0..1) of gateways on which the newest release fails (comes back on the old version)")
	mixFlag := flag.String("mix", "", "weights of the cases, case=weight,... (default: fleet.DefaultMix)")
	flag.Parse()
	var mix map[fleet.Case]float64
	if *mixFlag != "" {
		var err error
		if mix, err = fleet.ParseMix(*mixFlag); err != nil {
			fmt.Fprintln(os.Stderr, "genfleet:", err)
			os.Exit(2)
		}
	}

	f := fleet.Demo()
	switch {
	case *demo:
	case *badDemo:
		f = fleet.BadReleaseDemo()
	default:
		f = fleet.Generate(fleet.Options{Gateways: *n, Seed: *seed, Regions: strings.Split(*regions, ","), BadRelease: *bad, Mix: mix})
		f.Comment = fmt.Sprintf("Generated: genfleet -gateways %d -seed %d -regions %s -bad-release %g", *n, *seed, *regions, *bad)
		if *mixFlag != "" {
			f.Comment += " -mix " + *mixFlag
		}
	}
	if err := f.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "genfleet:", err)
		os.Exit(1)
	}
	b, err := f.Marshal()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genfleet:", err)
		os.Exit(1)
	}
	os.Stdout.Write(b)
}
