package otssim

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// The Tablestore protocol: every call is a POST to /<Action> with a
// protobuf body and these headers, signed with HMAC-SHA1 over
//
//	/<Action> "\n" POST "\n" "\n" (x-ots-<name>:<trimmed value> "\n")*
//
// taking every x-ots-* header but x-ots-signature, names lower-cased and
// sorted. Answers carry x-ots-requestid, x-ots-date, x-ots-contentmd5 (base64
// of the body's MD5), x-ots-contenttype and, once the caller is known, an
// "Authorization: OTS <AccessKeyId>:<signature>" over the x-ots-* answer
// headers and the path — what the Python SDK checks (the Go SDK checks none
// of it).

const (
	apiVersion   = "2015-12-31"
	maxClockSkew = 15 * time.Minute
	// maxRequestBody is the documented limit of one request body.
	maxRequestBody = 5 << 20
)

const (
	hDate        = "x-ots-date"
	hAPIVersion  = "x-ots-apiversion"
	hAccessKeyID = "x-ots-accesskeyid"
	hContentMD5  = "x-ots-contentmd5"
	hInstance    = "x-ots-instancename"
	hSignature   = "x-ots-signature"
	hSTSToken    = "x-ots-ststoken"
	hRequestID   = "x-ots-requestid"
	hContentType = "x-ots-contenttype"
)

// authenticate checks a request's headers, body digest, date, credential,
// instance and signature, and returns the caller's credential.
func (s *Server) authenticate(r *http.Request, body []byte) (auth.Credential, *otsError) {
	for _, name := range []string{hDate, hAPIVersion, hAccessKeyID, hContentMD5, hInstance, hSignature} {
		if r.Header.Get(name) == "" {
			return auth.Credential{}, invalidParam("Missing header: '%s'.", name)
		}
	}
	if v := r.Header.Get(hAPIVersion); v != apiVersion {
		return auth.Credential{}, invalidParam("Unsupported API version: %s.", v) // message unverified
	}
	if r.Header.Get(hContentMD5) != contentMD5(body) {
		return auth.Credential{}, authFailed("Mismatch between MD5 value of request body and x-ots-contentmd5 in header.")
	}
	date := r.Header.Get(hDate)
	signedAt, ok := parseDate(date)
	if !ok {
		return auth.Credential{}, invalidParam("Invalid date format: %s.", date)
	}
	if skew := s.wall().Sub(signedAt); skew > maxClockSkew || skew < -maxClockSkew {
		return auth.Credential{}, authFailed("Mismatch between system time and x-ots-date: " + date + ".")
	}
	cred, problem := s.keys.Check(r.Header.Get(hAccessKeyID), r.Header.Get(hSTSToken))
	if e := credentialError(problem); e != nil {
		return auth.Credential{}, e
	}
	if r.Header.Get(hInstance) != s.instance {
		return auth.Credential{}, authFailed("The instance is not found.")
	}
	if !hmac.Equal([]byte(r.Header.Get(hSignature)), []byte(sign(cred.AccessKeySecret, stringToSign(r)))) {
		return auth.Credential{}, authFailed("Signature mismatch.")
	}
	return cred, nil
}

// credentialError maps a keyring problem to OTSAuthFailed. The message for
// an unknown key is documented; those for STS tokens are unverified.
func credentialError(p auth.Problem) *otsError {
	switch p {
	case auth.OK:
		return nil
	case auth.UnknownKey:
		return authFailed("The AccessKeyID does not exist.")
	case auth.TokenExpired:
		return authFailed("The security token you provided has expired.")
	}
	return authFailed("The security token you provided is invalid: " + p.String() + ".")
}

func stringToSign(r *http.Request) string {
	return r.URL.Path + "\nPOST\n\n" + canonicalHeaders(r.Header) + "\n"
}

// canonicalHeaders joins the x-ots-* headers but the signature, sorted.
func canonicalHeaders(h http.Header) string {
	var lines []string
	for name, values := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-ots-") && lower != hSignature && len(values) > 0 {
			lines = append(lines, lower+":"+strings.TrimSpace(values[0]))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sign(secret, s string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func contentMD5(body []byte) string {
	sum := md5.Sum(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// parseDate reads x-ots-date, "2006-01-02T15:04:05[.fraction]Z" in UTC.
// The fraction is only checked to be digits: the Go SDK v1.7.17 formats it
// with the layout ".123", which Go reads as month, day and 12-hour hour, so
// it sends e.g. "…:05.11221Z", and the service accepts that.
func parseDate(s string) (time.Time, bool) {
	const layout = "2006-01-02T15:04:05"
	if len(s) < len(layout)+1 || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, s[:len(layout)])
	if err != nil {
		return time.Time{}, false
	}
	if frac := s[len(layout) : len(s)-1]; frac != "" {
		digits, ok := strings.CutPrefix(frac, ".")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return time.Time{}, false
		}
	}
	return t, true
}

// answer writes a response with the headers the service sends. cred is
// nil when the caller is not known (authentication failed): such answers
// are not signed.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, requestID string, cred *auth.Credential, status int, body []byte) {
	h := w.Header()
	h.Set(hRequestID, requestID)
	h.Set(hDate, s.wall().UTC().Format("2006-01-02T15:04:05.000Z"))
	h.Set(hContentMD5, contentMD5(body))
	h.Set(hContentType, "protocol buffer")
	h.Set("Content-Type", "application/x-protobuf")
	if cred != nil {
		h.Set("Authorization", "OTS "+cred.AccessKeyID+":"+sign(cred.AccessKeySecret, canonicalHeaders(h)+"\n"+r.URL.Path))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
