package sagsim_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

// mine reports whether the fleet's own account sees g in region.
func mine(f *fleet.Fleet, region string) func(fleet.Gateway) bool {
	return func(g fleet.Gateway) bool {
		return g.RegionID == region && (g.OwnerAccountID == "" || g.OwnerAccountID == f.AccountID)
	}
}

func count(f *fleet.Fleet, ok func(fleet.Gateway) bool) int {
	n := 0
	for _, g := range f.Gateways {
		if ok(g) {
			n++
		}
	}
	return n
}

// listAll pages through DescribeSmartAccessGateways with PageSize 50 as a
// client should, checking every page's bookkeeping.
func listAll(t *testing.T, cli *smartag.Client, filter func(*smartag.DescribeSmartAccessGatewaysRequest)) []smartag.SmartAccessGateway {
	t.Helper()
	return listInPages(t, cli, 50, filter)
}

// listInPages pages through a listing size gateways at a time.
func listInPages(t *testing.T, cli *smartag.Client, size int, filter func(*smartag.DescribeSmartAccessGatewaysRequest)) []smartag.SmartAccessGateway {
	t.Helper()
	var all []smartag.SmartAccessGateway
	for page := 1; ; page++ {
		req := smartag.CreateDescribeSmartAccessGatewaysRequest()
		req.PageSize = requests.NewInteger(size)
		req.PageNumber = requests.NewInteger(page)
		if filter != nil {
			filter(req)
		}
		resp, err := cli.DescribeSmartAccessGateways(req)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		got := resp.SmartAccessGateways.SmartAccessGateway
		if resp.PageNumber != page || resp.PageSize != size || len(got) > size {
			t.Fatalf("page %d: PageNumber %d PageSize %d with %d entries", page, resp.PageNumber, resp.PageSize, len(got))
		}
		all = append(all, got...)
		if page*size >= resp.TotalCount || len(got) == 0 {
			if len(all) != resp.TotalCount {
				t.Fatalf("collected %d gateways, TotalCount %d", len(all), resp.TotalCount)
			}
			return all
		}
	}
}

func TestListPagesTheWholeFleet(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	total := 0
	for _, region := range e.fleet.Regions {
		all := listAll(t, e.client(region), nil)
		want := count(e.fleet, mine(e.fleet, region))
		if len(all) != want || want <= 50 {
			t.Fatalf("%s: listed %d gateways, the fleet has %d there (need more than a page)", region, len(all), want)
		}
		seen := map[string]bool{}
		for _, g := range all {
			if seen[g.SmartAGId] {
				t.Errorf("%s: %s listed twice", region, g.SmartAGId)
			}
			seen[g.SmartAGId] = true
			fg, ok := e.fleet.Gateway(g.SmartAGId)
			if !ok || !mine(e.fleet, region)(fg) {
				t.Errorf("%s: listed %s, which is not the account's gateway in this region", region, g.SmartAGId)
			}
		}
		total += len(all)
		// The smallest page gives the same gateways in the same order.
		if one := listInPages(t, e.client(region), 1, nil); len(one) != len(all) {
			t.Errorf("%s: pages of 1 listed %d gateways, pages of 50 %d", region, len(one), len(all))
		} else {
			for i := range one {
				if one[i].SmartAGId != all[i].SmartAGId {
					t.Errorf("%s: entry %d is %s in pages of 1, %s in pages of 50", region, i, one[i].SmartAGId, all[i].SmartAGId)
					break
				}
			}
		}
	}
	if total != len(e.fleet.Gateways)-count(e.fleet, func(g fleet.Gateway) bool { return g.Case == fleet.CaseOtherAccount }) {
		t.Errorf("listed %d gateways over all regions", total)
	}
}

func TestListEntryFields(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	ha := e.byCase(fleet.CaseHAPair)
	got := e.listed(ha)
	want := smartag.SmartAccessGateway{
		SmartAGId: ha.SmartAGID, Name: ha.Name, Status: "Active", HardwareVersion: "sag-1000",
		SoftwareVersion: ha.Devices[0].SoftwareVersion, BackupSoftwareVersion: ha.Devices[1].SoftwareVersion,
		SerialNumber:    ha.Devices[0].SerialNumber + "," + ha.Devices[1].SerialNumber,
		AssociatedCcnId: ha.AssociatedCcnID, City: ha.City, ResourceGroupId: ha.ResourceGroupID,
		CreateTime: ha.CreateTime.UnixMilli(), EndTime: ha.EndTime.UnixMilli(),
	}
	if got.SmartAGId != want.SmartAGId || got.Name != want.Name || got.Status != want.Status ||
		got.HardwareVersion != want.HardwareVersion || got.SoftwareVersion != want.SoftwareVersion ||
		got.BackupSoftwareVersion != want.BackupSoftwareVersion || got.SerialNumber != want.SerialNumber ||
		got.AssociatedCcnId != want.AssociatedCcnId || got.City != want.City ||
		got.CreateTime != want.CreateTime || got.EndTime != want.EndTime {
		t.Errorf("list entry\n got %+v\nwant %+v", got, want)
	}
	reseller := e.listed(e.byCase(fleet.CaseReseller))
	if reseller.ResellerUid == "" {
		t.Errorf("reseller gateway listed without ResellerUid")
	}
}

