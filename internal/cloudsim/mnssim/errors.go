package mnssim

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

// apiError is an MNS error answer: HTTP status, Code and Message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// errorXML is the body of every error answer.
type errorXML struct {
	XMLName   xml.Name `xml:"http://mns.aliyuncs.com/doc/v1/ Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
}

// Codes and statuses follow the MNS error code table
// (https://www.alibabacloud.com/help/doc-detail/27501.html) unless noted.

func errInvalidArgument(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidArgument", msg}
}

func errRange(element string, low, high int64) *apiError {
	return errInvalidArgument(fmt.Sprintf("The value of %s should between %d and %d", element, low, high))
}

func errMalformedXML() *apiError {
	return &apiError{http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed."}
}

func errInvalidRequestURL(r *http.Request) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidRequestURL",
		fmt.Sprintf("Http request URL format invalid (mnssim does not emulate %s %s).", r.Method, r.URL.Path)}
}

func errQueueNotExist() *apiError {
	return &apiError{http.StatusNotFound, "QueueNotExist", "The queue name you provided is not exist."}
}

func errTopicNotExist() *apiError {
	return &apiError{http.StatusNotFound, "TopicNotExist", "The topic name you provided is not exist."}
}

func errMessageNotExist() *apiError {
	return &apiError{http.StatusNotFound, "MessageNotExist", "Message not exist."}
}

func errReceiptHandle(handle string) *apiError {
	return &apiError{http.StatusBadRequest, "ReceiptHandleError",
		fmt.Sprintf("The receipt handle you provided is not valid: %q.", handle)}
}

// errBodyTooLong: the code is the one in the reference's batch example;
// production's exact code and status for an oversized body are unverified.
func errBodyTooLong(size, limit int) *apiError {
	return &apiError{http.StatusBadRequest, "MessageBodyTooLong",
		fmt.Sprintf("The message body is %d bytes, more than the MaximumMessageSize %d.", size, limit)}
}
