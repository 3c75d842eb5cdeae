package mnssim

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxTagLength is MNS's limit for MessageTag and FilterTag.
const maxTagLength = 16

// NotifyFormat is how a subscription presents a topic message.
type NotifyFormat string

// Formats. Queue subscriptions take XML (the MNS default), JSON or
// SIMPLIFIED; callback subscriptions, shaped like FC MNS topic triggers,
// take STREAM (the FC default) or JSON.
const (
	FormatXML        NotifyFormat = "XML"
	FormatJSON       NotifyFormat = "JSON"
	FormatSimplified NotifyFormat = "SIMPLIFIED"
	FormatStream     NotifyFormat = "STREAM"
)

// Subscription routes a topic's messages to a queue or to a Go callback.
// Exactly one of Queue and Callback is set.
type Subscription struct {
	Name string // unique within the topic; default "<topic>-sub-<n>"
	// Queue receives each message, formatted per Format, as a new message
	// with priority 8 and the queue's default delay.
	Queue string
	// Callback receives each message's payload exactly as FC hands an MNS
	// topic trigger event to a function. It runs on its own goroutine; use
	// Flush to wait for deliveries in flight.
	Callback func(payload []byte)
	// FilterTag, when set, passes only messages whose MessageTag equals it.
	FilterTag string
	Format    NotifyFormat
}

// Published is a message as a topic received it.
type Published struct {
	MessageID  string
	Body       string
	Tag        string
	Attributes map[string]string // MessageAttributes children by element name, e.g. "DirectMail"
	Time       time.Time         // on the Clock
}

type topic struct {
	name          string
	subscriptions []Subscription
	published     []Published
}

