package mnssim_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

// The real SDK against the emulator: a delayed message shows up once the
// simulated clock has moved past its delay.
func Example() {
	keyring := auth.NewKeyring(nil)
	key := keyring.AddAccessKey("1234567890123456")
	sim := clock.NewSim(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	mns := mnssim.New(mnssim.Options{Keyring: keyring, Clock: sim, MaxPollWait: time.Second})
	if err := mns.CreateQueue("work", mnssim.QueueOptions{}); err != nil {
		panic(err)
	}
	srv := httptest.NewServer(mns)
	defer srv.Close()

	client := ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{
		EndPoint:        srv.URL + "/.", // the SDK wants five dot-separated pieces
		AccessKeyId:     key.AccessKeyID,
		AccessKeySecret: key.AccessKeySecret,
	})
	queue := ali_mns.NewMNSQueue("work", client)
	_, err := queue.SendMessage(ali_mns.MessageSendRequest{MessageBody: `{"kind":"sweep"}`, DelaySeconds: 60, Priority: 8})
	fmt.Println("sent:", err)

	sim.Advance(time.Minute)
	received := make(chan ali_mns.MessageReceiveResponse, 1)
	errs := make(chan error, 1)
	queue.ReceiveMessage(received, errs, 1)
	select {
	case m := <-received:
		fmt.Println("received:", m.MessageBody, "dequeue count", m.DequeueCount)
		fmt.Println("deleted:", queue.DeleteMessage(m.ReceiptHandle))
	case err := <-errs:
		fmt.Println("receive failed:", err)
	}
	fmt.Println("calls:", mns.Calls())
	// Output:
	// sent: <nil>
	// received: {"kind":"sweep"} dequeue count 1
	// deleted: <nil>
	// calls: map[DeleteMessage:1 ReceiveMessage:1 SendMessage:1]
}
