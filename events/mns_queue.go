package events

// MNSQueueEvent is the CloudEvent an EventBridge event stream sends for
// one message of an MNS queue. Event-driven mode sends one such object per
// invocation; event-streaming mode sends a JSON array of them (or of JSON
// strings each holding one). Times are kept as text: they are only logged.
type MNSQueueEvent struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"` // MNSQueueMessageType
	Subject         string `json:"subject,omitempty"`
	DataContentType string `json:"datacontenttype,omitempty"`
	Time            string `json:"time,omitempty"`

	// Alibaba Cloud extension attributes.
	AliyunAccountID         string `json:"aliyunaccountid,omitempty"`
	AliyunPublishTime       string `json:"aliyunpublishtime,omitempty"`
	AliyunOriginalAccountID string `json:"aliyunoriginalaccountid,omitempty"`
	AliyunEventBusName      string `json:"aliyuneventbusname,omitempty"`
	AliyunRegionID          string `json:"aliyunregionid,omitempty"`
	AliyunPublishAddr       string `json:"aliyunpublishaddr,omitempty"`

	Data MNSQueueData `json:"data"`
}

// MNSQueueData is the MNS message inside an MNSQueueEvent.
type MNSQueueData struct {
	RequestID string `json:"requestId,omitempty"`
	// MessageID identifies the message across redeliveries.
	MessageID string `json:"messageId"`
	// MessageBody holds the request; it is still base64 when the trigger's
	// IsBase64Decode is off and the producer encoded it.
	MessageBody string `json:"messageBody"`
}

// MNSQueueMessageType is the CloudEvent type of an MNS queue message.
const MNSQueueMessageType = "mns:Queue:SendMessage"
