package sagsim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
)

func regionsCall(cli *smartag.Client) error {
	_, err := cli.DescribeRegions(smartag.CreateDescribeRegionsRequest())
	return err
}

func TestUnknownActionAndVersion(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	common := func(action, version string) error {
		req := requests.NewCommonRequest()
		req.Scheme, req.Product, req.ApiName, req.Version = "http", "Smartag", action, version
		_, err := e.client("cn-shanghai").ProcessCommonRequest(req)
		return err
	}
	se := wantError(t, common("UpgradeEverything", "2018-03-13"), 404, "InvalidAction.NotFound")
	if se.Message() != "Specified api is not found, please check your url and method." {
		t.Errorf("message %q", se.Message())
	}
	wantError(t, common("DescribeRegions", "2017-01-01"), 400, "InvalidVersion")
	if err := common("DescribeRegions", "2018-03-13"); err != nil {
		t.Errorf("a common GET request for a known action: %v", err)
	}
}

func TestUnknownRegion(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	se := wantError(t, regionsCall(e.client("cn-beijing")), 404, "InvalidRegionId.NotFound")
	if se.Message() != "The specified RegionId does not exist in our records." {
		t.Errorf("message %q", se.Message())
	}
	// Every SAG region is served, even one without gateways in the fleet.
	if err := regionsCall(e.client("eu-central-1")); err != nil {
		t.Errorf("eu-central-1: %v", err)
	}
}

func TestErrorBodyShape(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	_, err := e.update(e.byCase("offline"), "", "2.3.1", "")
	se := wantError(t, err, 403, "SmartAccessGatewayNotOnline")
	if se.HostId() == "" || !strings.HasPrefix(se.HostId(), "smartag.") || se.Recommend() == "" {
		t.Errorf("HostId %q Recommend %q", se.HostId(), se.Recommend())
	}
	if ct := se.RespHeaders["Content-Type"]; len(ct) != 1 || ct[0] != "application/json;charset=utf-8" {
		t.Errorf("Content-Type %v", ct)
	}
}

func TestCredentialChecks(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	const region = "cn-shanghai"
	ak := e.keys.AddAccessKey(e.fleet.AccountID)
	if err := regionsCall(e.newClient(region, ak, nil)); err != nil {
		t.Fatalf("a permanent access key: %v", err)
	}
	if err := regionsCall(e.newClient(region, e.cred, nil)); err != nil {
		t.Fatalf("an STS credential: %v", err)
	}

	wrongSecret := e.cred
	wrongSecret.AccessKeySecret = "not-the-secret"
	se := wantError(t, regionsCall(e.newClient(region, wrongSecret, nil)), 400, "SignatureDoesNotMatch")
	// The SDK compares our string to sign with its own and says the secret
	// is wrong only when they are equal: proof the server signs as the SDK does.
	if se.Recommend() != "InvalidAccessKeySecret: Please check you AccessKeySecret" {
		t.Errorf("the server's string to sign differs from the SDK's: Recommend %q, message %q", se.Recommend(), se.Message())
	}

	unknown := auth.Credential{AccessKeyID: "LTAI5tunknownkey", AccessKeySecret: "x"}
	wantError(t, regionsCall(e.newClient(region, unknown, nil)), 404, "InvalidAccessKeyId.NotFound")

	other := e.keys.IssueSTS(e.fleet.AccountID, time.Hour)
	mismatched := e.cred
	mismatched.SecurityToken = other.SecurityToken
	wantError(t, regionsCall(e.newClient(region, mismatched, nil)), 400, "InvalidSecurityToken.MismatchWithAccessKey")

	malformed := e.cred
	malformed.SecurityToken = "not-a-token"
	wantError(t, regionsCall(e.newClient(region, malformed, nil)), 400, "InvalidSecurityToken.Malformed")

	noToken := e.cred
	noToken.SecurityToken = ""
	wantError(t, regionsCall(e.newClient(region, noToken, nil)), 400, "MissingSecurityToken")

	e.advanceKeyring(time.Hour + time.Second)
	wantError(t, regionsCall(e.newClient(region, e.cred, nil)), 403, "InvalidSecurityToken.Expired")
	if err := regionsCall(e.newClient(region, ak, nil)); err != nil {
		t.Errorf("a permanent key after an hour: %v", err)
	}
}

func TestTimestampSkewFollowsTheWallClock(t *testing.T) {
	for _, skew := range []time.Duration{16 * time.Minute, -16 * time.Minute} {
		e := newEnv(t, sagsim.Options{Wall: func() time.Time { return time.Now().Add(skew) }})
		wantError(t, regionsCall(e.client("cn-shanghai")), 400, "InvalidTimeStamp.Expired")
	}
	e := newEnv(t, sagsim.Options{Wall: func() time.Time { return time.Now().Add(10 * time.Minute) }})
	if err := regionsCall(e.client("cn-shanghai")); err != nil {
		t.Errorf("10 minutes of skew: %v", err)
	}
}

