package mnssim_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

func TestTopicDeliversToSubscribedQueues(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"raw", "done-json", "xml"} {
		e.createQueue(q, mnssim.QueueOptions{})
	}
	must(t, e.mns.CreateTopic("outcomes"))
	must(t, e.mns.Subscribe("outcomes", mnssim.Subscription{Name: "raw", Queue: "raw", Format: mnssim.FormatSimplified}))
	must(t, e.mns.Subscribe("outcomes", mnssim.Subscription{Name: "done", Queue: "done-json", FilterTag: "done", Format: mnssim.FormatJSON}))
	must(t, e.mns.Subscribe("outcomes", mnssim.Subscription{Name: "xml", Queue: "xml"})) // XML by default

	topic := ali_mns.NewMNSTopic("outcomes", e.client)
	untagged, err := topic.PublishMessage(ali_mns.MessagePublishRequest{MessageBody: "started"})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := topic.PublishMessage(ali_mns.MessagePublishRequest{MessageBody: `{"ok":true}`, MessageTag: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if tagged.MessageId == "" || tagged.MessageBodyMD5 != upperMD5(`{"ok":true}`) {
		t.Errorf("publish response = %+v", tagged)
	}

	if got := bodies(e.mns.Messages("raw")); fmt.Sprint(got) != `[started {"ok":true}]` {
		t.Errorf("SIMPLIFIED queue got %q, want the raw bodies", got)
	}

	jsonMsgs := e.mns.Messages("done-json")
	if len(jsonMsgs) != 1 {
		t.Fatalf("the FilterTag queue got %d messages, want only the tagged one", len(jsonMsgs))
	}
	want := fmt.Sprintf(`{"TopicOwner":%q,"TopicName":"outcomes","Subscriber":%q,"SubscriptionName":"done",`+
		`"MessageId":%q,"MessageMD5":%q,"MessageTag":"done","Message":"{\"ok\":true}","PublishTime":"%d"}`,
		account, account, tagged.MessageId, upperMD5(`{"ok":true}`), ms(start))
	if jsonMsgs[0].Body != want {
		t.Errorf("JSON notification\n%s\nwant\n%s", jsonMsgs[0].Body, want)
	}

	xmlMsgs := e.mns.Messages("xml")
	if len(xmlMsgs) != 2 {
		t.Fatalf("the XML queue got %d messages, want 2", len(xmlMsgs))
	}
	var n struct {
		XMLName                                                     xml.Name
		TopicName, SubscriptionName, MessageId, Message, MessageTag string
		PublishTime                                                 int64
	}
	if err := xml.Unmarshal([]byte(xmlMsgs[0].Body), &n); err != nil {
		t.Fatalf("XML notification %q: %v", xmlMsgs[0].Body, err)
	}
	if n.XMLName.Local != "Notification" || n.MessageId != untagged.MessageId || n.Message != "started" ||
		n.MessageTag != "" || n.TopicName != "outcomes" || n.SubscriptionName != "xml" || n.PublishTime != ms(start) {
		t.Errorf("XML notification = %+v", n)
	}

	published := e.mns.Published("outcomes")
	if len(published) != 2 || published[1].Tag != "done" || published[1].MessageID != tagged.MessageId ||
		published[0].Body != "started" || !published[0].Time.Equal(start) {
		t.Errorf("Published() = %+v", published)
	}
}

func TestTopicCallbacksGetFCTriggerPayloads(t *testing.T) {
	e := newEnv(t)
	must(t, e.mns.CreateTopic("requests"))
	var mu sync.Mutex
	got := map[string][]string{}
	collect := func(name string) func([]byte) {
		return func(p []byte) {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], string(p))
		}
	}
	must(t, e.mns.Subscribe("requests", mnssim.Subscription{Name: "fc-json", Callback: collect("json"), Format: mnssim.FormatJSON}))
	must(t, e.mns.Subscribe("requests", mnssim.Subscription{Name: "fc-stream", Callback: collect("stream")})) // STREAM by default
	must(t, e.mns.Subscribe("requests", mnssim.Subscription{Name: "fc-tagged", Callback: collect("tagged"), FilterTag: "sweep"}))

	// One message at a time: deliveries run concurrently, so order is only
	// certain between flushes.
	topic := ali_mns.NewMNSTopic("requests", e.client)
	plain, err := topic.PublishMessage(ali_mns.MessagePublishRequest{MessageBody: `{"kind":"sweep"}`, MessageTag: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	e.mns.Flush()
	withAttrs, err := topic.PublishMessage(ali_mns.MessagePublishRequest{
		MessageBody:       "hello",
		MessageAttributes: &ali_mns.MessageAttributes{MailAttributes: &ali_mns.MailAttributes{Subject: "s", AccountName: "a@b.c"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.mns.Flush()

	mu.Lock()
	defer mu.Unlock()
	wantJSON := fmt.Sprintf(`{"TopicOwner":%q,"TopicName":"requests","Subscriber":%q,"SubscriptionName":"fc-json",`+
		`"MessageId":%q,"MessageMD5":%q,"MessageTag":"sweep","Message":"{\"kind\":\"sweep\"}","PublishTime":%d}`,
		account, account, plain.MessageId, upperMD5(`{"kind":"sweep"}`), ms(start))
	if len(got["json"]) != 2 || got["json"][0] != wantJSON {
		t.Fatalf("JSON payloads %q\nwant first\n%s", got["json"], wantJSON)
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(got["json"][1]), &second); err != nil {
		t.Fatal(err)
	}
	if _, hasTag := second["MessageTag"]; hasTag || second["Message"] != "hello" {
		t.Errorf("untagged JSON payload = %v, want no MessageTag", second)
	}
	if _, isNumber := second["PublishTime"].(float64); !isNumber {
		t.Errorf("PublishTime = %#v, want a JSON number", second["PublishTime"])
	}

	wantStream := []string{`{"kind":"sweep"}`,
		`{"body":"hello","attrs":{"DirectMail":"{\"IsHtml\":0,\"Subject\":\"s\",\"AccountName\":\"a@b.c\",\"AddressType\":0,\"ReplyToAddress\":0}"}}`}
	if fmt.Sprint(got["stream"]) != fmt.Sprint(wantStream) {
		t.Errorf("STREAM payloads\n%q\nwant\n%q", got["stream"], wantStream)
	}
	if len(got["tagged"]) != 1 || got["tagged"][0] != `{"kind":"sweep"}` {
		t.Errorf("FilterTag callback got %q, want only the tagged message", got["tagged"])
	}
	if p := e.mns.Published("requests"); len(p) != 2 || p[1].MessageID != withAttrs.MessageId || p[1].Attributes["DirectMail"] == "" {
		t.Errorf("Published() = %+v", p)
	}
}

func TestSubscribeRejectsBadSubscriptions(t *testing.T) {
	e := newEnv(t)
	must(t, e.mns.CreateTopic("t"))
	e.createQueue("q", mnssim.QueueOptions{})
	bad := []mnssim.Subscription{
		{},                 // no endpoint
		{Queue: "missing"}, // unknown queue
		{Queue: "q", Format: mnssim.FormatStream}, // STREAM is for FC
		{Callback: func([]byte) {}, Format: mnssim.FormatXML},
		{Queue: "q", FilterTag: "seventeen-chars!!"},
	}
	for i, s := range bad {
		if err := e.mns.Subscribe("t", s); err == nil {
			t.Errorf("case %d: Subscribe(%+v) accepted", i, s)
		}
	}
	if err := e.mns.Subscribe("nope", mnssim.Subscription{Queue: "q"}); err == nil {
		t.Errorf("Subscribe to an unknown topic accepted")
	}
}

func bodies(ms []mnssim.MessageState) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Body)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The SDK can only send DirectMail attributes; other clients send custom
// ones, which FC shows as in the fc3 templates mns-stream.json and
// mns-with-MessageAttributes.json.
func TestTopicCallbacksWithCustomAttributes(t *testing.T) {
	e := newEnv(t)
	must(t, e.mns.CreateTopic("requests"))
	var mu sync.Mutex
	got := map[mnssim.NotifyFormat]string{}
	for _, f := range []mnssim.NotifyFormat{mnssim.FormatJSON, mnssim.FormatStream} {
		must(t, e.mns.Subscribe("requests", mnssim.Subscription{Name: "fc-" + string(f), Format: f, Callback: func(p []byte) {
			mu.Lock()
			defer mu.Unlock()
			got[f] = string(p)
		}}))
	}
	body := `<Message><MessageBody>hello topic</MessageBody>` +
		`<MessageAttributes><Extend>{"key":"value"}</Extend></MessageAttributes></Message>`
	resp, err := http.DefaultClient.Do(rawRequest(t, e, "POST", "/topics/requests/messages", body, time.Now().UTC().Format(http.TimeFormat)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: status %d", resp.StatusCode)
	}
	e.mns.Flush()

	mu.Lock()
	defer mu.Unlock()
	if want := `{"body":"hello topic","attrs":{"Extend":"{\"key\":\"value\"}"}}`; got[mnssim.FormatStream] != want {
		t.Errorf("STREAM payload %s, want %s", got[mnssim.FormatStream], want)
	}
	id := e.mns.Published("requests")[0].MessageID
	want := fmt.Sprintf(`{"key":"value","TopicOwner":%q,"TopicName":"requests","Subscriber":%q,"SubscriptionName":"fc-JSON",`+
		`"MessageId":%q,"MessageMD5":%q,"Message":"hello topic","PublishTime":%d}`,
		account, account, id, upperMD5("hello topic"), ms(start))
	if got[mnssim.FormatJSON] != want {
		t.Errorf("JSON payload\n%s\nwant\n%s", got[mnssim.FormatJSON], want)
	}
}
