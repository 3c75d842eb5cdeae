package mnssim_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

func TestCredentialsAreChecked(t *testing.T) {
	now := time.Now()
	keyring := auth.NewKeyring(func() time.Time { return now })
	e := newEnv(t, func(o *mnssim.Options) { o.Keyring = keyring })
	e.createQueue("work", mnssim.QueueOptions{})
	ak := keyring.AddAccessKey(account)
	sts := keyring.IssueSTS(account, time.Hour)
	other := keyring.IssueSTS(account, time.Hour)

	cases := []struct {
		name              string
		id, secret, token string
		want              interface{ IsEqual(error) bool } // nil: success
		code              string                           // server code, for codes the SDK does not map
	}{
		{"access key", ak.AccessKeyID, ak.AccessKeySecret, "", nil, ""},
		{"sts", sts.AccessKeyID, sts.AccessKeySecret, sts.SecurityToken, nil, ""},
		{"wrong secret", ak.AccessKeyID, "not-the-secret", "", &ali_mns.ERR_MNS_SIGNATURE_DOES_NOT_MATCH, "SignatureDoesNotMatch"},
		{"unknown key", "LTAI5tunknown", "whatever", "", &ali_mns.ERR_MNS_INVALID_ACCESS_KEY_ID, "InvalidAccessKeyId"},
		{"sts with another token", sts.AccessKeyID, sts.AccessKeySecret, other.SecurityToken, &ali_mns.ERR_MNS_UNKNOWN_CODE, "InvalidSecurityToken"},
		{"sts without token", sts.AccessKeyID, sts.AccessKeySecret, "", &ali_mns.ERR_MNS_UNKNOWN_CODE, "InvalidSecurityToken"},
	}
	for _, c := range cases {
		q := ali_mns.NewMNSQueue("work", e.newClient(c.id, c.secret, c.token))
		_, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: c.name, Priority: 8})
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v, want success", c.name, err)
		case c.want != nil && (!c.want.IsEqual(err) || !strings.Contains(err.Error(), "code: "+c.code)):
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if n := len(e.mns.Messages("work")); n != 2 {
		t.Errorf("%d messages stored, want only the 2 properly signed ones", n)
	}

	now = now.Add(time.Hour) // the STS credential expires
	q := ali_mns.NewMNSQueue("work", e.newClient(sts.AccessKeyID, sts.AccessKeySecret, sts.SecurityToken))
	_, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "late", Priority: 8})
	if !ali_mns.ERR_MNS_UNKNOWN_CODE.IsEqual(err) || !strings.Contains(err.Error(), "code: SecurityTokenExpired") {
		t.Errorf("expired STS token: %v, want SecurityTokenExpired", err)
	}
}

// The SDK always signs with the current time, so header problems are
// exercised with requests signed by hand.
func TestRequestHeadersAreChecked(t *testing.T) {
	e := newEnv(t)
	e.createQueue("work", mnssim.QueueOptions{})
	body := "<Message><MessageBody>raw</MessageBody><Priority>8</Priority></Message>"
	now := time.Now().UTC()
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }

	cases := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantCode   string
	}{
		{"signed 10 minutes ago", rawRequest(t, e, "POST", "/queues/work/messages", body, date(-10*time.Minute)), 201, ""},
		{"signed 20 minutes ago", rawRequest(t, e, "POST", "/queues/work/messages", body, date(-20*time.Minute)), 408, "TimeExpired"},
		{"signed 20 minutes ahead", rawRequest(t, e, "POST", "/queues/work/messages", body, date(20*time.Minute)), 408, "TimeExpired"},
		{"no version header", func() *http.Request {
			r := rawRequest(t, e, "POST", "/queues/work/messages", body, date(0))
			r.Header.Del("x-mns-version")
			return r
		}(), 400, "MissingVersionHeader"},
		{"wrong Content-MD5", func() *http.Request {
			r := rawRequest(t, e, "POST", "/queues/work/messages", body, date(0))
			r.Header.Set("Content-MD5", "ZDQxZDhjZDk4ZjAwYjIwNGU5ODAwOTk4ZWNmODQyN2U=")
			return r
		}(), 400, "InvalidDegist"},
		{"no Authorization", func() *http.Request {
			r := rawRequest(t, e, "POST", "/queues/work/messages", body, date(0))
			r.Header.Del("Authorization")
			return r
		}(), 400, "MissingAuthorizationHeader"},
		{"malformed Authorization", func() *http.Request {
			r := rawRequest(t, e, "POST", "/queues/work/messages", body, date(0))
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}(), 400, "InvalidAuthorizationHeader"},
		{"resource not as signed", func() *http.Request {
			r := rawRequest(t, e, "POST", "/queues/work/messages", body, date(0))
			r.URL.RawQuery = "extra=1"
			return r
		}(), 403, "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		resp, err := http.DefaultClient.Do(c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.StatusCode, c.wantStatus, raw)
			continue
		}
		if resp.Header.Get("x-mns-request-id") == "" {
			t.Errorf("%s: no x-mns-request-id", c.name)
		}
		if c.wantCode == "" {
			continue
		}
		var got struct {
			Code, Message, RequestId, HostId string
		}
		if err := xml.Unmarshal(raw, &got); err != nil || got.Code != c.wantCode {
			t.Errorf("%s: body %s, want code %s", c.name, raw, c.wantCode)
		}
		if got.RequestId != resp.Header.Get("x-mns-request-id") || got.HostId != "http://"+account+".mns.cn-shanghai.aliyuncs.com" {
			t.Errorf("%s: RequestId %q, HostId %q", c.name, got.RequestId, got.HostId)
		}
	}
	if n := len(e.mns.Messages("work")); n != 1 {
		t.Errorf("%d messages stored, want only the one accepted", n)
	}
}
