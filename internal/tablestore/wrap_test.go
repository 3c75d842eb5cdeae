package tablestore

import (
	"errors"
	"strings"
	"testing"

	ots "github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"github.com/sag-upgrade/sag-upgrade/handler"
)

// Whatever an error quotes (a signing string, a URL), the ledger's errors
// carry neither the secret nor the token.
func TestErrorsAreScrubbedOfSecrets(t *testing.T) {
	l, err := New(Options{Endpoint: "http://127.0.0.1:1", Instance: "i", Table: "t",
		Credentials: handler.Credentials{AccessKeyID: "id", AccessKeySecret: "the-secret", SecurityToken: "the-token"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []error{
		errors.New("Post http://x/PutRow?sig=the-secret&token=the-token: connection reset"),
		&ots.OtsError{Code: "OTSAuthFailed", Message: "signing string the-secret, token the-token", HttpStatusCode: 403},
	} {
		got := l.wrap("PutRow", in).Error()
		if strings.Contains(got, "the-secret") || strings.Contains(got, "the-token") || !strings.Contains(got, "[redacted]") {
			t.Errorf("%q became %q", in, got)
		}
	}
}
