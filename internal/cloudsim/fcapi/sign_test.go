package fcapi

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// The worked example of reference §2.4: the request the real SDK sent, as a
// Go server received it, and what the signature is built from.
const (
	vectorSecret = "exampleAccessKeySecret"
	vectorAK     = "STS.EXAMPLEACCESSKEYID"
	vectorToken  = "CAISexampleSecurityToken"
	vectorDate   = "2024-05-01T12:00:00Z"

	vectorRequest = "POST /2023-03-30/functions/my-func/invocations?qualifier=prod HTTP/1.1\r\n" +
		"Host: 127.0.0.1:18080\r\n" +
		"Accept: application/json\r\n" +
		"Accept-Encoding: gzip\r\n" +
		"Authorization: ACS3-HMAC-SHA256 Credential=STS.EXAMPLEACCESSKEYID,SignedHeaders=content-type;host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=d19ba78540aea26ba5840f86c40a3a684ca7596c76eeec6910be29ddca09a43a\r\n" +
		"Content-Length: 17\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"User-Agent: AlibabaCloud (linux; amd64) Golang/1.26.8 Core/0.01 TeaDSL/2\r\n" +
		"X-Acs-Accesskey-Id: STS.EXAMPLEACCESSKEYID\r\n" +
		"X-Acs-Action: InvokeFunction\r\n" +
		"X-Acs-Content-Sha256: 93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588\r\n" +
		"X-Acs-Credentials-Provider: static_sts\r\n" +
		"X-Acs-Date: 2024-05-01T12:00:00Z\r\n" +
		"X-Acs-Security-Token: CAISexampleSecurityToken\r\n" +
		"X-Acs-Signature-Nonce: 0123456789abcdef0123456789abcdef\r\n" +
		"X-Acs-Version: 2023-03-30\r\n" +
		"X-Fc-Invocation-Type: Sync\r\n" +
		"X-Fc-Log-Type: Tail\r\n" +
		"\r\n" +
		`{"hello":"world"}`

	vectorCanonical = "POST\n" +
		"/2023-03-30/functions/my-func/invocations\n" +
		"qualifier=prod\n" +
		"content-type:application/octet-stream\n" +
		"host:127.0.0.1:18080\n" +
		"x-acs-accesskey-id:STS.EXAMPLEACCESSKEYID\n" +
		"x-acs-action:InvokeFunction\n" +
		"x-acs-content-sha256:93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588\n" +
		"x-acs-credentials-provider:static_sts\n" +
		"x-acs-date:2024-05-01T12:00:00Z\n" +
		"x-acs-security-token:CAISexampleSecurityToken\n" +
		"x-acs-signature-nonce:0123456789abcdef0123456789abcdef\n" +
		"x-acs-version:2023-03-30\n" +
		"\n" +
		"content-type;host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version\n" +
		"93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"

	vectorStringToSign = "ACS3-HMAC-SHA256\n88b7f596d90abfd991997f7d74c58139a135ab143a6a940763af747c02c566fc"
	vectorSignature    = "d19ba78540aea26ba5840f86c40a3a684ca7596c76eeec6910be29ddca09a43a"
)

// vectorRequestParsed reads the raw request the way net/http's server does.
func vectorRequestParsed(t *testing.T, raw string) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

// vectorVerifier knows the example's STS credential, valid at its date.
func vectorVerifier(t *testing.T) *verifier {
	t.Helper()
	at, err := time.Parse(dateLayout, vectorDate)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeyring(func() time.Time { return at })
	keys.Add(auth.Credential{AccessKeyID: vectorAK, AccessKeySecret: vectorSecret, SecurityToken: vectorToken,
		AccountID: "1234567890123456", Expiration: at.Add(time.Hour)})
	keys.Add(auth.Credential{AccessKeyID: "LTAI5tEXAMPLE", AccessKeySecret: vectorSecret, AccountID: "1234567890123456"})
	return &verifier{keys: keys, wall: func() time.Time { return at }}
}

