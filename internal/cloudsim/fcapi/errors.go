package fcapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
)

// apiError is an API error answer: the HTTP status and the body's Code and
// Message (reference §1.3: {"Code","Message","RequestId"}).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// The errors this emulator answers, each in one place so that a code found to
// differ on the live service is a one-line change. The documented ones come
// from FC's error code tables (reference §1.3); the others are marked
// unverified: reference §5 says the service's answer is not determined.

// Documented codes.

func pathNotSupported(method, path string) *apiError {
	return &apiError{http.StatusBadRequest, "PathNotSupported", fmt.Sprintf("'%s' against '%s' is not supported", method, path)}
}

func missingHeader(name string) *apiError {
	return &apiError{http.StatusBadRequest, "MissingRequiredHeader", fmt.Sprintf("required HTTP header %s was not specified", name)}
}

func invalidArgument(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidArgument", fmt.Sprintf(format, args...)}
}

func entityTooLarge(limit int) *apiError {
	return &apiError{http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("payload size exceeds maximum allowed size (%d bytes)", limit)}
}

// errSignature is FC's own code (not the POP gateway's SignatureDoesNotMatch).
var errSignature = &apiError{http.StatusForbidden, "SignatureNotMatch",
	"The request signature we calculated does not match the signature you provided. Check your access key and signing method"}

func invalidAccessKeyID(id string) *apiError {
	return &apiError{http.StatusForbidden, "InvalidAccessKeyID", fmt.Sprintf("invalid access key ID '%s'", id)}
}

func accessDenied(format string, args ...any) *apiError {
	return &apiError{http.StatusForbidden, "AccessDenied", fmt.Sprintf(format, args...)}
}

// functionNotFound is FC 3.0's code and message.
func functionNotFound(name string) *apiError {
	return &apiError{http.StatusNotFound, "FunctionNotFound", fmt.Sprintf("function '%s' does not exist.", name)}
}

// Unverified codes.

// qualifierNotFound: FC 2.0's 404 codes for a missing version or alias,
// with "function" in place of "service" in the message. unverified: the FC
// 3.0 table lists no code for an unknown qualifier.
func qualifierNotFound(function, qualifier string) *apiError {
	if isVersionID(qualifier) {
		return &apiError{http.StatusNotFound, "VersionNotFound", fmt.Sprintf("version '%s' of function '%s' does not exist", qualifier, function)}
	}
	return &apiError{http.StatusNotFound, "AliasNotFound", fmt.Sprintf("alias '%s' of function '%s' does not exist", qualifier, function)}
}

// errStaleDate: x-acs-date more than maxSkew from the server's clock.
// unverified: code and status (the V3 doc gives only the 15 minutes).
var errStaleDate = &apiError{http.StatusForbidden, "RequestTimeTooSkewed",
	"the difference between the request time and the server's time is too large"}

// errNonceUsed: an x-acs-signature-nonce seen before within the window.
// unverified: the POP gateway's code for the same check.
var errNonceUsed = &apiError{http.StatusBadRequest, "SignatureNonceUsed", "the signature nonce has been used"}

// credentialError maps a keyring problem to an answer. A missing token uses
// FC's documented MissingRequiredHeader; the token codes are the POP
// gateway's. unverified: reference §5 found no FC code for either.
func credentialError(p auth.Problem, id string) *apiError {
	switch p {
	case auth.OK:
		return nil
	case auth.UnknownKey:
		return invalidAccessKeyID(id)
	case auth.MissingToken:
		return missingHeader(hSecurityToken)
	case auth.TokenExpired:
		return &apiError{http.StatusForbidden, "InvalidSecurityToken.Expired", "the security token you provided has expired"}
	case auth.TokenMalformed:
		return &apiError{http.StatusForbidden, "InvalidSecurityToken.Malformed", "the security token you provided is malformed"}
	}
	return &apiError{http.StatusForbidden, "InvalidSecurityToken.MismatchWithAccessKey", "the security token you provided does not match the access key"}
}

// internalError: the emulated function could not be run at all (the binary
// does not start, the runtime is closed). unverified: FC 3.0 lists
// InternalServerError without a status; 500 is the plausible one.
func internalError(err error) *apiError {
	return &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()}
}

// writeError answers e as FC 3.0 does: JSON {"Code","Message","RequestId"},
// which the SDK turns into a *tea.SDKError.
func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	body, _ := json.Marshal(struct {
		Code      string
		Message   string
		RequestID string `json:"RequestId"`
	}{e.code, e.message, requestID})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(hRequestID, requestID)
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}
