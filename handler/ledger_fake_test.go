package handler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// fakeLedger keeps records in memory with the conditional-write rule of the
// real one: a write must follow the stored revision.
type fakeLedger struct {
	mu    sync.Mutex
	rows  map[string]Record
	docs  map[string]Doc
	audit []upgrade.AuditEntry
	kept  []KeptEvent // the outbox, oldest first
	keeps int         // keys given so far
	fail  func(op string) error
	// onGetDoc, onGet and onPut, when set, see every document read, record
	// read and record write (a test may panic).
	onGetDoc func(id string)
	onGet    func(ids []string)
	onPut    func(r Record)
	// afterPutDoc, when set, sees every document written, once it is.
	afterPutDoc func(d Doc)
	// failDoc, when set, decides the error of a document's read.
	failDoc func(id string) error
}

func (l *fakeLedger) KeepEvents(ctx context.Context, evs []events.CloudEvent) error {
	if err := l.err("KeepEvents"); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.keeps++
		l.kept = append(l.kept, KeptEvent{Key: fmt.Sprintf("outbox#%06d", l.keeps), Event: ev})
	}
	return nil
}

func (l *fakeLedger) KeptEvents(ctx context.Context, max int) ([]KeptEvent, error) {
	if err := l.err("KeptEvents"); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.kept[:min(max, len(l.kept))]), nil
}

func (l *fakeLedger) DropEvents(ctx context.Context, keys []string) error {
	if err := l.err("DropEvents"); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept = slices.DeleteFunc(l.kept, func(k KeptEvent) bool { return slices.Contains(keys, k.Key) })
	return nil
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{rows: map[string]Record{}, docs: map[string]Doc{}}
}

func (l *fakeLedger) GetDoc(ctx context.Context, id string) (Doc, bool, error) {
	if err := l.err("GetDoc"); err != nil {
		return Doc{}, false, err
	}
	if l.failDoc != nil {
		if err := l.failDoc(id); err != nil {
			return Doc{}, false, err
		}
	}
	if l.onGetDoc != nil {
		l.onGetDoc(id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.docs[id]
	return d, ok, nil
}

func (l *fakeLedger) PutDoc(ctx context.Context, d Doc) error {
	if err := l.err("PutDoc"); err != nil {
		return err
	}
	l.mu.Lock()
	cur, ok := l.docs[d.ID]
	if (!ok && d.Rev != 1) || (ok && cur.Rev != d.Rev-1) {
		l.mu.Unlock()
		return ErrConflict
	}
	l.docs[d.ID] = d
	l.mu.Unlock()
	if l.afterPutDoc != nil {
		l.afterPutDoc(d)
	}
	return nil
}

func (l *fakeLedger) ListDocs(ctx context.Context, prefix string) ([]Doc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Doc
	for id, d := range l.docs {
		if strings.HasPrefix(id, prefix) {
			out = append(out, d)
		}
	}
	return out, nil
}

func key(id string, vt upgrade.VersionType) string { return id + "/" + string(vt) }

func (l *fakeLedger) err(op string) error {
	if l.fail != nil {
		return l.fail(op)
	}
	return nil
}

func (l *fakeLedger) Get(ctx context.Context, vt upgrade.VersionType, ids []string) (map[string]Record, error) {
	if err := l.err("Get"); err != nil {
		return nil, err
	}
	if l.onGet != nil {
		l.onGet(ids)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]Record{}
	for _, id := range ids {
		if r, ok := l.rows[key(id, vt)]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func (l *fakeLedger) Put(ctx context.Context, r Record) error {
	if err := l.err("Put"); err != nil {
		return err
	}
	if l.onPut != nil {
		l.onPut(r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.rows[key(r.Gateway, r.VersionType)]
	if (!ok && r.Rev != 1) || (ok && cur.Rev != r.Rev-1) {
		return ErrConflict
	}
	l.rows[key(r.Gateway, r.VersionType)] = r
	return nil
}

func (l *fakeLedger) Scan(ctx context.Context, states ...State) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	for _, r := range l.rows {
		if slices.Contains(states, r.State) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l *fakeLedger) Audit(ctx context.Context, e upgrade.AuditEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.audit = append(l.audit, e)
	return nil
}

func (l *fakeLedger) History(ctx context.Context, gateway string) ([]upgrade.AuditEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []upgrade.AuditEntry
	for _, e := range l.audit {
		if e.Gateway == gateway {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *fakeLedger) row(id string) Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rows[key(id, upgrade.VersionDevice)]
}

type fakeQueue struct {
	mu   sync.Mutex
	msgs []QueueMessage
	// onSend, when set, sees every call before its messages are queued.
	onSend func(msgs []QueueMessage)
}

func (q *fakeQueue) Send(ctx context.Context, msgs []QueueMessage) error {
	if q.onSend != nil {
		q.onSend(msgs)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, msgs...)
	return nil
}
