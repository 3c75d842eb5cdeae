package mnssim_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

const account = "1234567890123456"

var start = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// env is one emulator behind a real HTTP server, with a simulated clock and
// an access key the SDK signs with.
type env struct {
	t       *testing.T
	mns     *mnssim.Server
	http    *httptest.Server
	clock   *clock.Sim
	keyring *auth.Keyring
	key     auth.Credential
	client  ali_mns.MNSClient
}

func newEnv(t *testing.T, configure ...func(*mnssim.Options)) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewSim(start), keyring: auth.NewKeyring(nil)}
	e.key = e.keyring.AddAccessKey(account)
	opts := mnssim.Options{
		Keyring:     e.keyring,
		Clock:       e.clock,
		AccountID:   account,
		Region:      "cn-shanghai",
		MaxPollWait: 5 * time.Second,
	}
	for _, c := range configure {
		c(&opts)
	}
	e.mns = mnssim.New(opts)
	e.http = httptest.NewServer(e.mns)
	t.Cleanup(e.http.Close)
	e.client = e.newClient(e.key.AccessKeyID, e.key.AccessKeySecret, "")
	return e
}

// newClient is the SDK client pointed at the emulator ("/." gives the five
// dot-separated pieces the SDK insists on).
func (e *env) newClient(id, secret, token string) ali_mns.MNSClient {
	return ali_mns.NewAliMNSClientWithConfig(ali_mns.AliMNSClientConfig{
		EndPoint:        e.http.URL + "/.",
		AccessKeyId:     id,
		AccessKeySecret: secret,
		Token:           token,
		TimeoutSecond:   35,
	})
}

func (e *env) createQueue(name string, o mnssim.QueueOptions) ali_mns.AliMNSQueue {
	e.t.Helper()
	if err := e.mns.CreateQueue(name, o); err != nil {
		e.t.Fatalf("CreateQueue(%q): %v", name, err)
	}
	return ali_mns.NewMNSQueue(name, e.client)
}

// receive calls the SDK's channel-based ReceiveMessage synchronously.
func receive(q ali_mns.AliMNSQueue, waitSeconds ...int64) (ali_mns.MessageReceiveResponse, error) {
	rc := make(chan ali_mns.MessageReceiveResponse, len(waitSeconds)+1)
	ec := make(chan error, len(waitSeconds)+1)
	q.ReceiveMessage(rc, ec, waitSeconds...)
	select {
	case r := <-rc:
		return r, nil
	case err := <-ec:
		return ali_mns.MessageReceiveResponse{}, err
	default:
		return ali_mns.MessageReceiveResponse{}, errors.New("the SDK sent no request")
	}
}

func batchReceive(q ali_mns.AliMNSQueue, n int32, waitSeconds ...int64) (ali_mns.BatchMessageReceiveResponse, error) {
	rc := make(chan ali_mns.BatchMessageReceiveResponse, len(waitSeconds)+1)
	ec := make(chan error, len(waitSeconds)+1)
	q.BatchReceiveMessage(rc, ec, n, waitSeconds...)
	select {
	case r := <-rc:
		return r, nil
	case err := <-ec:
		return ali_mns.BatchMessageReceiveResponse{}, err
	default:
		return ali_mns.BatchMessageReceiveResponse{}, errors.New("the SDK sent no request")
	}
}

func send(t *testing.T, q ali_mns.AliMNSQueue, body string) ali_mns.MessageSendResponse {
	t.Helper()
	resp, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: body, Priority: 8})
	if err != nil {
		t.Fatalf("SendMessage(%q): %v", body, err)
	}
	return resp
}

func upperMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// rawRequest builds a request signed the way the MNS protocol documents it,
// independently of the SDK, for cases the SDK cannot produce (a skewed Date).
func rawRequest(t *testing.T, e *env, method, resource, body, date string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+resource, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum([]byte(body))
	contentMD5 := base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
	req.Header.Set("Content-Type", "text/xml;charset=utf-8")
	req.Header.Set("Content-MD5", contentMD5)
	req.Header.Set("Date", date)
	req.Header.Set("x-mns-version", "2015-06-06")
	toSign := method + "\n" + contentMD5 + "\ntext/xml;charset=utf-8\n" + date + "\nx-mns-version:2015-06-06\n" + resource
	mac := hmac.New(sha1.New, []byte(e.key.AccessKeySecret))
	mac.Write([]byte(toSign))
	req.Header.Set("Authorization", "MNS "+e.key.AccessKeyID+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return req
}
