// Package stssim emulates the one STS (2015-04-01) operation a caller needs
// to learn who it is, GetCallerIdentity, as alibaba-cloud-sdk-go's
// services/sts calls it: the RPC protocol with its HMAC-SHA1 signature,
// Timestamp, nonce and security token checked as sagsim checks SAG's
// (auth.RPCStringToSign), against the cloud's keyring. sagctl asks it for
// the account id and the operator's ARN.
//
// The identity comes from the credential: an account's own key is the
// account (acs:ram::<account>:root), a RAM user's key the user
// (acs:ram::<account>:user/<name>, auth.Keyring.AddUserKey), STS
// credentials an assumed role (acs:ram::<account>:assumed-role/<role>/<session>).
//
// Not emulated: AssumeRole and the other STS operations (answered
// InvalidAction.NotFound), the XML format, role session names a caller
// chose.
package stssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// APIVersion is STS's OpenAPI version: an RPC call with it is STS's.
const APIVersion = "2015-04-01"

// Options configure a Server. Only Keyring is required.
type Options struct {
	Keyring *auth.Keyring
	// Role is the role STS credentials of the keyring stand for; default
	// "simulated-role".
	Role string
	// Wall judges the Timestamp and the nonce window; default time.Now (the
	// SDK signs with the machine's clock).
	Wall func() time.Time
}

// Call is the record of one request.
type Call struct {
	RequestID   string
	Action      string
	AccessKeyID string // as presented
	Status      int
	Code        string // "" on success
}

// Server is the emulator, an http.Handler safe for concurrent use.
type Server struct {
	keys   *auth.Keyring
	role   string
	wall   func() time.Time
	nonces auth.Nonces

	mu    sync.Mutex
	calls []Call
}

// New returns a Server. It panics if o.Keyring is nil: a programming error.
func New(o Options) *Server {
	if o.Keyring == nil {
		panic("stssim: Options.Keyring is required")
	}
	if o.Role == "" {
		o.Role = "simulated-role"
	}
	if o.Wall == nil {
		o.Wall = time.Now
	}
	return &Server{keys: o.Keyring, role: o.Role, wall: o.Wall}
}

// IsSTS reports whether r is an RPC call of STS's version, by its query (the
// SDK puts every common parameter there), so that one URL can serve STS
// beside other RPC products without reading the body.
func IsSTS(r *http.Request) bool { return r.URL.Query().Get("Version") == APIVersion }

// Calls returns every request served so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Identity is GetCallerIdentity's answer.
type Identity struct {
	IdentityType string // Account, RAMUser or AssumedRoleUser
	AccountId    string
	PrincipalId  string
	UserId       string
	Arn          string
	RoleId       string
	RequestId    string
}

// ServeHTTP answers GetCallerIdentity.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{RequestID: newRequestID()}
	id, e := s.serve(r, &call)
	var body []byte
	if e != nil {
		call.Status, call.Code = e.Status, e.Code
		body, _ = json.Marshal(struct{ RequestId, HostId, Code, Message string }{call.RequestID, "sts.aliyuncs.com", e.Code, e.Message})
	} else {
		call.Status = http.StatusOK
		id.RequestId = call.RequestID
		body, _ = json.Marshal(id)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", call.RequestID)
	w.WriteHeader(call.Status)
	_, _ = w.Write(body)
}

// serve runs the gateway's checks (auth.CheckRPC, as sagsim does) and the
// action.
func (s *Server) serve(r *http.Request, call *Call) (Identity, *auth.RPCError) {
	p, cred, e := auth.CheckRPC(r, APIVersion, func(a string) bool { return a == "GetCallerIdentity" }, s.keys, &s.nonces, s.wall())
	call.Action, call.AccessKeyID = p.Get("Action"), p.Get("AccessKeyId")
	if e != nil {
		return Identity{}, e
	}
	return s.identity(cred), nil
}

// identity is who a credential is.
func (s *Server) identity(c auth.Credential) Identity {
	acct := c.AccountID
	switch {
	case c.IsSTS():
		roleID := numericID("role/" + s.role)
		session := "sim-" + strings.ToLower(c.AccessKeyID[len(c.AccessKeyID)-8:])
		return Identity{IdentityType: "AssumedRoleUser", AccountId: acct, RoleId: roleID,
			PrincipalId: roleID + ":" + session, UserId: roleID + ":" + session,
			Arn: "acs:ram::" + acct + ":assumed-role/" + s.role + "/" + session}
	case c.User != "":
		uid := numericID("user/" + c.User)
		return Identity{IdentityType: "RAMUser", AccountId: acct, PrincipalId: uid, UserId: uid,
			Arn: "acs:ram::" + acct + ":user/" + c.User}
	}
	return Identity{IdentityType: "Account", AccountId: acct, PrincipalId: acct, UserId: acct, Arn: "acs:ram::" + acct + ":root"}
}

// numericID is a stable 16-digit id for a name, the shape of RAM's ids.
func numericID(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("%016d", h.Sum64()%1e16)
}

// newRequestID returns a RequestId shaped like the real ones.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
