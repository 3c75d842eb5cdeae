package mnssim_test

import (
	"strings"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

func TestSendReceiveDeleteRoundTrip(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	// Quotes, markup and a newline survive the XML escaping both ways.
	body := "{\"kind\":\"sweep\",\"note\":\"<a & b>\"}\n"

	sent := send(t, q, body)
	if sent.MessageId == "" || sent.MessageBodyMD5 != upperMD5(body) || sent.ReceiptHandle != "" {
		t.Fatalf("send response = %+v, want an id, MD5 %s and no handle", sent, upperMD5(body))
	}
	if sent.RequestId == "" || sent.Code != "201" {
		t.Errorf("send base response = %+v, want a request id and code 201", sent.BaseResponse)
	}

	got, err := receive(q, 1)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	want := ali_mns.MessageReceiveResponse{
		MessageId:        sent.MessageId,
		ReceiptHandle:    got.ReceiptHandle,
		MessageBodyMD5:   upperMD5(body),
		MessageBody:      body,
		EnqueueTime:      ms(start),
		NextVisibleTime:  ms(start.Add(30 * time.Second)),
		FirstDequeueTime: ms(start),
		DequeueCount:     1,
		Priority:         8,
	}
	got.MessageResponse = ali_mns.MessageResponse{}
	if got != want {
		t.Errorf("received\n%+v\nwant\n%+v", got, want)
	}
	if !strings.HasPrefix(got.ReceiptHandle, "1-") {
		t.Errorf("receipt handle %q does not look like MNS's", got.ReceiptHandle)
	}

	if err := q.DeleteMessage(got.ReceiptHandle); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if n := len(e.mns.Messages("work")); n != 0 {
		t.Errorf("%d messages left after delete", n)
	}
	if err := q.DeleteMessage(got.ReceiptHandle); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Errorf("second delete with the same handle: %v, want MessageNotExist", err)
	}
	if _, err := receive(q); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Errorf("receive on an empty queue: %v, want MessageNotExist", err)
	}

	calls := e.mns.Calls()
	if calls["SendMessage"] != 1 || calls["ReceiveMessage"] != 2 || calls["DeleteMessage"] != 2 {
		t.Errorf("Calls() = %v", calls)
	}
	if f := e.mns.Failures(); f["MessageNotExist"] != 2 {
		t.Errorf("Failures() = %v, want 2 MessageNotExist", f)
	}
}

func TestBatchSendReceiveDeleteInPriorityOrder(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	sent, err := q.BatchSendMessage(
		ali_mns.MessageSendRequest{MessageBody: "low", Priority: 16},
		ali_mns.MessageSendRequest{MessageBody: "normal", Priority: 8},
		ali_mns.MessageSendRequest{MessageBody: "urgent", Priority: 1},
	)
	if err != nil {
		t.Fatalf("BatchSendMessage: %v", err)
	}
	if len(sent.Messages) != 3 || sent.Messages[2].MessageBodyMD5 != upperMD5("urgent") || sent.Messages[0].ErrorCode != "" {
		t.Fatalf("batch send response = %+v", sent.Messages)
	}

	got, err := batchReceive(q, 16, 1)
	if err != nil {
		t.Fatalf("BatchReceiveMessage: %v", err)
	}
	var bodies []string
	var handles []string
	for _, m := range got.Messages {
		bodies = append(bodies, m.MessageBody)
		handles = append(handles, m.ReceiptHandle)
		if m.DequeueCount != 1 || m.ReceiptHandle == "" {
			t.Errorf("received %+v, want DequeueCount 1 and a handle", m)
		}
	}
	if strings.Join(bodies, ",") != "urgent,normal,low" {
		t.Errorf("received %v, want priority order urgent,normal,low", bodies)
	}

	// One handle is deleted twice: the batch reports it and deletes the rest.
	failed, err := q.BatchDeleteMessage(handles[0], handles[0], handles[1], handles[2])
	if !ali_mns.ERR_MNS_BATCH_OP_FAIL.IsEqual(err) {
		t.Fatalf("BatchDeleteMessage with a used handle: %v, want ERR_MNS_BATCH_OP_FAIL", err)
	}
	if len(failed.FailedMessages) != 1 || failed.FailedMessages[0].ErrorCode != "MessageNotExist" ||
		failed.FailedMessages[0].ReceiptHandle != handles[0] {
		t.Errorf("failed entries = %+v", failed.FailedMessages)
	}
	if n := len(e.mns.Messages("work")); n != 0 {
		t.Errorf("%d messages left after batch delete", n)
	}
}

