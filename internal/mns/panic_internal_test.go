package mns

import (
	"context"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
)

// The goroutines Publish and Send start for the SDK are ours: a panic in the
// SDK (here, a client it never made) is the call's error, not the end of the
// process.
func TestSDKPanicIsTheCallsError(t *testing.T) {
	c := &Client{scrub: strings.NewReplacer()} // no SDK client: it panics on use
	err := c.Topic("t").Publish(context.Background(), events.CloudEvent{ID: "e"})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("publish: %v", err)
	}
	err = c.Queue("q").Send(context.Background(), []handler.QueueMessage{{Body: "{}"}})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("send: %v", err)
	}
}
