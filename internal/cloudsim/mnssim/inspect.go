package mnssim

import (
	"maps"
	"sort"
	"time"
)

// MessageState is a snapshot of one queued message, visible or not.
type MessageState struct {
	MessageID        string
	Body             string
	BodyMD5          string // upper-case hex, as MNS reports it
	Priority         int
	EnqueueTime      time.Time
	NextVisibleTime  time.Time // the message is invisible before it
	FirstDequeueTime time.Time // zero until first received
	DequeueCount     int
	Visible          bool   // receivable now
	ReceiptHandle    string // the handle currently valid, if any
}

// Messages returns every message in a queue, in enqueue order; nil for an
// unknown queue.
func (s *Server) Messages(queueName string) []MessageState {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(queueName, now)
	if err != nil {
		return nil
	}
	msgs := make([]*message, 0, len(q.messages))
	for _, m := range q.messages {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].seq < msgs[j].seq })
	out := make([]MessageState, len(msgs))
	for i, m := range msgs {
		visible := !now.Before(m.visibleAt)
		handle := m.handle
		if visible {
			handle = "" // it expired when the message became visible again
		}
		out[i] = MessageState{
			MessageID: m.id, Body: m.body, BodyMD5: m.bodyMD5, Priority: m.priority,
			EnqueueTime: m.enqueued, NextVisibleTime: m.visibleAt, FirstDequeueTime: m.firstDequeue,
			DequeueCount: m.dequeueCount, Visible: visible, ReceiptHandle: handle,
		}
	}
	return out
}

// Published returns every message published to a topic, in order; nil for
// an unknown topic.
func (s *Server) Published(topicName string) []Published {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.topics[topicName]
	if !found {
		return nil
	}
	out := make([]Published, len(t.published))
	for i, p := range t.published {
		p.Attributes = maps.Clone(p.Attributes)
		out[i] = p
	}
	return out
}

// Received is a message taken from a queue by Take.
type Received struct {
	MessageID    string
	Body         string
	BodyMD5      string
	Priority     int
	EnqueueTime  time.Time
	DequeueCount int // including this delivery
}

// Take receives and deletes up to max visible messages in one step, in the
// order ReceiveMessage would return them. It is for in-process consumers
// such as an EventBridge-style trigger that another package emulates. It
// does not wait, and returns nil for an unknown or empty queue.
func (s *Server) Take(queueName string, max int) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	q, err := s.lookupQueue(queueName, now)
	if err != nil || max <= 0 {
		return nil
	}
	var out []Received
	for _, m := range q.visible(now, max) {
		out = append(out, Received{
			MessageID: m.id, Body: m.body, BodyMD5: m.bodyMD5, Priority: m.priority,
			EnqueueTime: m.enqueued, DequeueCount: m.dequeueCount + 1,
		})
		delete(q.messages, m.seq)
	}
	return out
}

// Calls returns how many requests each operation received, whatever their
// outcome ("Unknown" counts requests for paths the emulator does not serve).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Failures returns how many requests failed, by MNS error code
// ("MessageNotExist", "QpsLimitExceeded", …) or, for faults with no MNS
// answer, by fault kind ("BadGateway", "Drop", "CutResponse", "DropAfterCommit"). A
// partially failed batch counts once for each failed entry, under its code.
func (s *Server) Failures() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.failures)
}
