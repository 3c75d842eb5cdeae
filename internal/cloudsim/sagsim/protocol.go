package sagsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// The RPC protocol of Alibaba Cloud OpenAPI as the SAG endpoint speaks it (see
// /work/shared/reference/sag-api-and-sdk.md §3): parameters in the query and
// an optional form body, HMAC-SHA1 signature version 1.0, JSON answers.

const (
	apiVersion = "2018-03-13"
	// timestampLayout is the Timestamp parameter's (auth.CheckRPC checks
	// it, within auth.RPCWindow).
	timestampLayout = "2006-01-02T15:04:05Z"
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

func missingParameter(name string) *apiError { return fromGateway(auth.MissingParameter(name)) }

func invalidParameter(name string) *apiError { return fromGateway(auth.InvalidParameter(name)) }

// errActionNotFound is the gateway's answer to an action it does not know.
var errActionNotFound = fromGateway(auth.ActionNotFound())

// fromGateway is an answer of the POP gateway (auth) as this API's.
func fromGateway(e *auth.RPCError) *apiError { return &apiError{e.Status, e.Code, e.Message} }

// authenticate runs the gateway checks of a real endpoint, in its order,
// and returns the call or the error to answer. It only reads r's parameters,
// so whatever the input it cannot fail other than with an apiError.
func (s *Server) authenticate(r *http.Request) (*request, *apiError) {
	req := &request{id: newRequestID(), params: url.Values{}}
	p, cred, e := auth.CheckRPC(r, apiVersion, func(a string) bool { _, ok := actions[a]; return ok }, s.keys, &s.nonces, s.wall())
	req.params = p
	req.action, req.region = p.Get("Action"), p.Get("RegionId")
	if e != nil {
		return req, fromGateway(e)
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
