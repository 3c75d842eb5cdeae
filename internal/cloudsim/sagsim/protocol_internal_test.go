package sagsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
)

func TestUnsortedKeepsEveryRelease(t *testing.T) {
	for model, c := range fleet.Catalogs(fleet.DefaultStart) {
		for _, vt := range []string{"Device", "Dpi"} {
			in := c.Releases(vt)
			out := unsorted(in)
			codes := func(rs []fleet.Release) []string {
				var s []string
				for _, r := range rs {
					s = append(s, r.VersionCode)
				}
				return s
			}
			got, want := codes(out), codes(in)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: unsorted lost or added releases: %v vs %v", model, vt, got, want)
			}
			if len(out) >= 3 {
				cmp := func(a, b fleet.Release) int { return fleet.CompareVersions(a.VersionCode, b.VersionCode) }
				asc := slices.IsSortedFunc(out, cmp)
				desc := slices.IsSortedFunc(out, func(a, b fleet.Release) int { return cmp(b, a) })
				if asc || desc {
					t.Errorf("%s %s: %v is sorted", model, vt, codes(out))
				}
			}
		}
	}
}

func TestFaultPickRateAndDeterminism(t *testing.T) {
	f := Faults{Seed: 42, Rate: 0.3, Kinds: []FaultKind{InternalError, Drop, Slow}}
	counts := map[FaultKind]int{}
	for n := 1; n <= 10000; n++ {
		k := f.pick("UpdateSmartAccessGatewayVersion", "sag-a", n)
		if k != f.pick("UpdateSmartAccessGatewayVersion", "sag-a", n) {
			t.Fatal("pick is not deterministic")
		}
		counts[k]++
	}
	if faulted := 10000 - counts[""]; faulted < 2700 || faulted > 3300 {
		t.Errorf("%d of 10000 calls faulted at rate 0.3", faulted)
	}
	for _, k := range f.Kinds {
		if counts[k] < 800 {
			t.Errorf("kind %s drawn %d times of ~1000", k, counts[k])
		}
	}
	other := Faults{Seed: 43, Rate: 0.3}
	same := 0
	for n := 1; n <= 1000; n++ {
		if (f.pick("A", "x", n) == "") == (other.pick("A", "x", n) == "") {
			same++
		}
	}
	if same == 1000 {
		t.Errorf("seeds 42 and 43 fault the same calls")
	}
	if (Faults{Seed: 1, Rate: 1, Actions: []string{"DescribeRegions"}}).pick("UpdateSmartAccessGatewayVersion", "x", 1) != "" {
		t.Errorf("a fault hit an action outside Faults.Actions")
	}
}

// FuzzServeHTTP sends arbitrary parameters, signed or not, and checks that
// every answer is a well-formed JSON answer (no panic, string Code and
// RequestId on errors, as the SDK requires).
func FuzzServeHTTP(f *testing.F) {
	demo := fleet.Demo()
	id := demo.Gateways[0].SmartAGID
	for _, seed := range []string{
		"Action=DescribeSmartAccessGateways&PageSize=50&PageNumber=99999999999999999999",
		"Action=DescribeSmartAccessGateways&PageSize=7&PageNumber=3&SoftwareVersion=x.y&VersionComparator=LESS&SmartAGIds.1=" + id,
		"Action=UpdateSmartAccessGatewayVersion&SmartAGId=" + id + "&VersionCode=2.3.1&SerialNumber=nope",
		"Action=UpdateSmartAccessGatewayVersion&SmartAGId=" + id + "&VersionCode=2.3.1&VersionType=Dpi",
		"Action=DescribeSmartAccessGatewayVersions&SmartAGId=&VersionType=Dpi",
		"Action=DescribeSmartAccessGatewayAttribute&SmartAGId=" + id + "&RegionId=",
		"Action=DescribeRegions&RegionId=ap-southeast-1&Format=XML",
		"Action=DescribeRegions&Timestamp=2026-13-45T99:00:00Z",
		"%zz",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	keys := auth.NewKeyring(nil)
	cred := keys.AddAccessKey(demo.AccountID)
	sim := New(demo, Options{Keyring: keys, Clock: clock.NewSim(demo.Start)})
	nonce := 0
	f.Fuzz(func(t *testing.T, query string, signed bool) {
		if p, err := url.ParseQuery(query); err == nil && signed {
			nonce++
			defaults := map[string]string{
				"Version": apiVersion, "AccessKeyId": cred.AccessKeyID, "SignatureMethod": "HMAC-SHA1",
				"SignatureVersion": "1.0", "SignatureNonce": fmt.Sprint("fuzz-", nonce, "-", time.Now().UnixNano()),
				"Timestamp": time.Now().UTC().Format(timestampLayout), "RegionId": demo.Gateways[0].RegionID, "Format": "JSON",
			}
			for k, v := range defaults {
				if !p.Has(k) {
					p.Set(k, v)
				}
			}
			p.Del("Signature")
			p.Set("Signature", auth.RPCSignature(cred.AccessKeySecret, auth.RPCStringToSign("POST", p)))
			query = p.Encode()
		}
		r, err := http.NewRequest("POST", "/?"+query, nil)
		if err != nil {
			t.Skip()
		}
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, r)
		if ct := w.Header().Get("Content-Type"); ct != "application/json;charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, w.Body.String())
		}
		if id, ok := body["RequestId"].(string); !ok || id == "" {
			t.Fatalf("RequestId %#v", body["RequestId"])
		}
		if w.Code != http.StatusOK {
			if c, ok := body["Code"].(string); !ok || c == "" {
				t.Fatalf("error %d without a string Code: %s", w.Code, w.Body.String())
			}
		}
	})
}
