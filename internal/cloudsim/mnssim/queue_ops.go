package mnssim

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
)

// Request bodies. Optional elements are pointers so "absent" differs from 0:
// the SDK always sends <Priority>, and 0 must be refused, not defaulted.
type sendEntryXML struct {
	MessageBody  *string `xml:"MessageBody"`
	DelaySeconds *string `xml:"DelaySeconds"`
	Priority     *string `xml:"Priority"`
}

type sendRequestXML struct {
	XMLName xml.Name `xml:"Message"`
	sendEntryXML
}

type batchSendRequestXML struct {
	XMLName  xml.Name       `xml:"Messages"`
	Messages []sendEntryXML `xml:"Message"`
}

type receiptHandlesXML struct {
	XMLName xml.Name `xml:"ReceiptHandles"`
	Handles []string `xml:"ReceiptHandle"`
}

type createQueueXML struct {
	XMLName                xml.Name `xml:"Queue"`
	DelaySeconds           *string  `xml:"DelaySeconds"`
	MaximumMessageSize     *string  `xml:"MaximumMessageSize"`
	MessageRetentionPeriod *string  `xml:"MessageRetentionPeriod"`
	VisibilityTimeout      *string  `xml:"VisibilityTimeout"`
	PollingWaitSeconds     *string  `xml:"PollingWaitSeconds"`
}

// Response bodies. Roots carry MNS's namespace; the SDK ignores it.
type sentXML struct {
	XMLName        xml.Name `xml:"http://mns.aliyuncs.com/doc/v1/ Message"`
	MessageID      string   `xml:"MessageId"`
	MessageBodyMD5 string   `xml:"MessageBodyMD5"`
	ReceiptHandle  string   `xml:"ReceiptHandle,omitempty"`
}

type batchSentXML struct {
	XMLName xml.Name         `xml:"http://mns.aliyuncs.com/doc/v1/ Messages"`
	Entries []batchSentEntry `xml:"Message"`
}

type batchSentEntry struct {
	ErrorCode      string `xml:"ErrorCode,omitempty"`
	ErrorMessage   string `xml:"ErrorMessage,omitempty"`
	MessageID      string `xml:"MessageId,omitempty"`
	MessageBodyMD5 string `xml:"MessageBodyMD5,omitempty"`
}

type receivedXML struct {
	XMLName          xml.Name
	MessageID        string `xml:"MessageId"`
	ReceiptHandle    string `xml:"ReceiptHandle,omitempty"`
	MessageBodyMD5   string `xml:"MessageBodyMD5"`
	MessageBody      string `xml:"MessageBody"`
	EnqueueTime      int64  `xml:"EnqueueTime"`
	NextVisibleTime  int64  `xml:"NextVisibleTime,omitempty"`
	FirstDequeueTime int64  `xml:"FirstDequeueTime"`
	DequeueCount     int64  `xml:"DequeueCount"`
	Priority         int64  `xml:"Priority"`
}

type batchReceivedXML struct {
	XMLName  xml.Name      `xml:"http://mns.aliyuncs.com/doc/v1/ Messages"`
	Messages []receivedXML `xml:"Message"`
}

type deleteErrorsXML struct {
	XMLName xml.Name           `xml:"http://mns.aliyuncs.com/doc/v1/ Errors"`
	Errors  []deleteErrorEntry `xml:"Error"`
}

type deleteErrorEntry struct {
	ErrorCode     string `xml:"ErrorCode"`
	ErrorMessage  string `xml:"ErrorMessage"`
	ReceiptHandle string `xml:"ReceiptHandle"`
}

type visibilityXML struct {
	XMLName         xml.Name `xml:"http://mns.aliyuncs.com/doc/v1/ ChangeVisibility"`
	ReceiptHandle   string   `xml:"ReceiptHandle"`
	NextVisibleTime int64    `xml:"NextVisibleTime"`
}

// validSend is a send entry that passed validation.
type validSend struct {
	body     string
	priority int
	delay    time.Duration
}

