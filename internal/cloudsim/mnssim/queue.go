package mnssim

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits of the MNS queue API.
const (
	maxBatch           = 16
	maxBatchBytes      = 64 * 1024
	maxDelaySeconds    = 604800
	maxVisibility      = 43200
	maxPollingWait     = 30
	defaultPriority    = 8
	minMessageSizeAttr = 1024
	maxMessageSizeAttr = 64 * 1024
)

// QueueOptions are a queue's attributes, in MNS's units. A zero field takes
// the MNS default.
type QueueOptions struct {
	VisibilityTimeout      int // seconds a received message stays invisible, 1..43200, default 30
	DelaySeconds           int // seconds a new message stays invisible, 0..604800, default 0
	PollingWaitSeconds     int // long-poll wait when a receive names none, 0..30, default 0
	MaximumMessageSize     int // bytes, 1024..65536, default 65536
	MessageRetentionPeriod int // seconds a message lives, 60..1296000, default 345600 (4 days)
}

// withDefaults fills zero fields and checks ranges.
func (o QueueOptions) withDefaults() (QueueOptions, *apiError) {
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = 30
	}
	if o.MaximumMessageSize == 0 {
		o.MaximumMessageSize = maxMessageSizeAttr
	}
	if o.MessageRetentionPeriod == 0 {
		o.MessageRetentionPeriod = 345600
	}
	checks := []struct {
		name      string
		v, lo, hi int
	}{
		{"VisibilityTimeout", o.VisibilityTimeout, 1, maxVisibility},
		{"DelaySeconds", o.DelaySeconds, 0, maxDelaySeconds},
		{"PollingWaitSeconds", o.PollingWaitSeconds, 0, maxPollingWait},
		{"MaximumMessageSize", o.MaximumMessageSize, minMessageSizeAttr, maxMessageSizeAttr},
		{"MessageRetentionPeriod", o.MessageRetentionPeriod, 60, 1296000},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi {
			return o, errRange(c.name, int64(c.lo), int64(c.hi))
		}
	}
	return o, nil
}