// replayEnv captures one real SDK request without sending it.
func captureRequest(t *testing.T, e *env) captured {
	t.Helper()
	rec := &recorder{hold: true, next: http.DefaultTransport}
	cli := e.newClient("cn-shanghai", e.cred, rec)
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.SmartAGId = e.byCase("outdated").SmartAGID
	if _, err := cli.DescribeSmartAccessGatewayAttribute(req); err == nil || !strings.Contains(err.Error(), errHeld.Error()) {
		t.Fatalf("the recorder did not hold the request: %v", err)
	}
	return rec.last(t)
}

func TestReplayedAndAlteredRequests(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	c := captureRequest(t, e)
	if c.method != http.MethodPost {
		t.Fatalf("the SDK sent %s", c.method)
	}

	status, hdr, body := send(t, c.method, c.url, c.header.Get("Content-Type"), c.body)
	if status != 200 || body["SmartAGId"] == nil {
		t.Fatalf("the captured request, sent once: %d %v", status, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	status, _, body = send(t, c.method, c.url, "", c.body)
	if status != 400 || body["Code"] != "SignatureNonceUsed" {
		t.Errorf("replayed: %d %v, want 400 SignatureNonceUsed", status, body)
	}
	if id, ok := body["RequestId"].(string); !ok || id == "" {
		t.Errorf("RequestId is not a non-empty string: %#v", body["RequestId"])
	}
	if body["HostId"] != "smartag.cn-shanghai.aliyuncs.com" || body["Message"] == "" || body["Recommend"] == "" {
		t.Errorf("error body %v", body)
	}

	alter := func(key, value string) string {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, a := range []struct {
		key, value string
		status     int
		code       string
	}{
		{"SmartAGId", "sag-someoneelse", 400, "SignatureDoesNotMatch"},
		{"Timestamp", time.Now().UTC().Add(-20 * time.Minute).Format("2006-01-02T15:04:05Z"), 400, "InvalidTimeStamp.Expired"},
		{"Timestamp", "yesterday", 400, "InvalidTimeStamp.Format"},
		{"Signature", "", 400, "MissingParameter"},
		{"SignatureMethod", "HMAC-SHA256", 400, "InvalidParameter"},
		{"AccessKeyId", "LTAI5tnosuchkey", 404, "InvalidAccessKeyId.NotFound"},
		{"Version", "2019-01-01", 400, "InvalidVersion"},
		{"Action", "DescribeEverything", 404, "InvalidAction.NotFound"},
	} {
		status, _, body := send(t, c.method, alter(a.key, a.value), "", nil)
		if status != a.status || body["Code"] != a.code {
			t.Errorf("%s=%q: %d %v, want %d %s", a.key, a.value, status, body["Code"], a.status, a.code)
		}
		if a.code == "SignatureDoesNotMatch" && !strings.Contains(body["Message"].(string), "server string to sign is:POST&%2F&") {
			t.Errorf("SignatureDoesNotMatch message %q", body["Message"])
		}
	}
	if n := e.sim.Count("DescribeSmartAccessGatewayAttribute", e.byCase("outdated").SmartAGID); n != 8 {
		t.Errorf("Count = %d, want 8 (the refused calls that named the gateway are logged too)", n)
	}
}

// The parameters may also come as a form body, as other Alibaba SDKs send them.
func TestParametersInAFormBody(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	c := captureRequest(t, e)
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	form := u.Query()
	u.RawQuery = ""
	status, _, body := send(t, http.MethodPost, u.String(), "application/x-www-form-urlencoded", []byte(form.Encode()))
	if status != 200 || body["SmartAGId"] != form.Get("SmartAGId") {
		t.Errorf("form body: %d %v", status, body)
	}
	// Signed as POST, sent as GET: the method is part of the string to sign.
	c = captureRequest(t, e)
	status, _, body = send(t, http.MethodGet, c.url, "", nil)
	if status != 400 || body["Code"] != "SignatureDoesNotMatch" {
		t.Errorf("method changed: %d %v", status, body)
	}
}

func TestGETRequestsAreSignedWithTheirMethod(t *testing.T) {
	e := newEnv(t, sagsim.Options{})
	g := e.byCase("outdated")
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.Method = requests.GET
	req.SmartAGId = g.SmartAGID
	if _, err := e.client(g.RegionID).DescribeSmartAccessGatewayAttribute(req); err != nil {
		t.Errorf("GET: %v", err)
	}
}
