package cloudsim_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/smartag"
)

func start(t *testing.T) *cloudsim.Cloud {
	t.Helper()
	c, err := cloudsim.Start(cloudsim.Options{Fleet: fleet.Generate(fleet.Options{Gateways: 30, Seed: 2})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// One address serves SAG and MNS to their real SDKs.
func TestOneAddressServesSAGAndMNS(t *testing.T) {
	c := start(t)
	creds := c.Credentials(time.Hour)
	sag, err := smartag.New(smartag.Options{Endpoint: c.URL, Credentials: handler.Credentials{
		AccessKeyID: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	_, total, err := sag.ListGateways(context.Background(), c.Fleet.Regions[0], handler.ListFilter{}, 1)
	if err != nil || total == 0 {
		t.Fatalf("SAG through the cloud: total %d, %v", total, err)
	}
	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{EndPoint: c.URL + "/.",
		AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, Token: creds.SecurityToken, TimeoutSecond: 5})
	if _, err := ali_mns.NewMNSQueue(cloudsim.WorkQueue, client).SendMessage(ali_mns.MessageSendRequest{MessageBody: `{"dryRun":true}`, Priority: 8}); err != nil {
		t.Fatalf("MNS through the cloud: %v", err)
	}
	if _, err := ali_mns.NewMNSTopic(cloudsim.OutcomeTopic, client).PublishMessage(ali_mns.MessagePublishRequest{MessageBody: "x"}); err != nil {
		t.Fatalf("the outcome topic: %v", err)
	}
	if n := len(c.MNS.Messages(cloudsim.WorkQueue)); n != 1 {
		t.Fatalf("%d messages on the work queue", n)
	}
}

// QueueBatch hands over what the EventBridge trigger would: a CloudEvents
// array the function's decoder reads as mns-queue messages, base64 bodies
// decoded, and the queue emptied.
func TestQueueBatchIsAnEventBridgePayload(t *testing.T) {
	c := start(t)
	if c.QueueBatch(cloudsim.WorkQueue, 10) != nil {
		t.Fatal("an empty queue gave a batch")
	}
	creds := c.Credentials(time.Hour)
	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{EndPoint: c.URL + "/.",
		AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, Token: creds.SecurityToken, TimeoutSecond: 5})
	q := ali_mns.NewMNSQueue(cloudsim.WorkQueue, client)
	q.SendMessage(ali_mns.MessageSendRequest{MessageBody: `{"correlationId":"plain"}`, Priority: 8})
	q.SendMessage(ali_mns.MessageSendRequest{MessageBody: "eyJjb3JyZWxhdGlvbklkIjoiYjY0In0=", Priority: 8}) // {"correlationId":"b64"}
	payload := c.QueueBatch(cloudsim.WorkQueue, 10)
	var batch []map[string]any
	if err := json.Unmarshal(payload, &batch); err != nil || len(batch) != 2 {
		t.Fatalf("batch %s: %v", payload, err)
	}
	inv := events.Decode(payload)
	if inv.Trigger != events.TriggerMNSQueue || len(inv.Messages) != 2 {
		t.Fatalf("decoded %+v", inv)
	}
	got := map[string]bool{}
	for _, m := range inv.Messages {
		if m.Err != nil || m.ID == "" {
			t.Fatalf("message %+v", m)
		}
		got[m.Request.CorrelationID] = true
	}
	if !got["plain"] || !got["b64"] {
		t.Fatalf("correlation ids %v", got)
	}
	if n := len(c.MNS.Messages(cloudsim.WorkQueue)); n != 0 {
		t.Fatalf("%d messages left on the queue", n)
	}
}
