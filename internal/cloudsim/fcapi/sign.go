package fcapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// The ACS3-HMAC-SHA256 ("V3") signature as darabonba-openapi computes it
// (reference §2), checked as a server must (§2.5).

const (
	algorithm  = "ACS3-HMAC-SHA256"
	dateLayout = "2006-01-02T15:04:05Z"
	// maxSkew is how far x-acs-date may be from the server's clock (the V3
	// doc's 15 minutes), and so how long a nonce must be remembered.
	maxSkew = 15 * time.Minute

	hAuthorization = "Authorization"
	hDate          = "x-acs-date"
	hNonce         = "x-acs-signature-nonce"
	hContentSHA256 = "x-acs-content-sha256"
	hSecurityToken = "x-acs-security-token"
	hAccessKeyID   = "x-acs-accesskey-id"
)

// authorization is the parsed Authorization header.
type authorization struct {
	accessKeyID   string
	signedHeaders []string
	signature     string
}

// parseAuthorization splits "ACS3-HMAC-SHA256 Credential=<ak>,SignedHeaders=<h1;h2>,Signature=<hex>".
func parseAuthorization(h string) (authorization, *apiError) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != algorithm {
		// unverified: the service's answer to another algorithm (ACS3-HMAC-SM3,
		// ACS3-RSA-SHA256, the legacy "acs <ak>:<sig>") is not determined; this
		// emulator speaks only what the fc client sends.
		return authorization{}, invalidArgument("unsupported signature algorithm %q: only %s is accepted", alg, algorithm)
	}
	var a authorization
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authorization{}, invalidArgument("malformed Authorization header")
		}
		switch k {
		case "Credential":
			a.accessKeyID = v
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKeyID == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return authorization{}, invalidArgument("malformed Authorization header: Credential, SignedHeaders and Signature are required")
	}
	return a, nil
}

// verifier checks the signature, date, nonce and credential of a request.
type verifier struct {
	keys   *auth.Keyring
	wall   func() time.Time
	nonces auth.Nonces // the window is the same as the SAG API's RPC signature's: maxSkew
}

// verify authenticates r, whose body has been read into body, and returns the
// caller's credential. The checks run in this order: the headers are there,
// the date is fresh, the body matches its hash, the credential (and STS token)
// is valid, every header that must be signed is, the signature matches, and
// only then is the nonce used up, so an unsigned request cannot burn a nonce
// a real client is about to send.
func (v *verifier) verify(r *http.Request, body []byte) (auth.Credential, *apiError) {
	authz := r.Header.Get(hAuthorization)
	if authz == "" {
		return auth.Credential{}, missingHeader(hAuthorization)
	}
	a, e := parseAuthorization(authz)
	if e != nil {
		return auth.Credential{}, e
	}
	for _, name := range []string{hDate, hNonce, hContentSHA256} {
		if r.Header.Get(name) == "" {
			return auth.Credential{}, missingHeader(name)
		}
	}
	date, err := time.Parse(dateLayout, r.Header.Get(hDate))
	if err != nil {
		return auth.Credential{}, invalidArgument("invalid %s %q: want the form %s", hDate, r.Header.Get(hDate), dateLayout)
	}
	now := v.wall()
	if d := now.Sub(date); d > maxSkew || d < -maxSkew {
		return auth.Credential{}, errStaleDate
	}
	// A body that does not match its signed hash was changed on the way:
	// answered as a signature mismatch (unverified: the service may name it
	// apart).
	if !strings.EqualFold(r.Header.Get(hContentSHA256), hexSHA256(body)) {
		return auth.Credential{}, errSignature
	}

	token := r.Header.Get(hSecurityToken)
	cred, problem := v.keys.Check(a.accessKeyID, token)
	if e := credentialError(problem, a.accessKeyID); e != nil {
		return auth.Credential{}, e
	}
	if id := r.Header.Get(hAccessKeyID); id != "" && id != a.accessKeyID {
		// unverified: the SDK always sends the same id in both places.
		return auth.Credential{}, invalidArgument("%s %q differs from the Authorization credential", hAccessKeyID, id)
	}
	if e := mustBeSigned(r, a.signedHeaders); e != nil {
		return auth.Credential{}, e
	}
	want := signature(cred.AccessKeySecret, stringToSign(canonicalRequest(r, a.signedHeaders)))
	if !hmac.Equal([]byte(strings.ToLower(a.signature)), []byte(want)) {
		return auth.Credential{}, errSignature
	}
	if !v.nonces.Use(r.Header.Get(hNonce), date, now) {
		return auth.Credential{}, errNonceUsed
	}
	return cred, nil
}

// mustBeSigned enforces the V3 doc's rule that host and every x-acs-* header
// present are signed (the SDK also signs content-type), so none of them can be
// changed in transit. unverified: reference §5 does not know whether the live
// gateway rejects an unsigned one, nor with which code.
func mustBeSigned(r *http.Request, signed []string) *apiError {
	if !slices.Contains(signed, "host") {
		return errSignature
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if (strings.HasPrefix(lower, "x-acs-") || lower == "content-type") && !slices.Contains(signed, lower) {
			return errSignature
		}
	}
	return nil
}

// canonicalRequest rebuilds what the client signed (reference §2.3):
//
//	METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//
// from the headers the client lists, in its order, with r.Host for host. The
// payload hash is the x-acs-content-sha256 header, already checked against
// the body.
func canonicalRequest(r *http.Request, signedHeaders []string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(canonicalURI(r.URL) + "\n")
	b.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, name := range signedHeaders {
		b.WriteString(name + ":" + canonicalHeaderValue(r, name) + "\n")
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(signedHeaders, ";") + "\n")
	b.WriteString(r.Header.Get(hContentSHA256))
	return b.String()
}

// canonicalURI is the path as sent (the SDK percent-encodes the function
// name), with the SDK's three fixes.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return percentFix(p)
}

// canonicalQuery decodes the query and encodes it again the SDK's way: keys
// sorted and not escaped, values url.QueryEscape'd with the three fixes. The
// wire form (url.Values.Encode: space as '+') differs, so the raw query must
// not be compared.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		vs := q[k]
		if len(vs) == 0 {
			parts = append(parts, k+"=")
			continue
		}
		// The SDK's query is a map: one value a key. A repeated key is
		// canonicalised value by value (unverified: the SDK cannot send it).
		for _, v := range vs {
			parts = append(parts, k+"="+percentFix(url.QueryEscape(v)))
		}
	}
	return strings.Join(parts, "&")
}

// canonicalHeaderValue is one signed header's trimmed value; several values
// are sorted and joined with ','.
func canonicalHeaderValue(r *http.Request, name string) string {
	if name == "host" {
		return strings.TrimSpace(r.Host)
	}
	vs := r.Header.Values(name)
	trimmed := make([]string, len(vs))
	for i, v := range vs {
		trimmed[i] = strings.TrimSpace(v)
	}
	slices.Sort(trimmed)
	return strings.Join(trimmed, ",")
}

// percentFix is the SDK's PercentEncode correction of Go's escaping.
func percentFix(s string) string {
	s = strings.ReplaceAll(s, "+", "%20")
	s = strings.ReplaceAll(s, "*", "%2A")
	return strings.ReplaceAll(s, "%7E", "~")
}

func stringToSign(canonical string) string {
	return algorithm + "\n" + hexSHA256([]byte(canonical))
}

func signature(secret, stringToSign string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	return hex.EncodeToString(mac.Sum(nil))
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
