package otssim

import (
	"fmt"
	"net/http"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/golang/protobuf/proto"
)

// otsError is an error answer: the HTTP status and the protobuf Error{code,
// message} body the SDK turns into a *tablestore.OtsError.
//
// Codes, statuses and messages follow the Tablestore error code reference
// (https://www.alibabacloud.com/help/en/tablestore/developer-reference/error-codes)
// and, where it is silent, what the official Python SDK's tests assert
// against the live service. The few marked "unverified" are this emulator's
// best guess.
type otsError struct {
	status  int
	code    string
	message string
}

func (e *otsError) Error() string { return e.code + ": " + e.message }

// errorBody is the protobuf body of an error answer.
func errorBody(e *otsError) *otsprotocol.Error {
	return &otsprotocol.Error{Code: proto.String(e.code), Message: proto.String(e.message)}
}

// Error codes, as the SDKs spell them.
const (
	codeAuthFailed          = "OTSAuthFailed"
	codeParameterInvalid    = "OTSParameterInvalid"
	codeInvalidPK           = "OTSInvalidPK"
	codeObjectNotExist      = "OTSObjectNotExist"
	codeObjectAlreadyExist  = "OTSObjectAlreadyExist"
	codeConditionCheckFail  = "OTSConditionCheckFail"
	codeQuotaExhausted      = "OTSQuotaExhausted"
	codeServerBusy          = "OTSServerBusy"
	codeTimeout             = "OTSTimeout"
	codeInternalServerError = "OTSInternalServerError"
	codeMethodNotAllowed    = "OTSMethodNotAllowed"
	codeRequestBodyTooLarge = "OTSRequestBodyTooLarge"
)

func authFailed(msg string) *otsError {
	return &otsError{http.StatusForbidden, codeAuthFailed, msg}
}

func invalidParam(format string, args ...any) *otsError {
	return &otsError{http.StatusBadRequest, codeParameterInvalid, fmt.Sprintf(format, args...)}
}

func invalidPK(format string, args ...any) *otsError {
	return &otsError{http.StatusBadRequest, codeInvalidPK, fmt.Sprintf(format, args...)}
}

// notEmulated refuses a request field or action the emulator does not
// implement, rather than silently ignoring it.
func notEmulated(what string) *otsError {
	return invalidParam("otssim does not emulate %s.", what)
}

var (
	errTableNotExist = &otsError{http.StatusNotFound, codeObjectNotExist, "Requested table does not exist."}
	errTableExists   = &otsError{http.StatusConflict, codeObjectAlreadyExist, "Requested table already exists."}
	errConditionFail = &otsError{http.StatusForbidden, codeConditionCheckFail, "Condition check failed."}
	// Throttling: the data plane answers OTSServerBusy (503, documented
	// among the 5xx answers); table operations over the instance's QPS
	// answer OTSQuotaExhausted with the message the SDKs match to retry
	// (status 403 unverified: SDK tests disagree).
	errServerBusy       = &otsError{http.StatusServiceUnavailable, codeServerBusy, "Server is busy."}
	errTooFrequentDDL   = &otsError{http.StatusForbidden, codeQuotaExhausted, "Too frequent table operations."}
	errTooManyTables    = &otsError{http.StatusForbidden, codeQuotaExhausted, "Number of tables exceeded the quota."} // unverified
	errTimeout          = &otsError{http.StatusServiceUnavailable, codeTimeout, "Operation timeout."}
	errInternal         = &otsError{http.StatusInternalServerError, codeInternalServerError, "Internal server error."} // message unverified
	errMethod           = &otsError{http.StatusMethodNotAllowed, codeMethodNotAllowed, "Only POST method for requests is supported."}
	errBodyTooLarge     = &otsError{http.StatusRequestEntityTooLarge, codeRequestBodyTooLarge, "The size of POST data is too large."}
	errBadProtobuf      = invalidParam("Failed to parse the ProtoBuf message.") // message unverified
	errMissingAttrs     = invalidParam("Attribute column is missing.")
	errNoRowsBatchGet   = invalidParam("No row specified in the request of BatchGetRow.")
	errNoRowsBatchPut   = invalidParam("No row is specified in BatchWriteRow.")
	errLimitNotPositive = invalidParam("The limit must be greater than 0.")
)
