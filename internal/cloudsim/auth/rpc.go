package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
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

// RPCError is the gateway's answer to a call it refuses.
type RPCError struct {
	Status        int
	Code, Message string
}

// MissingParameter is the gateway's answer to a mandatory parameter left out.
func MissingParameter(name string) *RPCError {
	return &RPCError{http.StatusBadRequest, "MissingParameter",
		fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name)}
}

// InvalidParameter is its answer to a parameter value it does not take.
func InvalidParameter(name string) *RPCError {
	return &RPCError{http.StatusBadRequest, "InvalidParameter", fmt.Sprintf("The specified parameter %q is not valid.", name)}
}

// ActionNotFound is its answer to an action it does not know, as users of
// the real endpoints report it (for one,
// aliyun/alibabacloud-api-vscode-toolkit#193); the common error table only
// says InvalidParameter, which the gateway keeps for bad parameter values.
func ActionNotFound() *RPCError {
	return &RPCError{http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
}

// CheckRPC runs the gateway's checks of an RPC call, in its order: method
// and path, Action (known says whether the product has it), Version, the
// common parameters, Format, signature method and version, a Timestamp
// within RPCWindow of wall, the credential, the signature, then the nonce,
// checked after the signature and recorded in the same step so that only
// signed requests use nonces up (an unsigned request cannot burn a nonce a
// real client is about to send). It returns the call's parameters (the
// query merged with a form body, as far as they were read) and the caller.
// It only reads r's parameters, so whatever the input it cannot fail other
// than with an RPCError.
func CheckRPC(r *http.Request, version string, known func(action string) bool, keys *Keyring, nonces *Nonces, wall time.Time) (url.Values, Credential, *RPCError) {
	if (r.Method != http.MethodPost && r.Method != http.MethodGet) || r.URL.Path != "/" {
		return url.Values{}, Credential{}, ActionNotFound()
	}
	if err := r.ParseForm(); err != nil {
		return url.Values{}, Credential{}, &RPCError{http.StatusBadRequest, "InvalidParameter", "The request parameters could not be parsed: " + err.Error()}
	}
	p := r.Form
	switch action, v := p.Get("Action"), p.Get("Version"); {
	case action == "":
		return p, Credential{}, MissingParameter("Action")
	case !known(action):
		return p, Credential{}, ActionNotFound()
	case v == "":
		return p, Credential{}, MissingParameter("Version")
	case v != version:
		return p, Credential{}, &RPCError{http.StatusBadRequest, "InvalidVersion", "Specified parameter Version is not valid."}
	}
	for _, name := range []string{"AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Signature"} {
		if p.Get(name) == "" {
			return p, Credential{}, MissingParameter(name)
		}
	}
	// Only JSON is spoken here; the real APIs also answer XML.
	if f := p.Get("Format"); f != "" && !strings.EqualFold(f, "JSON") {
		return p, Credential{}, InvalidParameter("Format")
	}
	if p.Get("SignatureMethod") != "HMAC-SHA1" {
		return p, Credential{}, InvalidParameter("SignatureMethod")
	}
	if p.Get("SignatureVersion") != "1.0" {
		return p, Credential{}, InvalidParameter("SignatureVersion")
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	if err != nil {
		return p, Credential{}, &RPCError{http.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	if d := wall.Sub(ts); d > RPCWindow || d < -RPCWindow {
		return p, Credential{}, &RPCError{http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	cred, problem := keys.Check(p.Get("AccessKeyId"), p.Get("SecurityToken"))
	if status, code, message, ok := problem.POPError(); !ok {
		return p, Credential{}, &RPCError{status, code, message}
	}
	sts := RPCStringToSign(r.Method, p)
	if !hmac.Equal([]byte(p.Get("Signature")), []byte(RPCSignature(cred.AccessKeySecret, sts))) {
		return p, Credential{}, &RPCError{http.StatusBadRequest, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:" + sts}
	}
	if !nonces.Use(p.Get("SignatureNonce"), ts, wall) {
		return p, Credential{}, &RPCError{http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	return p, cred, nil
}
