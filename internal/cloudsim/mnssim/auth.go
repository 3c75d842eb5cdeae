package mnssim

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// maxClockSkew is how far the Date header may be from the server's time.
const maxClockSkew = 15 * time.Minute

// authenticate checks the headers every MNS request carries and its
// signature (https://www.alibabacloud.com/help/doc-detail/27487.htm).
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	switch v := r.Header.Get("x-mns-version"); {
	case v == "":
		return &apiError{http.StatusBadRequest, "MissingVersionHeader", "x-mns-version header is required."}
	case v != apiVersion:
		return &apiError{http.StatusBadRequest, "InvalidVersionHeader", "The x-mns-version header must be " + apiVersion + "."}
	}

	authz := r.Header.Get("Authorization")
	if authz == "" {
		return &apiError{http.StatusBadRequest, "MissingAuthorizationHeader", "Authorization header is required."}
	}
	keyID, signature, ok := parseAuthorization(authz)
	if !ok {
		return &apiError{http.StatusBadRequest, "InvalidAuthorizationHeader", "The Authorization header format is invalid."}
	}

	date := r.Header.Get("Date")
	if date == "" {
		return &apiError{http.StatusBadRequest, "MissingDateHeader", "Date header is required."}
	}
	signedAt, err := http.ParseTime(date)
	if err != nil {
		return &apiError{http.StatusBadRequest, "InvalidDateHeader", "The Date header format is invalid."}
	}
	if skew := s.wall().Sub(signedAt); skew > maxClockSkew || skew < -maxClockSkew {
		return &apiError{http.StatusRequestTimeout, "TimeExpired", "The http request you sent is expired."}
	}

	if md5Header := r.Header.Get("Content-MD5"); md5Header != "" && md5Header != contentMD5(body) {
		// "InvalidDegist" is MNS's own spelling, and the one the SDK maps.
		return &apiError{http.StatusBadRequest, "InvalidDegist", "The Content-MD5 you specified is invalid."}
	}

	cred, problem := s.keyring.Check(keyID, r.Header.Get("security-token"))
	if e := credentialError(problem); e != nil {
		return e
	}
	if !hmac.Equal([]byte(signature), []byte(sign(cred.AccessKeySecret, stringToSign(r)))) {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided."}
	}
	return nil
}

// credentialError maps a keyring problem to an MNS error. The STS codes are
// this emulator's choice: production's exact codes are unverified.
func credentialError(p auth.Problem) *apiError {
	switch p {
	case auth.OK:
		return nil
	case auth.UnknownKey:
		return &apiError{http.StatusForbidden, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist."}
	case auth.TokenExpired:
		return &apiError{http.StatusForbidden, "SecurityTokenExpired", "The security token you provided has expired."}
	}
	return &apiError{http.StatusForbidden, "InvalidSecurityToken", "The security token you provided is invalid: " + p.String() + "."}
}

// parseAuthorization splits "MNS <AccessKeyId>:<Signature>".
func parseAuthorization(h string) (keyID, signature string, ok bool) {
	rest, found := strings.CutPrefix(h, "MNS ")
	if !found {
		return "", "", false
	}
	keyID, signature, found = strings.Cut(rest, ":")
	if !found || keyID == "" || signature == "" {
		return "", "", false
	}
	return keyID, signature, true
}

// stringToSign follows the SDK: header names lower-cased (net/http
// canonicalises them), x-mns-* headers sorted, and the request URI exactly as
// sent, query included, as the canonical resource.
func stringToSign(r *http.Request) string {
	var mnsHeaders []string
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-mns-") && len(values) > 0 {
			mnsHeaders = append(mnsHeaders, lower+":"+strings.TrimSpace(values[0]))
		}
	}
	sort.Strings(mnsHeaders)
	return r.Method + "\n" +
		r.Header.Get("Content-MD5") + "\n" +
		r.Header.Get("Content-Type") + "\n" +
		r.Header.Get("Date") + "\n" +
		strings.Join(mnsHeaders, "\n") + "\n" +
		r.RequestURI
}

func sign(secret, stringToSign string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// contentMD5 is MNS's Content-MD5: base64 of the lower-case hex digest, not
// of the raw digest as RFC 1864 would have it.
func contentMD5(body []byte) string {
	sum := md5.Sum(body)
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
}