func TestBatchSendPartialFailure(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("small", mnssim.QueueOptions{MaximumMessageSize: 1024})
	resp, err := q.BatchSendMessage(
		ali_mns.MessageSendRequest{MessageBody: "first", Priority: 8},
		ali_mns.MessageSendRequest{MessageBody: strings.Repeat("x", 2000), Priority: 8},
		ali_mns.MessageSendRequest{MessageBody: "third", Priority: 0},
		ali_mns.MessageSendRequest{MessageBody: "fourth", Priority: 8},
	)
	if !ali_mns.ERR_MNS_BATCH_OP_FAIL.IsEqual(err) {
		t.Fatalf("BatchSendMessage: %v, want ERR_MNS_BATCH_OP_FAIL", err)
	}
	if len(resp.Messages) != 4 {
		t.Fatalf("got %d entries, want 4: %+v", len(resp.Messages), resp.Messages)
	}
	for i, wantCode := range []string{"", "MessageBodyTooLong", "InvalidArgument", ""} {
		entry := resp.Messages[i]
		if entry.ErrorCode != wantCode || (wantCode == "") != (entry.MessageId != "") {
			t.Errorf("entry %d = %+v, want error code %q", i, entry, wantCode)
		}
	}
	stored := e.mns.Messages("small")
	if len(stored) != 2 || stored[0].Body != "first" || stored[1].Body != "fourth" {
		t.Errorf("stored %+v, want first and fourth", stored)
	}
	if f := e.mns.Failures(); f["MessageBodyTooLong"] != 1 || f["InvalidArgument"] != 1 {
		t.Errorf("Failures() = %v", f)
	}

	// Whole-request problems come back as a plain error, not per entry.
	var tooMany []ali_mns.MessageSendRequest
	for range 17 {
		tooMany = append(tooMany, ali_mns.MessageSendRequest{MessageBody: "m", Priority: 8})
	}
	if _, err := q.BatchSendMessage(tooMany...); !ali_mns.ERR_MNS_INVALID_ARGUMENT.IsEqual(err) {
		t.Errorf("17 messages in a batch: %v, want InvalidArgument", err)
	}
}

func TestPriorityZeroRejected(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	_, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "forgot the priority"})
	if !ali_mns.ERR_MNS_INVALID_ARGUMENT.IsEqual(err) {
		t.Fatalf("Priority 0: %v, want ERR_MNS_INVALID_ARGUMENT", err)
	}
	if !strings.Contains(err.Error(), "The value of Priority should between 1 and 16") {
		t.Errorf("error text %q lacks MNS's message", err)
	}
	if n := len(e.mns.Messages("work")); n != 0 {
		t.Errorf("a refused message was stored (%d messages)", n)
	}
}

func TestLongPollWokenBySend(t *testing.T) {
	e := newEnv(t)
	e.createQueue("work", mnssim.QueueOptions{})

	type result struct {
		msg ali_mns.MessageReceiveResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Its own queue object: the SDK's QPS monitor is not goroutine-safe.
		m, err := receive(ali_mns.NewMNSQueue("work", e.client), 30)
		done <- result{m, err}
	}()
	for e.mns.Calls()["ReceiveMessage"] == 0 {
		time.Sleep(time.Millisecond)
	}
	send(t, ali_mns.NewMNSQueue("work", e.client), "wake up")

	// Without the wake-up the poll would end empty after MaxPollWait.
	r := <-done
	if r.err != nil || r.msg.MessageBody != "wake up" {
		t.Fatalf("long poll returned %+v, %v; want the sent message", r.msg, r.err)
	}
}

func TestBatchLongPollWokenBySend(t *testing.T) {
	e := newEnv(t)
	e.createQueue("work", mnssim.QueueOptions{})

	type result struct {
		batch ali_mns.BatchMessageReceiveResponse
		err   error
	}
	done := make(chan result, 1)
	go func() {
		b, err := batchReceive(ali_mns.NewMNSQueue("work", e.client), 16, 30)
		done <- result{b, err}
	}()
	for e.mns.Calls()["BatchReceiveMessage"] == 0 {
		time.Sleep(time.Millisecond)
	}
	// The poll is waiting on an empty queue; a send must end it at once
	// rather than when the poll gives up empty (MaxPollWait).
	send(t, ali_mns.NewMNSQueue("work", e.client), "wake up")

	select {
	case r := <-done:
		if r.err != nil || len(r.batch.Messages) != 1 || r.batch.Messages[0].MessageBody != "wake up" {
			t.Fatalf("batch long poll returned %+v, %v; want the one sent message", r.batch, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch long poll was not woken by the send")
	}
}

func TestDelaySecondsFollowsTheClock(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	sent, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "later", DelaySeconds: 60, Priority: 8})
	if err != nil {
		t.Fatal(err)
	}
	if sent.ReceiptHandle == "" {
		t.Errorf("a delayed message's send response has no receipt handle")
	}
	if _, err := receive(q); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Fatalf("receive before the delay: %v, want MessageNotExist", err)
	}
	state := e.mns.Messages("work")
	if len(state) != 1 || state[0].Visible || !state[0].NextVisibleTime.Equal(start.Add(time.Minute)) {
		t.Fatalf("Messages() = %+v, want one invisible message until +60s", state)
	}

	e.clock.Advance(59 * time.Second)
	if _, err := receive(q); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Fatalf("receive at +59s: %v, want MessageNotExist", err)
	}

	// A long poll that is waiting when the clock reaches the delay gets it.
	done := make(chan error, 1)
	var got ali_mns.MessageReceiveResponse
	go func() {
		var err error
		got, err = receive(ali_mns.NewMNSQueue("work", e.client), 30)
		done <- err
	}()
	for e.mns.Calls()["ReceiveMessage"] < 3 {
		time.Sleep(time.Millisecond)
	}
	e.clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("long poll across the delay: %v", err)
	}
	if got.MessageBody != "later" || got.EnqueueTime != ms(start) || got.FirstDequeueTime != ms(start.Add(time.Minute)) {
		t.Errorf("received %+v", got)
	}
}

