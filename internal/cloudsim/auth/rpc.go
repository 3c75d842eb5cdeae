package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The RPC-style OpenAPI signature (version 1.0, HMAC-SHA1) that
// alibaba-cloud-sdk-go sends and every RPC product's gateway checks the same
// way: SAG (sagsim) and STS (stssim) share it here. See
// /work/shared/reference/sag-api-and-sdk.md §3.

// RPCWindow is both the allowed Timestamp skew of an RPC call and how long
// its nonce is remembered: a replay older than that fails on its Timestamp.
const RPCWindow = 15 * time.Minute

// RPCStringToSign builds the string the SDK signs (rpc_signature_composer.go):
// every parameter but Signature, sorted and form-encoded, with the SDK's
// percent-encoding fixes, then escaped once more behind the method.
func RPCStringToSign(method string, p url.Values) string {
	signed := url.Values{}
	for k, vs := range p {
		if k != "Signature" && len(vs) > 0 {
			signed.Set(k, vs[0])
		}
	}
	canon := signed.Encode()
	canon = strings.ReplaceAll(canon, "+", "%20")
	canon = strings.ReplaceAll(canon, "*", "%2A")
	canon = strings.ReplaceAll(canon, "%7E", "~")
	return strings.ToUpper(method) + "&%2F&" + url.QueryEscape(canon)
}

// RPCSignature is the signature of stringToSign under secret.
func RPCSignature(secret, stringToSign string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// POPError is the gateway's answer to a credential problem: HTTP status,
// Code and Message; ok for OK. The codes are well attested; their HTTP
// statuses are not (unverified: no authoritative source gives them, 400/403
// is the common pattern).
func (p Problem) POPError() (status int, code, message string, ok bool) {
	switch p {
	case OK:
		return 0, "", "", true
	case UnknownKey:
		return http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", false
	case MissingToken:
		return http.StatusBadRequest, "MissingSecurityToken", "SecurityToken is mandatory for this action.", false
	case TokenMalformed:
		return http.StatusBadRequest, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.", false
	case TokenMismatch:
		return http.StatusBadRequest, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey.", false
	case TokenExpired:
		return http.StatusForbidden, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", false
	}
	return http.StatusBadRequest, "InvalidAccessKeyId", "Specified access key is not valid.", false
}

// Nonces remembers the nonces of accepted requests while a replay could
// still pass the Timestamp check, and forgets them after, so memory stays
// bounded by the calls of one window however long a benchmark runs. The
// zero value is ready to use.
type Nonces struct {
	mu        sync.Mutex
	until     map[string]time.Time // nonce → when it may be forgotten
	lastSweep time.Time
}

// Use records nonce and reports whether it was unused. ts is the request's
// Timestamp, now the wall clock.
func (c *Nonces) Use(nonce string, ts, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.until == nil {
		c.until = map[string]time.Time{}
	}
	if now.Sub(c.lastSweep) >= time.Minute {
		for n, t := range c.until {
			if now.After(t) {
				delete(c.until, n)
			}
		}
		c.lastSweep = now
	}
	if t, ok := c.until[nonce]; ok && !now.After(t) {
		return false
	}
	// A request whose Timestamp is ahead of the server stays replayable
	// until that Timestamp is stale, so its nonce is kept as long.
	c.until[nonce] = later(ts, now).Add(RPCWindow)
	return true
}

// Len is how many nonces are remembered.
func (c *Nonces) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.until)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