func TestSignatureVector(t *testing.T) {
	r, body := vectorRequestParsed(t, vectorRequest)
	a, e := parseAuthorization(r.Header.Get("Authorization"))
	if e != nil {
		t.Fatal(e)
	}
	if got := canonicalRequest(r, a.signedHeaders); got != vectorCanonical {
		t.Fatalf("canonical request:\n%s\nwant:\n%s", got, vectorCanonical)
	}
	if got := stringToSign(vectorCanonical); got != vectorStringToSign {
		t.Fatalf("string to sign %q, want %q", got, vectorStringToSign)
	}
	if got := signature(vectorSecret, vectorStringToSign); got != vectorSignature {
		t.Fatalf("signature %s, want %s", got, vectorSignature)
	}
	cred, e := vectorVerifier(t).verify(r, body)
	if e != nil {
		t.Fatalf("verify: %v", e)
	}
	if cred.AccessKeyID != vectorAK || cred.AccountID != "1234567890123456" {
		t.Fatalf("credential %+v", cred)
	}
}

// TestSignatureVectorStaticAK is reference §2.4's second vector: a permanent
// key, no token, no body, no query.
func TestSignatureVectorStaticAK(t *testing.T) {
	const raw = "POST /2023-03-30/functions/my-func/invocations HTTP/1.1\r\n" +
		"Host: 127.0.0.1:18080\r\n" +
		"Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tEXAMPLE,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=85cdce699b6a18184915aacced41f3f51f07d921d95daf42cbd8202daba088a1\r\n" +
		"Content-Length: 0\r\n" +
		"X-Acs-Action: InvokeFunction\r\n" +
		"X-Acs-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n" +
		"X-Acs-Credentials-Provider: static_ak\r\n" +
		"X-Acs-Date: 2026-12-06T02:39:07Z\r\n" +
		"X-Acs-Signature-Nonce: 870b5a8d27db6d4466c8ffa2a0474b9d\r\n" +
		"X-Acs-Version: 2023-03-30\r\n" +
		"\r\n"
	r, body := vectorRequestParsed(t, raw)
	a, e := parseAuthorization(r.Header.Get("Authorization"))
	if e != nil {
		t.Fatal(e)
	}
	const wantHash = "96c94847096849e90a415656000642832a2e64fa9394358d3aa30b2574937b8b"
	if got := stringToSign(canonicalRequest(r, a.signedHeaders)); got != algorithm+"\n"+wantHash {
		t.Fatalf("string to sign %q, want hash %s", got, wantHash)
	}
	v := vectorVerifier(t)
	at, _ := time.Parse(dateLayout, "2026-12-06T02:39:07Z")
	v.wall = func() time.Time { return at }
	if _, e := v.verify(r, body); e != nil {
		t.Fatalf("verify: %v", e)
	}
}

// TestVerifierRefuses changes one thing of the worked example at a time.
func TestVerifierRefuses(t *testing.T) {
	swap := func(old, new string) func(string) string {
		return func(raw string) string {
			if !strings.Contains(raw, old) {
				t.Fatalf("the example has no %q", old)
			}
			return strings.Replace(raw, old, new, 1)
		}
	}
	at, _ := time.Parse(dateLayout, vectorDate)
	cases := []struct {
		name   string
		edit   func(string) string
		wall   time.Time
		status int
		code   string
	}{
		{"body", swap(`{"hello":"world"}`, `{"hello":"World"}`), at, 403, "SignatureNotMatch"},
		{"body and its hash", func(raw string) string {
			raw = swap(`{"hello":"world"}`, `{"hello":"World"}`)(raw)
			return swap("93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588",
				hexSHA256([]byte(`{"hello":"World"}`)))(raw)
		}, at, 403, "SignatureNotMatch"},
		{"qualifier", swap("?qualifier=prod", "?qualifier=test"), at, 403, "SignatureNotMatch"},
		{"path", swap("functions/my-func/", "functions/my-fund/"), at, 403, "SignatureNotMatch"},
		{"host", swap("Host: 127.0.0.1:18080", "Host: 127.0.0.1:18081"), at, 403, "SignatureNotMatch"},
		{"signed header", swap("X-Acs-Credentials-Provider: static_sts", "X-Acs-Credentials-Provider: default/env"), at, 403, "SignatureNotMatch"},
		{"unsigned x-acs header", swap("X-Fc-Log-Type: Tail", "X-Acs-Extra: 1"), at, 403, "SignatureNotMatch"},
		{"signature", swap("Signature=d19b", "Signature=d19c"), at, 403, "SignatureNotMatch"},
		{"unsigned header changed", swap("X-Fc-Log-Type: Tail", "X-Fc-Log-Type: None"), at, 0, ""},
		{"date 16 min later", nil, at.Add(16 * time.Minute), 403, "RequestTimeTooSkewed"},
		{"date 16 min earlier", nil, at.Add(-16 * time.Minute), 403, "RequestTimeTooSkewed"},
		{"date 14 min later", nil, at.Add(14 * time.Minute), 0, ""},
		{"token", swap("X-Acs-Security-Token: CAISexampleSecurityToken", "X-Acs-Security-Token: CAISother"), at, 403, "InvalidSecurityToken.MismatchWithAccessKey"},
		{"no token", swap("X-Acs-Security-Token: CAISexampleSecurityToken\r\n", ""), at, 400, "MissingRequiredHeader"},
		{"unknown key", swap("Credential=STS.EXAMPLEACCESSKEYID", "Credential=STS.OTHER"), at, 403, "InvalidAccessKeyID"},
		{"no nonce", swap("X-Acs-Signature-Nonce: 0123456789abcdef0123456789abcdef\r\n", ""), at, 400, "MissingRequiredHeader"},
		{"no authorization", func(raw string) string {
			i := strings.Index(raw, "Authorization:")
			j := strings.Index(raw[i:], "\r\n")
			return raw[:i] + raw[i+j+2:]
		}, at, 400, "MissingRequiredHeader"},
		{"other algorithm", swap("ACS3-HMAC-SHA256 Credential", "ACS3-HMAC-SM3 Credential"), at, 400, "InvalidArgument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := vectorRequest
			if c.edit != nil {
				raw = c.edit(raw)
			}
			r, body := vectorRequestParsed(t, raw)
			v := vectorVerifier(t)
			v.wall = func() time.Time { return c.wall }
			_, e := v.verify(r, body)
			switch {
			case c.code == "" && e != nil:
				t.Fatalf("refused: %v", e)
			case c.code == "":
			case e == nil:
				t.Fatalf("accepted, want %d %s", c.status, c.code)
			case e.status != c.status || e.code != c.code:
				t.Fatalf("got %d %s (%s), want %d %s", e.status, e.code, e.message, c.status, c.code)
			}
		})
	}
}