// validName is MNS's rule for queue and topic names: a letter, then up to
// 255 letters, digits and hyphens. (Not a regexp: the bounded repetition
// compiles to a large program at package init, which every process of the
// function would pay at its cold start.)
func validName(name string) bool {
	if len(name) == 0 || len(name) > 256 {
		return false
	}
	for i, c := range name {
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

type queue struct {
	name     string
	opts     QueueOptions
	messages map[uint64]*message // by sequence number
	wake     chan struct{}       // closed (and replaced) when a message is added
}

type message struct {
	seq          uint64
	id           string
	body         string
	bodyMD5      string
	priority     int
	enqueued     time.Time
	visibleAt    time.Time // NextVisibleTime: the message is invisible before it
	firstDequeue time.Time
	dequeueCount int
	handle       string // the one valid receipt handle, valid while now < visibleAt
	handleGen    int    // how many handles were issued, so each differs
}

// CreateQueue creates a queue. Creating an existing queue with the same
// options is a no-op; with different options it is an error, as in MNS.
func (s *Server) CreateQueue(name string, o QueueOptions) error {
	if _, err := s.createQueue(name, o); err != nil {
		return err
	}
	return nil // not err: a nil *apiError is a non-nil error
}

// createQueue reports whether the queue is new.
func (s *Server) createQueue(name string, o QueueOptions) (bool, *apiError) {
	if !validName(name) {
		return false, &apiError{http.StatusBadRequest, "InvalidQueueName", fmt.Sprintf("The queue name %q is invalid.", name)}
	}
	o, err := o.withDefaults()
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, exists := s.queues[name]; exists {
		if q.opts != o {
			return false, &apiError{http.StatusConflict, "QueueAlreadyExist", fmt.Sprintf("The queue %q already exists with other attributes.", name)}
		}
		return false, nil
	}
	s.queues[name] = &queue{name: name, opts: o, messages: map[uint64]*message{}, wake: make(chan struct{})}
	return true, nil
}

// lookupQueue returns the named queue after dropping its expired messages.
// The caller holds s.mu.
func (s *Server) lookupQueue(name string, now time.Time) (*queue, *apiError) {
	q, found := s.queues[name]
	if !found {
		return nil, errQueueNotExist()
	}
	retention := time.Duration(q.opts.MessageRetentionPeriod) * time.Second
	for seq, m := range q.messages {
		if !now.Before(m.enqueued.Add(retention)) {
			delete(q.messages, seq)
		}
	}
	return q, nil
}

// enqueue stores a new message and wakes long polls. The caller holds s.mu.
func (s *Server) enqueue(q *queue, body string, priority int, delay time.Duration, now time.Time) *message {
	s.seq++
	m := &message{
		seq:       s.seq,
		id:        fmt.Sprintf("%s-1-%X-%09d", s.idPrefix, now.UnixMilli(), s.seq),
		body:      body,
		bodyMD5:   bodyMD5(body),
		priority:  priority,
		enqueued:  now,
		visibleAt: now.Add(delay),
	}
	if delay > 0 {
		// MNS hands out a handle for a delayed message, usable until it shows.
		m.newHandle()
	}
	q.messages[m.seq] = m
	close(q.wake)
	q.wake = make(chan struct{})
	return m
}

// visible returns up to n messages that can be received now, in MNS order:
// priority first (1 is highest), then enqueue order.
func (q *queue) visible(now time.Time, n int) []*message {
	var ready []*message
	for _, m := range q.messages {
		if !now.Before(m.visibleAt) {
			ready = append(ready, m)
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		if ready[i].priority != ready[j].priority {
			return ready[i].priority < ready[j].priority
		}
		return ready[i].seq < ready[j].seq
	})
	if len(ready) > n {
		ready = ready[:n]
	}
	return ready
}

// nextVisibleAfter is the earliest time an invisible message shows, or zero.
func (q *queue) nextVisibleAfter(now time.Time) time.Time {
	var next time.Time
	for _, m := range q.messages {
		if now.Before(m.visibleAt) && (next.IsZero() || m.visibleAt.Before(next)) {
			next = m.visibleAt
		}
	}
	return next
}

// dequeue hides m for the visibility timeout under a new receipt handle.
func (m *message) dequeue(now time.Time, visibility time.Duration) {
	m.dequeueCount++
	if m.firstDequeue.IsZero() {
		m.firstDequeue = now
	}
	m.visibleAt = now.Add(visibility)
	m.newHandle()
}

// newHandle replaces the receipt handle, invalidating the old one. Handles
// look like MNS's ("1-" + base64) and encode the message's sequence number.
func (m *message) newHandle() {
	m.handleGen++
	raw := fmt.Sprintf("%d-%d-%s", m.seq, m.handleGen, randomHex(4))
	m.handle = "1-" + base64.StdEncoding.EncodeToString([]byte(raw))
}

// handleSeq extracts the message sequence number from a receipt handle.
func handleSeq(handle string) (uint64, bool) {
	encoded, found := strings.CutPrefix(handle, "1-")
	if !found {
		return 0, false
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), "-")
	if len(parts) != 3 {
		return 0, false
	}
	seq, err := strconv.ParseUint(parts[0], 10, 64)
	return seq, err == nil
}

// byHandle finds the message a receipt handle currently stands for:
// malformed → ReceiptHandleError, stale, expired or unknown → MessageNotExist.
func (q *queue) byHandle(handle string, now time.Time) (*message, *apiError) {
	seq, wellFormed := handleSeq(handle)
	if !wellFormed {
		return nil, errReceiptHandle(handle)
	}
	m, found := q.messages[seq]
	if !found || m.handle != handle || !now.Before(m.visibleAt) {
		return nil, errMessageNotExist()
	}
	return m, nil
}

func bodyMD5(body string) string {
	sum := md5.Sum([]byte(body))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// parseInt reads an optional integer element or parameter; absent gives def.
func parseInt(v *string, name string, def, lo, hi int64) (int64, *apiError) {
	if v == nil {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(*v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errRange(name, lo, hi)
	}
	return n, nil
}
