package stssim_test

// GetCallerIdentity through the official alibaba-cloud-sdk-go (services/sts)
// over real HTTP.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkauth "github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/stssim"
)

const account = "1234567890123456"

type cloud struct {
	keys *auth.Keyring
	now  time.Time // the keyring's clock
	srv  *stssim.Server
	addr string
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	c := &cloud{now: time.Now()}
	c.keys = auth.NewKeyring(func() time.Time { return c.now })
	c.srv = stssim.New(stssim.Options{Keyring: c.keys, Role: "sag-upgrade-operator"})
	hs := httptest.NewServer(c.srv)
	t.Cleanup(hs.Close)
	c.addr = strings.TrimPrefix(hs.URL, "http://")
	return c
}

// callerIdentity calls GetCallerIdentity with the SDK, as sagctl does.
func (c *cloud) callerIdentity(t *testing.T, cred auth.Credential) (*sts.GetCallerIdentityResponse, error) {
	t.Helper()
	cfg := sdk.NewConfig()
	cfg.AutoRetry = false
	var provider sdkauth.Credential = credentials.NewStaticAKCredentialsProvider(cred.AccessKeyID, cred.AccessKeySecret)
	if cred.SecurityToken != "" {
		provider = credentials.NewStaticSTSCredentialsProvider(cred.AccessKeyID, cred.AccessKeySecret, cred.SecurityToken)
	}
	client, err := sts.NewClientWithOptions("cn-shanghai", cfg, provider)
	if err != nil {
		t.Fatal(err)
	}
	client.Domain = c.addr
	req := sts.CreateGetCallerIdentityRequest()
	req.Scheme = "http"
	return client.GetCallerIdentity(req)
}

func TestIdentities(t *testing.T) {
	c := newCloud(t)
	root := c.keys.AddAccessKey(account)
	user := c.keys.AddUserKey(account, "alice")
	role := c.keys.IssueSTS(account, time.Hour)
	for _, tc := range []struct {
		name       string
		cred       auth.Credential
		typ, arnRe string
	}{
		{"root key", root, "Account", "acs:ram::" + account + ":root"},
		{"RAM user key", user, "RAMUser", "acs:ram::" + account + ":user/alice"},
		{"STS", role, "AssumedRoleUser", "acs:ram::" + account + ":assumed-role/sag-upgrade-operator/sim-"},
	} {
		resp, err := c.callerIdentity(t, tc.cred)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.IdentityType != tc.typ || resp.AccountId != account || !strings.HasPrefix(resp.Arn, tc.arnRe) || resp.RequestId == "" || resp.PrincipalId == "" {
			t.Errorf("%s: %+v", tc.name, resp)
		}
		if (tc.typ == "AssumedRoleUser") != (resp.RoleId != "") {
			t.Errorf("%s: RoleId %q", tc.name, resp.RoleId)
		}
	}
	// The same caller is the same principal every time.
	again, _ := c.callerIdentity(t, user)
	if first, _ := c.callerIdentity(t, user); first.PrincipalId != again.PrincipalId {
		t.Errorf("principal ids %s and %s for one user", first.PrincipalId, again.PrincipalId)
	}
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a ServerError %s", err, err, code)
	}
	if se.HttpStatus() != status || se.ErrorCode() != code {
		t.Fatalf("got %d %s, want %d %s", se.HttpStatus(), se.ErrorCode(), status, code)
	}
}

func TestRefusals(t *testing.T) {
	c := newCloud(t)
	user := c.keys.AddUserKey(account, "alice")
	wrong := user
	wrong.AccessKeySecret += "x"
	_, err := c.callerIdentity(t, wrong)
	wantCode(t, err, http.StatusBadRequest, "SignatureDoesNotMatch")

	_, err = c.callerIdentity(t, auth.Credential{AccessKeyID: "LTAI5tunknown", AccessKeySecret: "s"})
	wantCode(t, err, http.StatusNotFound, "InvalidAccessKeyId.NotFound")

	role := c.keys.IssueSTS(account, time.Minute)
	c.now = c.now.Add(2 * time.Minute)
	_, err = c.callerIdentity(t, role)
	wantCode(t, err, http.StatusForbidden, "InvalidSecurityToken.Expired")

	noToken := c.keys.IssueSTS(account, time.Hour)
	noToken.SecurityToken = ""
	_, err = c.callerIdentity(t, noToken)
	wantCode(t, err, http.StatusBadRequest, "MissingSecurityToken")

	for _, call := range c.srv.Calls() {
		if call.Status == http.StatusOK {
			t.Errorf("a refused call recorded as %d", call.Status)
		}
	}
}

// A signed request sent twice is refused the second time, and another
// action of STS is not served.
func TestReplayAndOtherActions(t *testing.T) {
	c := newCloud(t)
	user := c.keys.AddUserKey(account, "alice")
	signed := func(action string) url.Values {
		p := url.Values{"Action": {action}, "Version": {stssim.APIVersion}, "Format": {"JSON"}, "AccessKeyId": {user.AccessKeyID},
			"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureNonce": {"n-" + action},
			"Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")}, "RegionId": {"cn-shanghai"}}
		p.Set("Signature", auth.RPCSignature(user.AccessKeySecret, auth.RPCStringToSign("POST", p)))
		return p
	}
	post := func(p url.Values) int {
		resp, err := http.Post("http://"+c.addr+"/?"+p.Encode(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	p := signed("GetCallerIdentity")
	if s := post(p); s != http.StatusOK {
		t.Fatalf("first: %d", s)
	}
	if s := post(p); s != http.StatusBadRequest || c.srv.Calls()[1].Code != "SignatureNonceUsed" {
		t.Fatalf("replay: %d %+v", s, c.srv.Calls()[1])
	}
	if s := post(signed("AssumeRole")); s != http.StatusNotFound || c.srv.Calls()[2].Code != "InvalidAction.NotFound" {
		t.Fatalf("AssumeRole: %d %+v", s, c.srv.Calls()[2])
	}
	r := httptest.NewRequest("POST", "/?Version="+stssim.APIVersion, nil)
	if !stssim.IsSTS(r) || stssim.IsSTS(httptest.NewRequest("POST", "/?Version=2018-03-13", nil)) {
		t.Error("IsSTS does not tell STS's version from SAG's")
	}
}
