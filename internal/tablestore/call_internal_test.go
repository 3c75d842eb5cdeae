package tablestore

import (
	"context"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler"
)

// The goroutine call starts for an SDK call is ours: a panic in the SDK is
// the call's error, not the end of the process.
func TestCallSurvivesAPanicInTheSDK(t *testing.T) {
	l, err := New(Options{Endpoint: "http://127.0.0.1:1", Instance: "i", Table: "t",
		Credentials: handler.Credentials{AccessKeyID: "id", AccessKeySecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	err = call(context.Background(), l, "GetRow", func() error { panic("inside the SDK") })
	if err == nil || !strings.Contains(err.Error(), "inside the SDK") {
		t.Fatalf("a panic in the SDK: %v", err)
	}
}
