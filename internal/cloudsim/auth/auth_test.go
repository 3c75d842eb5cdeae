package auth

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	k := NewKeyring(func() time.Time { return now })
	ak := k.AddAccessKey("1234567890123456")
	sts := k.IssueSTS("1234567890123456", time.Hour)
	other := k.IssueSTS("1234567890123456", time.Hour)

	if ak.IsSTS() || !sts.IsSTS() {
		t.Fatalf("IsSTS: ak=%v sts=%v", ak.IsSTS(), sts.IsSTS())
	}
	cases := []struct {
		name, id, token string
		want            Problem
	}{
		{"permanent key", ak.AccessKeyID, "", OK},
		{"permanent key with a token", ak.AccessKeyID, sts.SecurityToken, TokenMismatch},
		{"sts key", sts.AccessKeyID, sts.SecurityToken, OK},
		{"sts key without token", sts.AccessKeyID, "", MissingToken},
		{"sts key with another key's token", sts.AccessKeyID, other.SecurityToken, TokenMismatch},
		{"sts key with garbage token", sts.AccessKeyID, "garbage", TokenMalformed},
		{"unknown key", "LTAI5tnope", "", UnknownKey},
	}
	for _, c := range cases {
		if _, got := k.Check(c.id, c.token); got != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, got, c.want)
		}
	}
	now = now.Add(time.Hour)
	if _, got := k.Check(sts.AccessKeyID, sts.SecurityToken); got != TokenExpired {
		t.Errorf("after the ttl: Check = %v, want %v", got, TokenExpired)
	}
	if c, got := k.Check(ak.AccessKeyID, ""); got != OK || c.AccessKeySecret != ak.AccessKeySecret {
		t.Errorf("permanent keys never expire: %v", got)
	}
}
