package sagsim

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// The RPC protocol of Alibaba Cloud OpenAPI as the SAG endpoint speaks it (see
// /work/shared/reference/sag-api-and-sdk.md §3): parameters in the query and
// an optional form body, HMAC-SHA1 signature version 1.0, JSON answers.

const (
	apiVersion      = "2018-03-13"
	timestampLayout = "2006-01-02T15:04:05Z"
	// window is the allowed Timestamp skew (and how long a nonce is
	// remembered: auth.RPCWindow).
	window = auth.RPCWindow
)

// sagRegions are the regions with a SAG endpoint (the SDK's endpoint table
// plus the three the newer Darabonba client adds), in the SDK's order.
var sagRegions = []struct{ id, name string }{
	{"cn-shanghai", "China (Shanghai)"},
	{"cn-hongkong", "China (Hong Kong)"},
	{"ap-southeast-1", "Singapore"},
	{"ap-southeast-2", "Australia (Sydney)"},
	{"ap-southeast-3", "Malaysia (Kuala Lumpur)"},
	{"ap-southeast-5", "Indonesia (Jakarta)"},
	{"eu-central-1", "Germany (Frankfurt)"},
	{"cn-hangzhou", "China (Hangzhou)"},
	{"cn-shanghai-finance-1", "China East 2 Finance"},
	{"ap-northeast-1", "Japan (Tokyo)"},
}

// request is one authenticated API call.
type request struct {
	id      string // RequestId
	action  string
	region  string
	account string
	params  url.Values
	applied bool // set by an Update that started an upgrade
}

// apiError is an error answer: HTTP status and the body's Code and Message.
type apiError struct {
	status  int
	code    string
	message string
}

func missingParameter(name string) *apiError {
	return &apiError{http.StatusBadRequest, "MissingParameter",
		fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name)}
}

func invalidParameter(name string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameter", fmt.Sprintf("The specified parameter %q is not valid.", name)}
}

// errActionNotFound is the API gateway's answer to an action it does not
// know, as users of the real endpoints report it (for one,
// aliyun/alibabacloud-api-vscode-toolkit#193); the common error table only
// says InvalidParameter, which the gateway keeps for bad parameter values.
var errActionNotFound = &apiError{http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}

// authenticate runs the gateway checks of a real endpoint, in its order,
// and returns the call or the error to answer. It only reads r's parameters,
// so whatever the input it cannot fail other than with an apiError.
func (s *Server) authenticate(r *http.Request) (*request, *apiError) {
	req := &request{id: newRequestID(), params: url.Values{}}
	if (r.Method != http.MethodPost && r.Method != http.MethodGet) || r.URL.Path != "/" {
		return req, errActionNotFound
	}
	if err := r.ParseForm(); err != nil {
		return req, &apiError{http.StatusBadRequest, "InvalidParameter", "The request parameters could not be parsed: " + err.Error()}
	}
	req.params = r.Form // the query merged with a form body
	p := req.params
	req.action, req.region = p.Get("Action"), p.Get("RegionId")

	if req.action == "" {
		return req, missingParameter("Action")
	}
	if _, ok := actions[req.action]; !ok {
		return req, errActionNotFound
	}
	switch v := p.Get("Version"); {
	case v == "":
		return req, missingParameter("Version")
	case v != apiVersion:
		return req, &apiError{http.StatusBadRequest, "InvalidVersion", "Specified parameter Version is not valid."}
	}
	for _, name := range []string{"AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Signature"} {
		if p.Get(name) == "" {
			return req, missingParameter(name)
		}
	}
	// Only JSON is spoken here; the real API also answers XML.
	if f := p.Get("Format"); f != "" && !strings.EqualFold(f, "JSON") {
		return req, invalidParameter("Format")
	}
	if p.Get("SignatureMethod") != "HMAC-SHA1" {
		return req, invalidParameter("SignatureMethod")
	}
	if p.Get("SignatureVersion") != "1.0" {
		return req, invalidParameter("SignatureVersion")
	}
	ts, err := time.Parse(timestampLayout, p.Get("Timestamp"))
	if err != nil {
		return req, &apiError{http.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	wall := s.wall()
	if d := wall.Sub(ts); d > window || d < -window {
		return req, &apiError{http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}

	cred, problem := s.keys.Check(p.Get("AccessKeyId"), p.Get("SecurityToken"))
	if e := credentialError(problem); e != nil {
		return req, e
	}
	sts := auth.RPCStringToSign(r.Method, p)
	want := auth.RPCSignature(cred.AccessKeySecret, sts)
	if !hmac.Equal([]byte(p.Get("Signature")), []byte(want)) {
		return req, &apiError{http.StatusBadRequest, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:" + sts}
	}
	// The nonce is checked after the signature, and in the same step recorded,
	// so that only signed requests use nonces up: an unsigned request cannot
	// burn a nonce that a real client is about to send.
	if !s.nonces.Use(p.Get("SignatureNonce"), ts, wall) {
		return req, &apiError{http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	req.account = cred.AccountID

	if req.region == "" {
		return req, missingParameter("RegionId")
	}
	// Through the SDK's own endpoint rule an unknown region never gets this
	// far: smartag.<region>.aliyuncs.com does not resolve, and the caller sees
	// a DNS error. Only a client pointed at one endpoint (SAG_ENDPOINT, these
	// emulators) can name a region the service lacks; it gets the common
	// OpenAPI code (unverified for SAG: no captured answer exists).
	if !s.regions[req.region] {
		return req, &apiError{http.StatusNotFound, "InvalidRegionId.NotFound", "The specified RegionId does not exist in our records."}
	}
	return req, nil
}

// credentialError maps a keyring problem to the OpenAPI error (the POP
// gateway's, which every RPC product shares).
func credentialError(p auth.Problem) *apiError {
	status, code, message, ok := p.POPError()
	if ok {
		return nil
	}
	return &apiError{status, code, message}
}

// newRequestID returns a RequestId shaped like the real ones (an upper-case UUID).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// errorBody is the JSON of every error answer. RequestId and Code must be
// JSON strings: the SDK type-asserts them and panics on anything else.
type errorBody struct {
	RequestId string
	HostId    string
	Code      string
	Message   string
	Recommend string
}

func hostID(region string, known bool) string {
	if region == "" || !known {
		return "smartag.aliyuncs.com"
	}
	return "smartag." + region + ".aliyuncs.com"
}

// encode marshals an answer. The answers are plain structs of strings,
// numbers and slices, so Marshal cannot fail; if it ever did, the client gets
// an InternalError rather than a broken body.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"RequestId":"","Code":"InternalError","Message":"The request processing has failed due to some unknown error."}`)
	}
	return b
}

func writeJSON(w http.ResponseWriter, requestID string, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
