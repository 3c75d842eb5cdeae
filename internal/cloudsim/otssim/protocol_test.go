package otssim_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	permanent := e.keys.AddAccessKey(account)
	wrongSecret := e.cred
	wrongSecret.AccessKeySecret = "not-the-secret"
	unknown := auth.Credential{AccessKeyID: "LTAI5tnobodyhasthis", AccessKeySecret: "x"}
	noToken := e.cred
	noToken.SecurityToken = ""

	put := func(c *tablestore.TableStoreClient) error {
		_, err := c.PutRow(putReq("run-1", "sag-a", map[string]any{"status": "requested"}, tablestore.RowExistenceExpectation_IGNORE))
		return err
	}
	for _, tc := range []struct {
		name    string
		client  *tablestore.TableStoreClient
		message string // "" means any
	}{
		{"wrong secret", e.clientWith(wrongSecret, config(0)), "Signature mismatch."},
		{"unknown key", e.clientWith(unknown, config(0)), "The AccessKeyID does not exist."},
		{"STS key without its token", e.clientWith(noToken, config(0)), ""},
		{"wrong instance", tablestore.NewClientWithConfig(e.url, "someone-else", e.cred.AccessKeyID, e.cred.AccessKeySecret, e.cred.SecurityToken, config(0)),
			"The instance is not found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oe := otsErr(t, put(tc.client), "OTSAuthFailed", http.StatusForbidden)
			if tc.message != "" && oe.Message != tc.message {
				t.Errorf("message %q, want %q", oe.Message, tc.message)
			}
		})
	}
	if rows := e.sim.Rows(ledger); len(rows) != 0 {
		t.Fatalf("refused calls wrote %v", rows)
	}

	// A permanent key works, and so does the STS credential until it expires.
	if err := put(e.clientWith(permanent, config(0))); err != nil {
		t.Fatalf("permanent key: %v", err)
	}
	if err := put(e.client()); err != nil {
		t.Fatalf("STS credential: %v", err)
	}
	e.advanceKeyring(2 * time.Hour)
	otsErr(t, put(e.client()), "OTSAuthFailed", http.StatusForbidden)
}

func TestClockSkew(t *testing.T) {
	e := newEnv(t, otssim.Options{Wall: func() time.Time { return time.Now().Add(20 * time.Minute) }})
	_, err := e.client().ListTable()
	oe := otsErr(t, err, "OTSAuthFailed", http.StatusForbidden)
	if !strings.HasPrefix(oe.Message, "Mismatch between system time and x-ots-date: ") {
		t.Fatalf("message %q", oe.Message)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBodyDigest(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	cfg := config(0)
	// Change the body after the SDK signed it, as a broken proxy would.
	cfg.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		body = append(body, 0x08, 0x01)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return http.DefaultTransport.RoundTrip(r)
	})
	_, err := e.clientWith(e.cred, cfg).PutRow(putReq("run-1", "sag-a", map[string]any{"s": "x"}, tablestore.RowExistenceExpectation_IGNORE))
	oe := otsErr(t, err, "OTSAuthFailed", http.StatusForbidden)
	if oe.Message != "Mismatch between MD5 value of request body and x-ots-contentmd5 in header." {
		t.Fatalf("message %q", oe.Message)
	}
}

// TestAnswerHeaders checks what the service puts on answers: a request id,
// the body's MD5, and a signature by the caller's key over the x-ots-*
// headers and the path (the Python SDK verifies both).
func TestAnswerHeaders(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	e.createLedger()
	var answers []*http.Response
	var bodies [][]byte
	cfg := config(0)
	cfg.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			answers, bodies = append(answers, resp), append(bodies, body)
		}
		return resp, err
	})
	c := e.clientWith(e.cred, cfg)
	e.put(c, "run-1", "sag-a", map[string]any{"status": "requested"})
	get(t, c, "run-1", "sag-a")
	_, err := c.PutRow(putReq("run-1", "sag-a", nil, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST))
	otsErr(t, err, "OTSConditionCheckFail", http.StatusForbidden)

	if len(answers) != 3 {
		t.Fatalf("%d answers", len(answers))
	}
	ids := map[string]bool{}
	for i, resp := range answers {
		h := resp.Header
		ids[h.Get("x-ots-requestid")] = true
		sum := md5.Sum(bodies[i])
		if got := h.Get("x-ots-contentmd5"); got != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("answer %d: x-ots-contentmd5 %q does not match the body", i, got)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", h.Get("x-ots-date")); err != nil {
			t.Errorf("answer %d: x-ots-date: %v", i, err)
		}
		var lines []string
		for name := range h {
			if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-ots-") {
				lines = append(lines, lower+":"+strings.TrimSpace(h.Get(name)))
			}
		}
		sort.Strings(lines)
		mac := hmac.New(sha1.New, []byte(e.cred.AccessKeySecret))
		mac.Write([]byte(strings.Join(lines, "\n") + "\n" + resp.Request.URL.Path))
		want := "OTS " + e.cred.AccessKeyID + ":" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if got := h.Get("Authorization"); got != want {
			t.Errorf("answer %d: Authorization %q, want %q", i, got, want)
		}
	}
	if len(ids) != 3 || ids[""] {
		t.Errorf("request ids %v", ids)
	}
}

// TestRawRequests sends what the SDK never does.
func TestRawRequests(t *testing.T) {
	e := newEnv(t, otssim.Options{})
	errorOf := func(resp *http.Response, err error) (int, string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var pe otsprotocol.Error
		if err := proto.Unmarshal(body, &pe); err != nil {
			t.Fatalf("status %d, body %q is no protobuf Error: %v", resp.StatusCode, body, err)
		}
		return resp.StatusCode, pe.GetCode(), pe.GetMessage()
	}
	if status, code, _ := errorOf(http.Get(e.url + "/ListTable")); status != 405 || code != "OTSMethodNotAllowed" {
		t.Errorf("GET: %d %s", status, code)
	}
	if status, code, msg := errorOf(http.Post(e.url+"/Frobnicate", "", nil)); status != 400 || code != "OTSParameterInvalid" ||
		msg != "Unsupported operation: 'Frobnicate'." {
		t.Errorf("unknown action: %d %s %q", status, code, msg)
	}
	if status, code, msg := errorOf(http.Post(e.url+"/ListTable", "", nil)); status != 400 || code != "OTSParameterInvalid" ||
		msg != "Missing header: 'x-ots-date'." {
		t.Errorf("unsigned: %d %s %q", status, code, msg)
	}
	if got := e.sim.Calls(); got["ListTable"] != 2 || got["Unknown"] != 1 {
		t.Errorf("Calls %v", got)
	}
}
