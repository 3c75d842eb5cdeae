package auth

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// The test vector of the SAG reference notes (sag-api-and-sdk.md §3.2): a
// real SDK request and its signature.
func TestSignatureVector(t *testing.T) {
	p := url.Values{
		"AccessKeyId": {"STS.testid"}, "Action": {"DescribeSmartAccessGatewayVersions"}, "Format": {"JSON"},
		"RegionId": {"cn-shanghai"}, "SecurityToken": {"tok+en/=="}, "SignatureMethod": {"HMAC-SHA1"},
		"SignatureNonce": {"7abde96442abe8fb003ec93a9f1370f0"}, "SignatureType": {""}, "SignatureVersion": {"1.0"},
		"SmartAGId": {"sag-abc"}, "Timestamp": {"2026-11-22T11:39:15Z"}, "Version": {"2018-03-13"},
		"VersionType": {"Device"}, "Signature": {"ignored"},
	}
	const wantSTS = "POST&%2F&AccessKeyId%3DSTS.testid%26Action%3DDescribeSmartAccessGatewayVersions%26Format%3DJSON%26RegionId%3Dcn-shanghai%26SecurityToken%3Dtok%252Ben%252F%253D%253D%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D7abde96442abe8fb003ec93a9f1370f0%26SignatureType%3D%26SignatureVersion%3D1.0%26SmartAGId%3Dsag-abc%26Timestamp%3D2026-11-22T11%253A39%253A15Z%26Version%3D2018-03-13%26VersionType%3DDevice"
	sts := RPCStringToSign("POST", p)
	if sts != wantSTS {
		t.Fatalf("string to sign:\n got %s\nwant %s", sts, wantSTS)
	}
	if got := RPCSignature("testsecret", sts); got != "SLJeN5q5ujaUzFhmOoggUSQLDPQ=" {
		t.Errorf("signature = %s, want SLJeN5q5ujaUzFhmOoggUSQLDPQ=", got)
	}
}

func TestNoncesForgetAfterTheWindow(t *testing.T) {
	var c Nonces
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for i := range 1000 {
		if !c.Use(fmt.Sprint(i), now, now) {
			t.Fatalf("fresh nonce %d refused", i)
		}
	}
	if c.Use("7", now, now.Add(14*time.Minute)) {
		t.Errorf("nonce reused within the window was accepted")
	}
	// A request whose Timestamp is ahead of the server stays replayable
	// until that Timestamp is stale, so its nonce is kept as long.
	if !c.Use("ahead", now.Add(10*time.Minute), now) {
		t.Fatal("fresh nonce refused")
	}
	later := now.Add(RPCWindow + 2*time.Minute)
	if !c.Use("new", later, later) {
		t.Fatal("fresh nonce refused")
	}
	if n := c.Len(); n != 2 {
		t.Errorf("after the window the cache holds %d nonces, want 2 (the sweep keeps only unexpired ones)", n)
	}
	if c.Use("ahead", later, later) {
		t.Errorf("nonce of a request still inside its Timestamp window was forgotten")
	}
	if !c.Use("7", later, later) {
		t.Errorf("nonce older than the window is still refused")
	}
}