func TestVisibilityTimeoutRedelivers(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{VisibilityTimeout: 30})
	send(t, q, "job")

	first, err := receive(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := receive(q); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Fatalf("receive while invisible: %v, want MessageNotExist", err)
	}

	e.clock.Advance(30 * time.Second)
	second, err := receive(q, 1)
	if err != nil {
		t.Fatalf("receive after the visibility timeout: %v", err)
	}
	if second.MessageId != first.MessageId || second.DequeueCount != 2 {
		t.Errorf("redelivery = %+v, want the same message with DequeueCount 2", second)
	}
	if second.ReceiptHandle == first.ReceiptHandle {
		t.Errorf("redelivery kept receipt handle %q", first.ReceiptHandle)
	}
	if second.FirstDequeueTime != ms(start) || second.NextVisibleTime != ms(start.Add(60*time.Second)) {
		t.Errorf("redelivery times = first %d next %d", second.FirstDequeueTime, second.NextVisibleTime)
	}
	if err := q.DeleteMessage(first.ReceiptHandle); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Errorf("delete with the first, stale handle: %v, want MessageNotExist", err)
	}
	if err := q.DeleteMessage(second.ReceiptHandle); err != nil {
		t.Errorf("delete with the current handle: %v", err)
	}
}

func TestChangeMessageVisibility(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{VisibilityTimeout: 30})
	send(t, q, "slow job")
	got, err := receive(q, 1)
	if err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(10 * time.Second)
	changed, err := q.ChangeMessageVisibility(got.ReceiptHandle, 100)
	if err != nil {
		t.Fatalf("ChangeMessageVisibility: %v", err)
	}
	if changed.ReceiptHandle == "" || changed.ReceiptHandle == got.ReceiptHandle {
		t.Errorf("new handle %q, want one different from %q", changed.ReceiptHandle, got.ReceiptHandle)
	}
	if want := ms(start.Add(110 * time.Second)); changed.NextVisibleTime != want {
		t.Errorf("NextVisibleTime = %d, want %d (counted from the call)", changed.NextVisibleTime, want)
	}
	if err := q.DeleteMessage(got.ReceiptHandle); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Errorf("delete with the replaced handle: %v, want MessageNotExist", err)
	}

	e.clock.Advance(30 * time.Second) // past the original timeout, not the new one
	if _, err := receive(q); !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
		t.Errorf("receive at +40s: %v, want the message still invisible", err)
	}
	if _, err := q.ChangeMessageVisibility("not-a-handle", 10); !ali_mns.ERR_MNS_RECEIPT_HANDLE_ERROR.IsEqual(err) {
		t.Errorf("malformed handle: %v, want ReceiptHandleError", err)
	}
	if _, err := q.ChangeMessageVisibility(changed.ReceiptHandle, 0); !ali_mns.ERR_MNS_INVALID_ARGUMENT.IsEqual(err) {
		t.Errorf("VisibilityTimeout 0: %v, want InvalidArgument", err)
	}
	if err := q.DeleteMessage(changed.ReceiptHandle); err != nil {
		t.Errorf("delete with the new handle: %v", err)
	}
}

func TestPeekLeavesMessagesAlone(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	send(t, q, "look")
	rc := make(chan ali_mns.MessageReceiveResponse, 1)
	ec := make(chan error, 1)
	q.PeekMessage(rc, ec)
	select {
	case m := <-rc:
		if m.MessageBody != "look" || m.ReceiptHandle != "" || m.DequeueCount != 0 {
			t.Errorf("peeked %+v", m)
		}
	case err := <-ec:
		t.Fatalf("PeekMessage: %v", err)
	}
	if got, err := receive(q, 1); err != nil || got.DequeueCount != 1 {
		t.Errorf("receive after peek: %+v, %v; want DequeueCount 1", got, err)
	}
}

