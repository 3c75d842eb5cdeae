// Package auth is the simulated cloud's account and credential store, shared by
// every emulator so one STS credential works against SAG and MNS alike, as it
// does on Alibaba Cloud.
//
// Expiry is judged by the machine's clock (the SDKs sign with it), never by a
// simulated clock.
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// Credential is an access key, permanent ("LTAI…") or temporary ("STS.…" with a
// security token and an expiry).
type Credential struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	AccountID       string
	Expiration      time.Time
	// User is the RAM user a permanent key belongs to; "" for the account's
	// own (root) key and for STS credentials. STS's GetCallerIdentity
	// (stssim) names the caller by it.
	User string
}

// IsSTS reports whether the credential is a temporary STS credential.
func (c Credential) IsSTS() bool { return strings.HasPrefix(c.AccessKeyID, "STS.") }

// Problem is why a presented credential is refused. Each emulator maps it to
// its own service's error code.
type Problem int

// The problems Check can find.
const (
	OK             Problem = iota
	UnknownKey             // no such access key id
	MissingToken           // an STS key without its security token
	TokenMismatch          // a token that belongs to another key, or a token on a permanent key
	TokenExpired           // the STS credential has expired
	TokenMalformed         // the token is not one this cloud issued
)

func (p Problem) String() string {
	return [...]string{"ok", "unknown access key", "missing security token",
		"security token does not match the access key", "security token expired",
		"malformed security token"}[p]
}

// Keyring holds every credential the simulated cloud knows.
type Keyring struct {
	mu   sync.Mutex
	byID map[string]Credential
	now  func() time.Time
}

// NewKeyring returns an empty keyring. now tells the time for STS expiry; nil
// means time.Now.
func NewKeyring(now func() time.Time) *Keyring {
	if now == nil {
		now = time.Now
	}
	return &Keyring{byID: map[string]Credential{}, now: now}
}

// Add stores c, replacing any credential with the same id.
func (k *Keyring) Add(c Credential) Credential {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byID[c.AccessKeyID] = c
	return c
}

// AddAccessKey creates a permanent access key for account.
func (k *Keyring) AddAccessKey(account string) Credential {
	return k.Add(Credential{
		AccessKeyID:     "LTAI5t" + randomHex(9),
		AccessKeySecret: randomBase62(30),
		AccountID:       account,
	})
}

// AddUserKey creates a permanent access key of a RAM user of account, as an
// operator has.
func (k *Keyring) AddUserKey(account, user string) Credential {
	c := k.AddAccessKey(account)
	c.User = user
	return k.Add(c)
}

// IssueSTS creates a temporary credential for account valid for ttl, as FC
// hands to each invocation from the function's role.
func (k *Keyring) IssueSTS(account string, ttl time.Duration) Credential {
	return k.Add(Credential{
		AccessKeyID:     "STS.NU" + randomBase62(22),
		AccessKeySecret: randomBase62(44),
		SecurityToken:   "CAIS" + base64.StdEncoding.EncodeToString(randomBytes(96)),
		AccountID:       account,
		Expiration:      k.now().Add(ttl),
	})
}

// Lookup returns the credential with access key id, if any.
func (k *Keyring) Lookup(id string) (Credential, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.byID[id]
	return c, ok
}

// Check validates an access key id and the security token presented with it.
// On OK it returns the credential, whose secret the caller uses to verify the
// request's signature.
func (k *Keyring) Check(id, token string) (Credential, Problem) {
	c, ok := k.Lookup(id)
	if !ok {
		return Credential{}, UnknownKey
	}
	switch {
	case !c.IsSTS() && token != "":
		return c, TokenMismatch
	case !c.IsSTS():
		return c, OK
	case token == "":
		return c, MissingToken
	case !strings.HasPrefix(token, "CAIS"):
		return c, TokenMalformed
	case token != c.SecurityToken:
		return c, TokenMismatch
	case !k.now().Before(c.Expiration):
		return c, TokenExpired
	}
	return c, OK
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomBase62(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return string(b)
}