func validateSend(q *queue, e sendEntryXML) (validSend, *apiError) {
	if e.MessageBody == nil || *e.MessageBody == "" {
		// Production's exact answer to an empty body is unverified.
		return validSend{}, errInvalidArgument("The MessageBody should not be empty.")
	}
	if size := len(*e.MessageBody); size > q.opts.MaximumMessageSize {
		return validSend{}, errBodyTooLong(size, q.opts.MaximumMessageSize)
	}
	priority, err := parseInt(e.Priority, "Priority", defaultPriority, 1, 16)
	if err != nil {
		return validSend{}, err
	}
	delay, err := parseInt(e.DelaySeconds, "DelaySeconds", int64(q.opts.DelaySeconds), 0, maxDelaySeconds)
	if err != nil {
		return validSend{}, err
	}
	return validSend{*e.MessageBody, int(priority), time.Duration(delay) * time.Second}, nil
}

func (s *Server) sendMessage(r *request) reply {
	var in sendRequestXML
	if xml.Unmarshal(r.body, &in) != nil {
		return fail(errMalformedXML())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(r.name, now)
	if err != nil {
		return fail(err)
	}
	v, err := validateSend(q, in.sendEntryXML)
	if err != nil {
		return fail(err)
	}
	m := s.enqueue(q, v.body, v.priority, v.delay, now)
	return ok(http.StatusCreated, sentXML{MessageID: m.id, MessageBodyMD5: m.bodyMD5, ReceiptHandle: m.handle})
}

func (s *Server) batchSendMessage(r *request) reply {
	var in batchSendRequestXML
	if xml.Unmarshal(r.body, &in) != nil {
		return fail(errMalformedXML())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(r.name, now)
	if err != nil {
		return fail(err)
	}
	if n := len(in.Messages); n < 1 || n > maxBatch {
		return fail(errInvalidArgument(fmt.Sprintf("The number of messages should between 1 and %d, not %d.", maxBatch, n)))
	}
	total := 0
	for _, e := range in.Messages {
		if e.MessageBody != nil {
			total += len(*e.MessageBody)
		}
	}
	if total > maxBatchBytes {
		return fail(errInvalidArgument(fmt.Sprintf("The total size of the messages is %d bytes, more than %d.", total, maxBatchBytes)))
	}

	// Valid entries are stored even when others fail, as MNS does.
	out := batchSentXML{}
	var failed []string
	for _, e := range in.Messages {
		v, err := validateSend(q, e)
		if err != nil {
			failed = append(failed, err.code)
			out.Entries = append(out.Entries, batchSentEntry{ErrorCode: err.code, ErrorMessage: err.message})
			continue
		}
		m := s.enqueue(q, v.body, v.priority, v.delay, now)
		out.Entries = append(out.Entries, batchSentEntry{MessageID: m.id, MessageBodyMD5: m.bodyMD5})
	}
	if len(failed) > 0 {
		// Any non-2xx status makes the SDK decode the entries and return
		// ERR_MNS_BATCH_OP_FAIL; 500 is the reference's guess for production.
		return reply{status: http.StatusInternalServerError, body: out, failedEntries: failed}
	}
	return ok(http.StatusCreated, out)
}

// receiveMessages serves receive and peek, single and batch. A receive with
// nothing visible waits up to waitseconds (capped by MaxPollWait of real
// time), waking when a message is sent or the simulated clock moves.
func (s *Server) receiveMessages(r *request) reply {
	batch := r.op == opBatchReceiveMessage || r.op == opBatchPeekMessage
	peek := r.op == opPeekMessage || r.op == opBatchPeekMessage

	count := int64(1)
	if batch {
		v, _ := r.param("numOfMessages")
		var err *apiError
		if count, err = parseInt(&v, "numOfMessages", maxBatch, 1, maxBatch); err != nil {
			return fail(err)
		}
	}
	s.mu.Lock()
	q, err := s.lookupQueue(r.name, s.clock.Now())
	var defaultWait int64
	if q != nil {
		defaultWait = int64(q.opts.PollingWaitSeconds)
	}
	s.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	waitParam, given := r.param("waitseconds")
	var waitPtr *string
	if given {
		waitPtr = &waitParam
	}
	waitSeconds, err := parseInt(waitPtr, "waitseconds", defaultWait, 0, maxPollingWait)
	if err != nil {
		return fail(err)
	}
	if peek {
		waitSeconds = 0 // peeking never long-polls
	}

	got := s.pollQueue(r, int(count), time.Duration(waitSeconds)*time.Second, peek)
	if len(got) == 0 {
		return fail(errMessageNotExist())
	}
	if !batch {
		got[0].XMLName = xml.Name{Space: mnsNamespace, Local: "Message"}
		return ok(http.StatusOK, got[0])
	}
	return ok(http.StatusOK, batchReceivedXML{Messages: got})
}

const mnsNamespace = "http://mns.aliyuncs.com/doc/v1/"

// pollQueue takes (or, peeking, looks at) up to n visible messages, waiting
// up to wait for one to show up.
func (s *Server) pollQueue(r *request, n int, wait time.Duration, peek bool) []receivedXML {
	realWait := min(wait, s.maxPollWait)
	giveUp := time.NewTimer(realWait)
	defer giveUp.Stop()
	var simDeadline time.Time

	for {
		// Take the clock's channel before looking, so a move in between wakes us.
		clockMoved := clock.Changed(s.clock)
		s.mu.Lock()
		now := s.clock.Now()
		if simDeadline.IsZero() {
			simDeadline = now.Add(wait)
		}
		q, err := s.lookupQueue(r.name, now)
		if err != nil { // queues are never deleted, but stay safe
			s.mu.Unlock()
			return nil
		}
		var got []receivedXML
		for _, m := range q.visible(now, n) {
			if !peek {
				m.dequeue(now, time.Duration(q.opts.VisibilityTimeout)*time.Second)
			}
			got = append(got, receivedEntry(m, peek))
		}
		sent := q.wake
		nextVisible := q.nextVisibleAfter(now) // zero when none: Sub is then negative
		s.mu.Unlock()

		if len(got) > 0 || wait <= 0 || !now.Before(simDeadline) {
			return got
		}
		if !waitForChange(r, sent, clockMoved, nextVisible.Sub(now), giveUp.C) {
			return nil
		}
	}
}

// waitForChange blocks until a message is sent, the clock moves, or the
// next invisible message should have shown (untilShows > 0). It reports
// false when the poll should give up instead.
func waitForChange(r *request, sent, clockMoved <-chan struct{}, untilShows time.Duration, giveUp <-chan time.Time) bool {
	// A clock that cannot signal its moves (clock.Real) needs a timer for
	// the next delayed or invisible message to show up.
	var shows <-chan time.Time
	if clockMoved == nil && untilShows > 0 {
		t := time.NewTimer(untilShows)
		defer t.Stop()
		shows = t.C
	}
	select {
	case <-sent:
	case <-clockMoved:
	case <-shows:
	case <-giveUp:
		return false
	case <-r.http.Context().Done():
		return false
	}
	return true
}

func receivedEntry(m *message, peek bool) receivedXML {
	e := receivedXML{
		XMLName:          xml.Name{Local: "Message"},
		MessageID:        m.id,
		MessageBodyMD5:   m.bodyMD5,
		MessageBody:      m.body,
		EnqueueTime:      m.enqueued.UnixMilli(),
		FirstDequeueTime: epochMillis(m.firstDequeue),
		DequeueCount:     int64(m.dequeueCount),
		Priority:         int64(m.priority),
	}
	if !peek {
		e.ReceiptHandle = m.handle
		e.NextVisibleTime = m.visibleAt.UnixMilli()
	}
	return e
}

func epochMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (s *Server) deleteMessage(r *request) reply {
	handle, _ := r.param("ReceiptHandle")
	if handle == "" {
		return fail(&apiError{http.StatusBadRequest, "MissingReceiptHandle", "ReceiptHandle is required."})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(r.name, now)
	if err != nil {
		return fail(err)
	}
	m, err := q.byHandle(handle, now)
	if err != nil {
		return fail(err)
	}
	delete(q.messages, m.seq)
	return ok(http.StatusNoContent, nil)
}

func (s *Server) batchDeleteMessage(r *request) reply {
	var in receiptHandlesXML
	if xml.Unmarshal(r.body, &in) != nil {
		return fail(errMalformedXML())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(r.name, now)
	if err != nil {
		return fail(err)
	}
	if n := len(in.Handles); n < 1 || n > maxBatch {
		return fail(errInvalidArgument(fmt.Sprintf("The number of receipt handles should between 1 and %d, not %d.", maxBatch, n)))
	}
	out := deleteErrorsXML{}
	var failed []string
	for _, h := range in.Handles {
		m, err := q.byHandle(h, now)
		if err != nil {
			failed = append(failed, err.code)
			out.Errors = append(out.Errors, deleteErrorEntry{ErrorCode: err.code, ErrorMessage: err.message, ReceiptHandle: h})
			continue
		}
		delete(q.messages, m.seq)
	}
	if len(failed) > 0 {
		// The SDK decodes <Errors> on any non-2xx status; 404 is unverified.
		return reply{status: http.StatusNotFound, body: out, failedEntries: failed}
	}
	return ok(http.StatusNoContent, nil)
}

func (s *Server) changeVisibility(r *request) reply {
	handle, _ := r.param("ReceiptHandle")
	if handle == "" {
		return fail(&apiError{http.StatusBadRequest, "MissingReceiptHandle", "ReceiptHandle is required."})
	}
	timeout, given := r.param("VisibilityTimeout")
	if !given {
		return fail(&apiError{http.StatusBadRequest, "MissingVisibilityTimeout", "VisibilityTimeout is required."})
	}
	seconds, err := parseInt(&timeout, "VisibilityTimeout", 0, 1, maxVisibility)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(r.name, now)
	if err != nil {
		return fail(err)
	}
	m, err := q.byHandle(handle, now)
	if err != nil {
		return fail(err)
	}
	m.visibleAt = now.Add(time.Duration(seconds) * time.Second)
	m.newHandle()
	return ok(http.StatusOK, visibilityXML{ReceiptHandle: m.handle, NextVisibleTime: m.visibleAt.UnixMilli()})
}

// createQueueHTTP serves PUT /queues/{name}: 201 when created, 204 when it
// exists with the same attributes, 409 QueueAlreadyExist otherwise.
func (s *Server) createQueueHTTP(r *request) reply {
	var in createQueueXML
	if len(r.body) > 0 && xml.Unmarshal(r.body, &in) != nil {
		return fail(errMalformedXML())
	}
	var o QueueOptions
	fields := []struct {
		v      *string
		name   string
		target *int
	}{
		{in.DelaySeconds, "DelaySeconds", &o.DelaySeconds},
		{in.MaximumMessageSize, "MaximumMessageSize", &o.MaximumMessageSize},
		{in.MessageRetentionPeriod, "MessageRetentionPeriod", &o.MessageRetentionPeriod},
		{in.VisibilityTimeout, "VisibilityTimeout", &o.VisibilityTimeout},
		{in.PollingWaitSeconds, "PollingWaitSeconds", &o.PollingWaitSeconds},
	}
	for _, f := range fields {
		n, err := parseInt(f.v, f.name, 0, 0, 1<<31-1)
		if err != nil {
			return fail(err)
		}
		*f.target = int(n)
	}
	created, err := s.createQueue(r.name, o)
	switch {
	case err != nil:
		return fail(err)
	case created:
		return ok(http.StatusCreated, nil)
	}
	return ok(http.StatusNoContent, nil)
}
