package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Ledger is the durable record of upgrades: a claim before every update call,
// what the call did, what verification found, the attempt budget, and an
// audit trail. UpdateSmartAccessGatewayVersion is not idempotent, MNS delivers
// at least once, FC retries failed async invocations and workers can meet on
// one gateway: the ledger is what makes every one of those produce at most
// one update call.
type Ledger interface {
	// Get returns the records of the gateways (at most 100 ids) for one
	// version type; gateways without a record are absent from the map.
	Get(ctx context.Context, vt upgrade.VersionType, ids []string) (map[string]Record, error)
	// Put writes r if the stored record is still the one r follows: none
	// when r.Rev is 1, revision r.Rev-1 otherwise. ErrConflict means
	// another writer came first. After an ambiguous failure (a lost reply)
	// implementations read back and succeed if the stored record is r.
	Put(ctx context.Context, r Record) error
	// Scan returns every record in one of the states.
	Scan(ctx context.Context, states ...State) ([]Record, error)
	// Audit appends an entry to a gateway's history.
	Audit(ctx context.Context, e upgrade.AuditEntry) error
	// History returns a gateway's audit trail, oldest first.
	History(ctx context.Context, gateway string) ([]upgrade.AuditEntry, error)

	// Documents are small JSON values kept beside the records: a rollout's
	// state, the kill switch. GetDoc reports found false for none; PutDoc
	// writes under the same revision rule as Put, and finds a revision with
	// its own Writer and body already there (its reply was lost) no conflict.
	GetDoc(ctx context.Context, id string) (d Doc, found bool, err error)
	PutDoc(ctx context.Context, d Doc) error
	// ListDocs returns the documents whose id starts with prefix.
	ListDocs(ctx context.Context, prefix string) ([]Doc, error)

	// The outbox: events that could not be published, kept for a later
	// run. KeepEvents stores them; KeptEvents returns up to max of them,
	// oldest first; DropEvents deletes those published since, by key.
	KeepEvents(ctx context.Context, evs []events.CloudEvent) error
	KeptEvents(ctx context.Context, max int) ([]KeptEvent, error)
	DropEvents(ctx context.Context, keys []string) error
}

// KeptEvent is an event of the outbox, under the key the ledger keeps it.
type KeptEvent struct {
	Key   string
	Event events.CloudEvent
}

// Doc is a document of the ledger: a rollout's state, the kill switch, the
// outbox's drain lease, a forced batch. Documents are JSON written by this
// function and read back by it and by the versions before and after it: a
// rollback must not break on a field a newer version added. So each is
// decoded (beside its type) tolerant of fields it does not know, which
// encoding/json skips, and strict on those it does: a value of the wrong
// type or out of range is an error naming the document, never a number
// quietly read as zero.
type Doc struct {
	ID   string
	Rev  int64
	Body []byte // JSON
	// Writer is a token of the write that made this revision (putDoc's):
	// a retry after a lost reply recognises its own write by it, not by
	// the body, which another writer may have written the same (two chunks
	// taking the same share of the night's cap from the same count).
	Writer string
}

// getDoc reads a document, retrying temporary failures.
func getDoc(ctx context.Context, l Ledger, c *caller, id string) (d Doc, found bool, err error) {
	type got struct {
		d     Doc
		found bool
	}
	g, err := retrying(ctx, c, func(ctx context.Context) (got, error) {
		d, found, err := l.GetDoc(ctx, id)
		return got{d, found}, err
	})
	return g.d, g.found, err
}

// putDoc writes a document, retrying temporary failures, under a writer
// token of its own that every retry carries.
func putDoc(ctx context.Context, l Ledger, c *caller, d Doc) error {
	d.Writer = newToken()
	_, err := retrying(ctx, c, func(ctx context.Context) (struct{}, error) { return struct{}{}, l.PutDoc(ctx, d) })
	return err
}

// newToken is a random id: a claim's, a document write's.
func newToken() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ErrConflict is returned by Ledger.Put when the record changed since it was
// read: another worker claimed or resolved the gateway first.
var ErrConflict = errors.New("ledger: the record changed since it was read")

// State is where a gateway's upgrade stands.
type State string

// The states of a record.
const (
	StateClaimed    State = "claimed"    // an update call is about to be made (LeaseUntil protects it)
	StateRequested  State = "requested"  // the call was accepted; verification is due by VerifyBy
	StateVerified   State = "verified"   // the device reported the target
	StateUnverified State = "unverified" // it did not by VerifyBy
	StateFailed     State = "failed"     // the API refused the upgrade
	StateReleased   State = "released"   // a claim given back without an upgrade (skipped, deferred, never called)
)

// Record is one gateway's upgrade state for one version type.
type Record struct {
	Gateway      string
	Region       string
	Model        string // the hardware model: a rollout is per model
	VersionType  upgrade.VersionType
	Rev          int64 // every write increments it; writes are conditional on it
	State        State
	Target       string
	From         string
	Serial       string // the device acted on (HA pairs: one at a time)
	ClaimID      string
	LeaseUntil   time.Time
	VerifyBy     time.Time
	RunID        string
	RequestID    string // the FC request id of the run that wrote the record
	APIRequestID string // UpdateSmartAccessGatewayVersion's RequestId
	Trigger      events.Trigger
	Correlation  string
	ClaimedAt    time.Time
	RequestedAt  time.Time
	VerifiedAt   time.Time
	Attempts     int // consecutive failed or unverified upgrades
	PenaltyUntil time.Time
	LastError    string
	UpdatedAt    time.Time
}

// pending reports whether the record waits for an upgrade to be confirmed.
func (r Record) pending() bool { return r.State == StateClaimed || r.State == StateRequested }

// inFlight reports whether the record's upgrade may be under way at now: a
// live claim, or a requested upgrade not yet past its verification deadline.
// Another version type of the gateway waits for it.
func (r Record) inFlight(now time.Time) bool {
	return r.State == StateClaimed && now.Before(r.LeaseUntil) || r.State == StateRequested && now.Before(r.VerifyBy)
}

// WorkQueue sends requests to the function's own work queue (WORK_QUEUE).
type WorkQueue interface {
	Send(ctx context.Context, msgs []QueueMessage) error
}

// QueueMessage is one message for the work queue.
type QueueMessage struct {
	Body  string
	Delay time.Duration
}