// CreateTopic creates a topic; creating an existing one is a no-op.
func (s *Server) CreateTopic(name string) error {
	if !validName(name) {
		return fmt.Errorf("mnssim: invalid topic name %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.topics[name]; !exists {
		s.topics[name] = &topic{name: name}
	}
	return nil
}

// Subscribe adds a subscription to a topic. A queue subscription's queue
// must exist.
func (s *Server) Subscribe(topicName string, sub Subscription) error {
	if (sub.Queue == "") == (sub.Callback == nil) {
		return errors.New("mnssim: a subscription needs exactly one of Queue and Callback")
	}
	if utf8.RuneCountInString(sub.FilterTag) > maxTagLength {
		return fmt.Errorf("mnssim: FilterTag %q is longer than %d characters", sub.FilterTag, maxTagLength)
	}
	switch {
	case sub.Queue != "" && sub.Format == "":
		sub.Format = FormatXML
	case sub.Callback != nil && sub.Format == "":
		sub.Format = FormatStream
	case sub.Queue != "" && sub.Format != FormatXML && sub.Format != FormatJSON && sub.Format != FormatSimplified:
		return fmt.Errorf("mnssim: a queue subscription cannot use format %q", sub.Format)
	case sub.Callback != nil && sub.Format != FormatStream && sub.Format != FormatJSON:
		return fmt.Errorf("mnssim: a callback subscription cannot use format %q", sub.Format)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.topics[topicName]
	if !found {
		return fmt.Errorf("mnssim: no topic %q", topicName)
	}
	if _, found := s.queues[sub.Queue]; sub.Queue != "" && !found {
		return fmt.Errorf("mnssim: no queue %q", sub.Queue)
	}
	if sub.Name == "" {
		sub.Name = fmt.Sprintf("%s-sub-%d", topicName, len(t.subscriptions)+1)
	}
	for _, existing := range t.subscriptions {
		if existing.Name == sub.Name {
			return fmt.Errorf("mnssim: topic %q already has a subscription %q", topicName, sub.Name)
		}
	}
	t.subscriptions = append(t.subscriptions, sub)
	return nil
}

type publishRequestXML struct {
	XMLName     xml.Name       `xml:"Message"`
	MessageBody *string        `xml:"MessageBody"`
	MessageTag  string         `xml:"MessageTag"`
	Attributes  *attributesXML `xml:"MessageAttributes"`
}

// attributesXML keeps every child of <MessageAttributes>: the SDK sends only
// DirectMail (a JSON string), other clients send more.
type attributesXML struct {
	Items []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

func (s *Server) publishMessage(r *request) reply {
	var in publishRequestXML
	if xml.Unmarshal(r.body, &in) != nil {
		return fail(errMalformedXML())
	}
	if in.MessageBody == nil || *in.MessageBody == "" {
		return fail(errInvalidArgument("The MessageBody should not be empty."))
	}
	if size := len(*in.MessageBody); size > maxMessageSizeAttr {
		return fail(errBodyTooLong(size, maxMessageSizeAttr))
	}
	if utf8.RuneCountInString(in.MessageTag) > maxTagLength {
		return fail(errInvalidArgument(fmt.Sprintf("The length of MessageTag should not be more than %d.", maxTagLength)))
	}
	var attrs map[string]string
	if in.Attributes != nil {
		attrs = map[string]string{}
		for _, item := range in.Attributes.Items {
			attrs[item.XMLName.Local] = item.Value
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.topics[r.name]
	if !found {
		return fail(errTopicNotExist())
	}
	now := s.clock.Now()
	s.seq++
	p := Published{
		MessageID:  fmt.Sprintf("%s-2-%X-%09d", s.idPrefix, now.UnixMilli(), s.seq),
		Body:       *in.MessageBody,
		Tag:        in.MessageTag,
		Attributes: attrs,
		Time:       now,
	}
	t.published = append(t.published, p)
	for _, sub := range t.subscriptions {
		if sub.FilterTag != "" && sub.FilterTag != p.Tag {
			continue
		}
		s.notify(t.name, sub, p, now)
	}
	return ok(http.StatusCreated, sentXML{MessageID: p.MessageID, MessageBodyMD5: bodyMD5(p.Body)})
}

// notify delivers one published message to one subscription. The caller
// holds s.mu.
func (s *Server) notify(topicName string, sub Subscription, p Published, now time.Time) {
	n := notification{
		TopicOwner:       s.accountID,
		TopicName:        topicName,
		Subscriber:       s.accountID,
		SubscriptionName: sub.Name,
		MessageID:        p.MessageID,
		MessageMD5:       bodyMD5(p.Body),
		MessageTag:       p.Tag,
		Message:          p.Body,
		PublishTime:      p.Time.UnixMilli(),
	}
	if sub.Queue != "" {
		q, err := s.lookupQueue(sub.Queue, now)
		if err != nil {
			return // queues are never deleted; nothing to deliver to
		}
		body := queueNotification(sub.Format, n)
		s.enqueue(q, body, defaultPriority, time.Duration(q.opts.DelaySeconds)*time.Second, now)
		return
	}
	payload := triggerPayload(sub.Format, n, p.Attributes)
	s.inflight++
	go func() {
		defer s.deliveryDone()
		sub.Callback(payload)
	}()
}

func (s *Server) deliveryDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 {
		s.idle.Broadcast()
	}
}

// Flush waits until every callback delivery started so far has returned.
func (s *Server) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
}

// notification is a topic message with its envelope, in the field order of
// the FC MNS topic trigger's JSON event.
type notification struct {
	TopicOwner       string `json:"TopicOwner"`
	TopicName        string `json:"TopicName"`
	Subscriber       string `json:"Subscriber"`
	SubscriptionName string `json:"SubscriptionName"`
	MessageID        string `json:"MessageId"`
	MessageMD5       string `json:"MessageMD5"`
	MessageTag       string `json:"MessageTag,omitempty"`
	Message          string `json:"Message"`
	PublishTime      int64  `json:"PublishTime"` // epoch ms, a number
}

// notificationXML is the XML notify format
// (https://alibabacloud.com/help/en/mns/notifycontentformat).
type notificationXML struct {
	XMLName          xml.Name `xml:"http://mns.aliyuncs.com/doc/v1/ Notification"`
	TopicOwner       string   `xml:"TopicOwner"`
	TopicName        string   `xml:"TopicName"`
	Subscriber       string   `xml:"Subscriber"`
	SubscriptionName string   `xml:"SubscriptionName"`
	MessageID        string   `xml:"MessageId"`
	Message          string   `xml:"Message"`
	MessageMD5       string   `xml:"MessageMD5"`
	MessageTag       string   `xml:"MessageTag,omitempty"`
	PublishTime      int64    `xml:"PublishTime"`
}

// queueNotification is the body a queue subscription enqueues.
func queueNotification(format NotifyFormat, n notification) string {
	switch format {
	case FormatSimplified:
		return n.Message
	case FormatJSON:
		// The MNS docs show PublishTime as a string in the queue JSON
		// format (unlike FC's trigger event); unverified against production.
		out, _ := json.Marshal(struct {
			notification
			PublishTime string `json:"PublishTime"`
		}{n, strconv.FormatInt(n.PublishTime, 10)})
		return string(out)
	}
	out, _ := xml.Marshal(notificationXML{
		TopicOwner: n.TopicOwner, TopicName: n.TopicName, Subscriber: n.Subscriber,
		SubscriptionName: n.SubscriptionName, MessageID: n.MessageID, Message: n.Message,
		MessageMD5: n.MessageMD5, MessageTag: n.MessageTag, PublishTime: n.PublishTime,
	})
	return xml.Header + string(out)
}

// triggerPayload is the event an FC MNS topic trigger hands the function.
//
// STREAM: the raw body, or {"body":…,"attrs":{…}} when the message carries
// attributes. JSON: the envelope; with attributes, FC merges the keys of the
// custom attributes at the top level (fc3 template mns-with-MessageAttributes),
// which this emulator reads as the keys of a JSON object in "Extend".
func triggerPayload(format NotifyFormat, n notification, attrs map[string]string) []byte {
	if format == FormatStream {
		if len(attrs) == 0 {
			return []byte(n.Message)
		}
		out, _ := json.Marshal(struct {
			Body  string            `json:"body"`
			Attrs map[string]string `json:"attrs"`
		}{n.Message, attrs})
		return out
	}
	out, _ := json.Marshal(n)
	var extra map[string]json.RawMessage
	if json.Unmarshal([]byte(attrs["Extend"]), &extra) != nil || len(extra) == 0 {
		return out
	}
	var standard map[string]json.RawMessage
	_ = json.Unmarshal(out, &standard)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if _, clash := standard[k]; !clash {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	merged := []byte{'{'}
	for _, k := range keys {
		name, _ := json.Marshal(k)
		merged = append(append(append(merged, name...), ':'), extra[k]...)
		merged = append(merged, ',')
	}
	return append(merged, out[1:]...)
}
