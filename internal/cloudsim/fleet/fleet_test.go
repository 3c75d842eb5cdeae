package fleet

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestFleetFilesAreGenerated(t *testing.T) {
	for file, f := range map[string]*Fleet{"demo.json": Demo(), "bad-release.json": BadReleaseDemo()} {
		want, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../../../testdata/fleets/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/fleets/%s differs from its generator; regenerate it (see its comment)", file)
		}
	}
	bad := BadReleaseDemo()
	fails := 0
	for _, g := range bad.Gateways {
		if g.Behavior.Outcome(NewestDevice) == UpgradeRevert && g.Case == CaseOutdated {
			fails++
		}
	}
	if fails < 40 {
		t.Errorf("only %d gateways fail the bad release", fails)
	}
}

func TestDemoCoversEveryCase(t *testing.T) {
	f, err := Load("../../../testdata/fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Gateways); n != 200 {
		t.Errorf("demo has %d gateways, want 200", n)
	}
	byCase := map[Case]int{}
	byRegion := map[string]int{}
	for _, g := range f.Gateways {
		byCase[g.Case]++
		byRegion[g.RegionID]++
	}
	for _, c := range AllCases {
		if byCase[c] == 0 {
			t.Errorf("demo has no %q gateway", c)
		}
	}
	if len(byRegion) != 2 {
		t.Errorf("demo spans regions %v, want two", byRegion)
	}
}

// Each case must be expressed in state, not just in its label.
func TestCasesAreState(t *testing.T) {
	f := Demo()
	for _, g := range f.Gateways {
		bad := ""
		switch g.Case {
		case CaseOffline:
			if g.Status != "Offline" {
				bad = "status"
			}
		case CaseArrears:
			if g.Status != "Arrearage" {
				bad = "status"
			}
		case CaseExpired:
			if !g.EndTime.Before(f.Start) {
				bad = "endTime"
			}
		case CaseNotBoundCCN:
			if g.AssociatedCcnID != "" {
				bad = "associatedCcnId"
			}
		case CaseHAPair:
			if len(g.Devices) != 2 || !strings.Contains(g.SerialNumber(), ",") {
				bad = "devices"
			}
		case CaseUpToDate:
			if CompareVersions(g.Devices[0].SoftwareVersion, NewestDevice) != 0 {
				bad = "softwareVersion"
			}
		case CaseOutdated:
			newest := NewestDevice
			if g.HardwareVersion == "sag-vcpe" {
				newest = NewestVCPE
			}
			if CompareVersions(g.Devices[0].SoftwareVersion, newest) >= 0 {
				bad = "softwareVersion"
			}
		case CaseReverts, CaseLost:
			if g.Behavior.Outcome(NewestDevice) == UpgradeOK {
				bad = "behavior"
			}
		case CaseOtherAccount:
			if g.OwnerAccountID == "" || g.OwnerAccountID == f.AccountID {
				bad = "ownerAccountId"
			}
		}
		if bad != "" {
			t.Errorf("%s (%s): %s does not express the case", g.SmartAGID, g.Case, bad)
		}
	}
}

func TestGenerateIsDeterministicAndMixed(t *testing.T) {
	a, _ := Generate(Options{Gateways: 5000, Seed: 3}).Marshal()
	b, _ := Generate(Options{Gateways: 5000, Seed: 3}).Marshal()
	c, _ := Generate(Options{Gateways: 5000, Seed: 4}).Marshal()
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different fleets")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same fleet")
	}
	f := Generate(Options{Gateways: 5000, Seed: 3})
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range f.Gateways {
		if g.Case == CaseOutdated {
			n++
		}
	}
	// DefaultMix gives outdated 60 of 100.5 weight: about 2985 of 5000.
	if n < 2700 || n > 3300 {
		t.Errorf("%d outdated gateways of 5000, want about 3000", n)
	}
}

func TestGenerateALargeFleetWithAMix(t *testing.T) {
	mix, err := ParseMix("outdated=80, lost=10,reverts=5,other-account=5")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	f := Generate(Options{Gateways: n, Seed: 5, Mix: mix})
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	got := map[Case]int{}
	perRegion := map[string]int{}
	for _, g := range f.Gateways {
		got[g.Case]++
		perRegion[g.RegionID]++
	}
	for c, w := range mix {
		want := n * w / 100
		if d := float64(got[c]) - want; d < -want/10 || d > want/10 {
			t.Errorf("%s: %d gateways, want about %.0f", c, got[c], want)
		}
	}
	if len(got) != len(mix) {
		t.Errorf("cases %v, want only those of the mix", got)
	}
	if perRegion["cn-shanghai"] != n/2 || perRegion["ap-southeast-1"] != n/2 {
		t.Errorf("regions %v, want the gateways split evenly", perRegion)
	}

	for _, bad := range []string{"outdated", "outdated=x", "nosuch=1", "outdated=-1", "outdated=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestBadRelease(t *testing.T) {
	f := Generate(Options{Gateways: 4000, Seed: 9, BadRelease: 0.5})
	would, bad := 0, 0
	for _, g := range f.Gateways {
		if g.Case != CaseOutdated && g.Case != CaseHAPair {
			continue
		}
		if g.HardwareVersion != "sag-1000" {
			continue
		}
		would++
		if g.Behavior.Outcome(NewestDevice) == UpgradeRevert {
			bad++
			if g.Behavior.Outcome("2.2.0") != UpgradeOK {
				t.Fatalf("%s: the bad release must only affect %s", g.SmartAGID, NewestDevice)
			}
		}
	}
	if would == 0 || bad < would*4/10 || bad > would*6/10 {
		t.Errorf("%d of %d gateways fail the bad release, want about half", bad, would)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := Generate(Options{Gateways: 3, Seed: 1}).Marshal()
	if _, err := Parse(good); err != nil {
		t.Fatalf("a generated fleet does not parse: %v", err)
	}
	cases := map[string]struct{ from, to, want string }{
		"unknown field":  {`"accountId"`, `"acountId": "x", "accountId"`, "unknown field"},
		"bad status":     {`"status": "Active"`, `"status": "ACTIVE"`, "status \"ACTIVE\""},
		"bad id":         {`"smartAGId": "sag-`, `"smartAGId": "SAG-`, "smartAGId is not"},
		"bad version":    {`"softwareVersion": "`, `"softwareVersion": "v`, "not a dotted version"},
		"bad region":     {`"regionId": "cn-shanghai"`, `"regionId": "cn-beijing"`, "not one of the fleet's regions"},
		"bad behaviour":  {`"hardwareVersion": "sag-1000",`, `"hardwareVersion": "sag-1000", "behavior": {"upgrade": "explode"},`, "behavior.upgrade"},
		"bad catalog":    {`"type": "release"`, `"type": "stable"`, "not release or beta"},
		"empty accounts": {`"accountId": "1234567890123456"`, `"accountId": ""`, "accountId is empty"},
	}
	for name, c := range cases {
		b := strings.Replace(string(good), c.from, c.to, 1)
		if b == string(good) {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		_, err := Parse([]byte(b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"2.0", "2.0.0", 0}, {"2.3.1.1", "2.3.1", 1}, {"2.10", "2.9", 1}, {"1.9.0", "2.0.8", -1},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