func TestQueueAndTopicNotExist(t *testing.T) {
	e := newEnv(t)
	q := ali_mns.NewMNSQueue("nope", e.client)
	if _, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "x", Priority: 8}); !ali_mns.ERR_MNS_QUEUE_NOT_EXIST.IsEqual(err) {
		t.Errorf("SendMessage: %v, want QueueNotExist", err)
	}
	if _, err := q.BatchSendMessage(ali_mns.MessageSendRequest{MessageBody: "x", Priority: 8}); !ali_mns.ERR_MNS_QUEUE_NOT_EXIST.IsEqual(err) {
		t.Errorf("BatchSendMessage: %v, want QueueNotExist", err)
	}
	if _, err := receive(q, 1); !ali_mns.ERR_MNS_QUEUE_NOT_EXIST.IsEqual(err) {
		t.Errorf("ReceiveMessage: %v, want QueueNotExist", err)
	}
	topic := ali_mns.NewMNSTopic("nope", e.client)
	if _, err := topic.PublishMessage(ali_mns.MessagePublishRequest{MessageBody: "x"}); !ali_mns.ERR_MNS_TOPIC_NOT_EXIST.IsEqual(err) {
		t.Errorf("PublishMessage: %v, want TopicNotExist", err)
	}
}

func TestCreateQueueThroughTheSDK(t *testing.T) {
	e := newEnv(t)
	m := ali_mns.NewMNSQueueManager(e.client)
	if err := m.CreateQueue("made", 0, 2048, 3600, 60, 0, 0); err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if err := m.CreateQueue("made", 0, 2048, 3600, 60, 0, 0); !ali_mns.ERR_MNS_QUEUE_ALREADY_EXIST_AND_HAVE_SAME_ATTR.IsEqual(err) {
		t.Errorf("same attributes again: %v, want ERR_MNS_QUEUE_ALREADY_EXIST_AND_HAVE_SAME_ATTR", err)
	}
	if err := m.CreateQueue("made", 0, 4096, 3600, 60, 0, 0); !ali_mns.ERR_MNS_QUEUE_ALREADY_EXIST.IsEqual(err) {
		t.Errorf("other attributes: %v, want QueueAlreadyExist", err)
	}
	q := ali_mns.NewMNSQueue("made", e.client)
	send(t, q, "hello")
	got, err := receive(q, 1)
	if err != nil || got.NextVisibleTime != ms(start.Add(60*time.Second)) {
		t.Errorf("receive = %+v, %v; want the queue's 60 s visibility timeout", got, err)
	}
}

func TestTakeReceivesAndDeletes(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})
	for _, p := range []int64{8, 2, 8} {
		if _, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "p" + string(rune('0'+p)), Priority: p}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.mns.Take("work", 2)
	if len(got) != 2 || got[0].Body != "p2" || got[1].Body != "p8" || got[0].DequeueCount != 1 {
		t.Fatalf("Take(2) = %+v", got)
	}
	if left := e.mns.Messages("work"); len(left) != 1 || left[0].MessageID == got[1].MessageID {
		t.Errorf("left %+v, want the other p8", left)
	}
	if got := e.mns.Take("nope", 16); got != nil {
		t.Errorf("Take on an unknown queue = %+v", got)
	}
}

func TestRetentionDropsOldMessages(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("short", mnssim.QueueOptions{MessageRetentionPeriod: 60})
	send(t, q, "old")
	e.clock.Advance(30 * time.Second)
	send(t, q, "new")
	e.clock.Advance(30 * time.Second)
	if got := bodies(e.mns.Messages("short")); len(got) != 1 || got[0] != "new" {
		t.Errorf("after 60 s the queue holds %q, want only the newer message", got)
	}
}

func TestQueueAndTopicNames(t *testing.T) {
	e := newEnv(t)
	long := "q" + strings.Repeat("a-1", 85) // 256 characters
	for name, ok := range map[string]bool{
		"work": true, "A-1": true, long: true, long + "b": false,
		"": false, "1work": false, "-work": false, "work_1": false, "wörk": false,
	} {
		if err := e.mns.CreateQueue(name, mnssim.QueueOptions{}); (err == nil) != ok {
			t.Errorf("CreateQueue(%q) = %v, want ok %v", name, err, ok)
		}
		if err := e.mns.CreateTopic(name); (err == nil) != ok {
			t.Errorf("CreateTopic(%q) = %v, want ok %v", name, err, ok)
		}
	}
}
