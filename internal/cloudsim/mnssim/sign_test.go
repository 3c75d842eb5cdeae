package mnssim

import (
	"net/http"
	"testing"
)

// TestSignatureVector checks the string to sign and the signature against
// MNS's documented example (GET /MyQueue, secret TestAccessSecret), whose
// published signature ends "…gfM****"; the full value is the one computed
// from the documented inputs.
func TestSignatureVector(t *testing.T) {
	r, err := http.NewRequest(http.MethodGet, "http://mns.example/MyQueue", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = "/MyQueue" // as a server sees it
	r.Header.Set("Date", "Thu, 09 Jul 2015 03:01:34 GMT")
	r.Header.Set("x-mns-version", "2015-06-06")

	wantSTS := "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue"
	if got := stringToSign(r); got != wantSTS {
		t.Fatalf("string to sign\n%q\nwant\n%q", got, wantSTS)
	}
	if got, want := sign("TestAccessSecret", wantSTS), "uwx3yeWoILzgmvesW0BQSgfM7b8="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}