func TestListPageSizeLimits(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	cli := e.client("cn-shanghai")
	for _, c := range []struct {
		name        string
		size, page  int
		wantInvalid string
	}{
		{"PageSize 51", 51, 1, "PageSize"},
		{"PageSize 0", 0, 1, "PageSize"},
		{"PageNumber 0", 10, 0, "PageNumber"},
	} {
		req := smartag.CreateDescribeSmartAccessGatewaysRequest()
		req.PageSize = requests.NewInteger(c.size)
		req.PageNumber = requests.NewInteger(c.page)
		_, err := cli.DescribeSmartAccessGateways(req)
		se := wantError(t, err, 400, "InvalidParameter")
		if !strings.Contains(se.Message(), c.wantInvalid) {
			t.Errorf("%s: message %q does not name %s", c.name, se.Message(), c.wantInvalid)
		}
	}
	resp, err := cli.DescribeSmartAccessGateways(smartag.CreateDescribeSmartAccessGatewaysRequest())
	if err != nil {
		t.Fatal(err)
	}
	if resp.PageSize != 10 || resp.PageNumber != 1 || len(resp.SmartAccessGateways.SmartAccessGateway) != 10 {
		t.Errorf("defaults: PageSize %d PageNumber %d, %d entries; want 10, 1, 10",
			resp.PageSize, resp.PageNumber, len(resp.SmartAccessGateways.SmartAccessGateway))
	}
	req := smartag.CreateDescribeSmartAccessGatewaysRequest()
	req.PageNumber = requests.NewInteger(1000)
	resp, err = cli.DescribeSmartAccessGateways(req)
	if err != nil || len(resp.SmartAccessGateways.SmartAccessGateway) != 0 || resp.TotalCount == 0 {
		t.Errorf("a page past the end: err %v, %d entries, TotalCount %d; want none and the full count",
			err, len(resp.SmartAccessGateways.SmartAccessGateway), resp.TotalCount)
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	const region = "cn-shanghai"
	inRegion := mine(e.fleet, region)
	ha := e.find(func(g fleet.Gateway) bool { return g.Case == fleet.CaseHAPair && g.RegionID == region })
	outdated := e.find(func(g fleet.Gateway) bool { return g.Case == fleet.CaseOutdated && g.RegionID == region })
	elsewhere := e.find(func(g fleet.Gateway) bool { return g.RegionID != region })
	foreign := e.find(func(g fleet.Gateway) bool { return g.Case == fleet.CaseOtherAccount })

	cases := []struct {
		name   string
		filter func(*smartag.DescribeSmartAccessGatewaysRequest)
		want   func(fleet.Gateway) bool
	}{
		{"SmartAGIds.N, skipping other regions and accounts",
			func(r *smartag.DescribeSmartAccessGatewaysRequest) {
				r.SmartAGIds = &[]string{ha.SmartAGID, outdated.SmartAGID, elsewhere.SmartAGID, foreign.SmartAGID}
			},
			func(g fleet.Gateway) bool {
				return inRegion(g) && slices.Contains([]string{ha.SmartAGID, outdated.SmartAGID, foreign.SmartAGID}, g.SmartAGID)
			}},
		{"SmartAGId", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.SmartAGId = ha.SmartAGID },
			func(g fleet.Gateway) bool { return g.SmartAGID == ha.SmartAGID }},
		{"Status, case-insensitive", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.Status = "oFFLINE" },
			func(g fleet.Gateway) bool { return inRegion(g) && g.Status == "Offline" }},
		{"SoftwareVersion less", func(r *smartag.DescribeSmartAccessGatewaysRequest) {
			r.SoftwareVersion, r.VersionComparator = fleet.NewestDevice, "less"
		}, func(g fleet.Gateway) bool {
			return inRegion(g) && len(g.Devices) > 0 && g.Devices[0].SoftwareVersion != "" &&
				fleet.CompareVersions(g.Devices[0].SoftwareVersion, fleet.NewestDevice) < 0
		}},
		{"SoftwareVersion greater", func(r *smartag.DescribeSmartAccessGatewaysRequest) {
			r.SoftwareVersion, r.VersionComparator = "2.3", "greater"
		}, func(g fleet.Gateway) bool {
			return inRegion(g) && len(g.Devices) > 0 && g.Devices[0].SoftwareVersion != "" &&
				fleet.CompareVersions(g.Devices[0].SoftwareVersion, "2.3") > 0
		}},
		{"SoftwareVersion alone means equals", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.SoftwareVersion = "2.3.1.0" },
			func(g fleet.Gateway) bool {
				return inRegion(g) && len(g.Devices) > 0 && g.Devices[0].SoftwareVersion == "2.3.1"
			}},
		{"SerialNumber of the backup device", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.SerialNumber = ha.Devices[1].SerialNumber },
			func(g fleet.Gateway) bool { return g.SmartAGID == ha.SmartAGID }},
		{"AssociatedCcnId", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.AssociatedCcnId = outdated.AssociatedCcnID },
			func(g fleet.Gateway) bool { return inRegion(g) && g.AssociatedCcnID == outdated.AssociatedCcnID }},
		{"HardwareType", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.HardwareType = "sag-100wm" },
			func(g fleet.Gateway) bool { return inRegion(g) && g.HardwareVersion == "sag-100wm" }},
		{"Name", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.Name = outdated.Name },
			func(g fleet.Gateway) bool { return g.SmartAGID == outdated.SmartAGID }},
		{"InstanceType software", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.InstanceType = "software" },
			func(g fleet.Gateway) bool { return g.HardwareVersion == "sag-software" }},
		{"BusinessState Arrearage: locked or expired", func(r *smartag.DescribeSmartAccessGatewaysRequest) { r.BusinessState = "Arrearage" },
			func(g fleet.Gateway) bool { return g.Status == "Arrearage" || !g.EndTime.After(e.fleet.Start) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, g := range e.fleet.Gateways {
				if c.want(g) && inRegion(g) {
					want = append(want, g.SmartAGID)
				}
			}
			if len(want) == 0 {
				t.Fatal("the filter should match some gateway of the fleet")
			}
			var got []string
			for _, g := range listAll(t, e.client(region), c.filter) {
				got = append(got, g.SmartAGId)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %d gateways %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}

	req := smartag.CreateDescribeSmartAccessGatewaysRequest()
	req.SoftwareVersion, req.VersionComparator = "2.0", "sideways"
	_, err := e.client(region).DescribeSmartAccessGateways(req)
	wantError(t, err, 400, "InvalidParameter")
}

func TestAnotherAccountsGatewaysAreInvisibleAndForbidden(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	foreign := e.byCase(fleet.CaseOtherAccount)

	req := smartag.CreateDescribeSmartAccessGatewaysRequest()
	req.SmartAGId = foreign.SmartAGID
	resp, err := e.client(foreign.RegionID).DescribeSmartAccessGateways(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalCount != 0 || len(resp.SmartAccessGateways.SmartAccessGateway) != 0 {
		t.Errorf("another account's gateway is listed: %+v", resp.SmartAccessGateways)
	}
	ar := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	ar.SmartAGId = foreign.SmartAGID
	_, err = e.client(foreign.RegionID).DescribeSmartAccessGatewayAttribute(ar)
	wantError(t, err, 403, "Forbidden")

	// The other account sees its own gateways and nothing of the fleet's.
	theirs := e.keys.IssueSTS(otherAccount, time.Hour)
	var got []string
	for _, region := range e.fleet.Regions {
		for _, g := range listAll(t, e.newClient(region, theirs, nil), nil) {
			got = append(got, g.SmartAGId)
		}
	}
	want := []string{}
	for _, g := range e.fleet.Gateways {
		if g.OwnerAccountID == otherAccount {
			want = append(want, g.SmartAGID)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the other account lists %v, want %v", got, want)
	}
	mineReq := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	outdated := e.byCase(fleet.CaseOutdated)
	mineReq.SmartAGId = outdated.SmartAGID
	_, err = e.newClient(outdated.RegionID, theirs, nil).DescribeSmartAccessGatewayAttribute(mineReq)
	wantError(t, err, 403, "Forbidden")
}

func TestVersionsListsTheWholeCatalogUnsorted(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseOutdated)
	for _, vt := range []string{"", "Device", "Dpi"} {
		req := smartag.CreateDescribeSmartAccessGatewayVersionsRequest()
		req.SmartAGId, req.VersionType = g.SmartAGID, vt
		resp, err := e.client(g.RegionID).DescribeSmartAccessGatewayVersions(req)
		if err != nil {
			t.Fatalf("VersionType %q: %v", vt, err)
		}
		catalogType := vt
		if vt == "" {
			catalogType = "Device"
		}
		catalog := e.fleet.Catalogs[g.HardwareVersion].Releases(catalogType)
		got := resp.SmartAGVersions.SmartAGVersion
		if len(got) != len(catalog) {
			t.Fatalf("VersionType %q: %d versions, the catalog has %d", vt, len(got), len(catalog))
		}
		for _, r := range catalog {
			i := slices.IndexFunc(got, func(v smartag.SmartAGVersion) bool { return v.VersionCode == r.VersionCode })
			if i < 0 {
				t.Errorf("VersionType %q: %s missing", vt, r.VersionCode)
				continue
			}
			if v := got[i]; v.Type != r.Type || v.CreateTime != r.CreateTime.UnixMilli() || v.VersionName != r.VersionName {
				t.Errorf("VersionType %q: got %+v for %+v", vt, v, r)
			}
		}
		cmp := func(a, b smartag.SmartAGVersion) int { return fleet.CompareVersions(a.VersionCode, b.VersionCode) }
		if len(got) >= 3 && (slices.IsSortedFunc(got, cmp) || slices.IsSortedFunc(got, func(a, b smartag.SmartAGVersion) int { return cmp(b, a) })) {
			t.Errorf("VersionType %q: the list is sorted; it must not be, so that clients sort", vt)
		}
	}
	// The beta is listed too: a client must filter on Type.
	req := smartag.CreateDescribeSmartAccessGatewayVersionsRequest()
	req.SmartAGId = g.SmartAGID
	resp, err := e.client(g.RegionID).DescribeSmartAccessGatewayVersions(req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(resp.SmartAGVersions.SmartAGVersion, func(v smartag.SmartAGVersion) bool {
		return v.VersionCode == fleet.NewestBeta && v.Type == "beta"
	}) {
		t.Errorf("the beta %s is not listed", fleet.NewestBeta)
	}
}

func TestAttribute(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase(fleet.CaseOutdated)
	a := e.attribute(g)
	d := g.Devices[0]
	if a.SmartAGId != g.SmartAGID || a.Status != "Active" || a.InstanceType != "sag-1000" ||
		a.SerialNumber != d.SerialNumber || a.TrafficMasterSn != d.SerialNumber ||
		a.AssociatedCcnId != g.AssociatedCcnID || a.EndTime != g.EndTime.UnixMilli() ||
		a.CreateTime != g.CreateTime.UnixMilli() || a.Name != g.Name {
		t.Errorf("attribute %+v does not match the fleet's %+v", a, g)
	}
	if len(a.Devices.Device) != 1 || a.Devices.Device[0].SoftwareVersion != d.SoftwareVersion ||
		a.Devices.Device[0].DpiSignatureDbVersion != d.DpiSignatureDbVersion || a.Devices.Device[0].SerialNumber != d.SerialNumber {
		t.Errorf("devices %+v, want %+v", a.Devices.Device, d)
	}
	if a.AclIds.AclId == nil || a.QosIds.QosId == nil || a.FlowLogIds.FlowLogId == nil {
		t.Errorf("AclIds/QosIds/FlowLogIds are not objects with lists: %s", a.GetHttpContentString())
	}

	ha := e.byCase(fleet.CaseHAPair)
	a = e.attribute(ha)
	if len(a.Devices.Device) != 2 || a.TrafficMasterSn != ha.Devices[0].SerialNumber ||
		a.Devices.Device[0].HaState != "master" || a.Devices.Device[1].HaState != "backup" {
		t.Errorf("HA pair: TrafficMasterSn %s, devices %+v", a.TrafficMasterSn, a.Devices.Device)
	}
	if a.SerialNumber != ha.SerialNumber() {
		t.Errorf("HA pair SerialNumber %q, want %q", a.SerialNumber, ha.SerialNumber())
	}
	for _, typ := range []struct{ c fleet.Case }{{fleet.CaseRecentRelease}, {fleet.CaseSoftware}} {
		fg := e.byCase(typ.c)
		if got := e.attribute(fg).InstanceType; got != fg.HardwareVersion {
			t.Errorf("%s: InstanceType %q, want %q", typ.c, got, fg.HardwareVersion)
		}
	}
}

func TestDescribeRegions(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	resp, err := e.client("cn-shanghai").DescribeRegions(smartag.CreateDescribeRegionsRequest())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range resp.Regions.Region {
		got[r.RegionId] = r.RegionEndpoint
		if r.LocalName == "" {
			t.Errorf("%s has no LocalName", r.RegionId)
		}
	}
	for _, id := range []string{"cn-shanghai", "cn-hongkong", "ap-southeast-1", "eu-central-1", "ap-northeast-1"} {
		if got[id] != "smartag."+id+".aliyuncs.com" {
			t.Errorf("region %s: endpoint %q", id, got[id])
		}
	}
	if _, ok := got["cn-beijing"]; ok {
		t.Errorf("cn-beijing is not a SAG region")
	}
}