func TestVerifierExpiredToken(t *testing.T) {
	r, body := vectorRequestParsed(t, vectorRequest)
	v := vectorVerifier(t)
	at, _ := time.Parse(dateLayout, vectorDate)
	keys := auth.NewKeyring(func() time.Time { return at })
	keys.Add(auth.Credential{AccessKeyID: vectorAK, AccessKeySecret: vectorSecret, SecurityToken: vectorToken,
		AccountID: "1234567890123456", Expiration: at.Add(-time.Second)})
	v.keys = keys
	if _, e := v.verify(r, body); e == nil || e.code != "InvalidSecurityToken.Expired" || e.status != 403 {
		t.Fatalf("got %v, want 403 InvalidSecurityToken.Expired", e)
	}
}

func TestVerifierNonceOnce(t *testing.T) {
	v := vectorVerifier(t)
	r, body := vectorRequestParsed(t, vectorRequest)
	if _, e := v.verify(r, body); e != nil {
		t.Fatal(e)
	}
	r, body = vectorRequestParsed(t, vectorRequest)
	if _, e := v.verify(r, body); e == nil || e.code != "SignatureNonceUsed" {
		t.Fatalf("replay: got %v, want SignatureNonceUsed", e)
	}
	// A request refused before its signature is checked does not use the
	// nonce up.
	v = vectorVerifier(t)
	bad, body := vectorRequestParsed(t, strings.Replace(vectorRequest, "Signature=d19b", "Signature=d19c", 1))
	if _, e := v.verify(bad, body); e == nil || e.code != "SignatureNotMatch" {
		t.Fatalf("bad signature: got %v", e)
	}
	r, body = vectorRequestParsed(t, vectorRequest)
	if _, e := v.verify(r, body); e != nil {
		t.Fatalf("after a forged request with its nonce: %v", e)
	}
}

func TestCanonicalQuery(t *testing.T) {
	// reference §2.3: sent as ?qualifier=a+b%2A~%2F, signed as a%20b%2A~%2F.
	r, err := http.NewRequest("POST", "http://h/x?qualifier=a+b%2A~%2F&B=1&a=", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := canonicalQuery(r.URL.Query()), "B=1&a=&qualifier=a%20b%2A~%2F"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCodeChecksum(t *testing.T) {
	// CRC-64/XZ (ECMA-182 polynomial, reflected, inverted): the check value of "123456789".
	got, err := CodeChecksum(strings.NewReader("123456789"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "11051210869376104954"; got != want { // 0x995dc9bbdf1939fa
		t.Fatalf("got %s, want %s", got, want)
	}
}
