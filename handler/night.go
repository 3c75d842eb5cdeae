package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// MAX_UPGRADES_PER_NIGHT caps the upgrades of a night across every batch and
// instance: each chunk takes its calls from a count in the ledger before it
// calls, and gives back those the service did not accept. A night runs from
// noon to noon in MAINTENANCE_TZ, so a window across midnight is one night.

const nightPrefix = "night#"

// nightDoc is a night's count (a ledger document, one per night).
type nightDoc struct {
	Night string `json:"night"` // its first day, 2006-01-02
	Used  int    `json:"used"`  // upgrades taken, less those given back
}

// nightCap takes upgrades from the night's count for one run.
type nightCap struct {
	limit  int    // 0: no cap
	ledger Ledger // set whenever limit is (ConfigFromEnv's rule)
	lcall  *caller
	loc    *time.Location // MAINTENANCE_TZ
	now    func() time.Time
	stopAt time.Time // a write that races others is tried again until then

	mu      sync.Mutex
	dryUsed int  // a dry run counts here what it would take
	dryRead bool // and reads the night's count once
}

// night names the night t falls in.
func (n *nightCap) night(t time.Time) string {
	return t.In(n.loc).Add(-12 * time.Hour).Format(time.DateOnly)
}

// used reads how many upgrades the night has taken.
func (n *nightCap) used(ctx context.Context) (int, error) {
	doc, _, err := n.read(ctx, n.night(n.now()))
	return doc.Used, err
}

func (n *nightCap) read(ctx context.Context, night string) (nightDoc, int64, error) {
	d, found, err := getDoc(ctx, n.ledger, n.lcall, nightPrefix+night)
	if err != nil || !found {
		return nightDoc{Night: night}, 0, err
	}
	doc, err := decodeNight(d.ID, d.Body)
	return doc, d.Rev, err
}

// take reserves up to want upgrades of tonight and returns how many it got.
// A dry run takes nothing: it counts what it would take on top of what the
// night has taken.
func (n *nightCap) take(ctx context.Context, want int, dry bool) (int, error) {
	if n == nil || n.limit == 0 || want == 0 {
		return want, nil
	}
	if dry {
		n.mu.Lock()
		defer n.mu.Unlock()
		if !n.dryRead {
			used, err := n.used(ctx)
			if err != nil {
				return 0, err
			}
			n.dryUsed, n.dryRead = used, true
		}
		got := max(min(want, n.limit-n.dryUsed), 0)
		n.dryUsed += got
		return got, nil
	}
	var got int
	err := n.change(ctx, func(doc *nightDoc) bool {
		got = max(min(want, n.limit-doc.Used), 0)
		doc.Used += got
		return got > 0
	})
	if err != nil {
		return 0, err
	}
	return got, nil
}

// giveBack returns upgrades taken and not started. A count that cannot be
// written stays taken: the night ends with fewer upgrades, never more.
func (n *nightCap) giveBack(ctx context.Context, count int) error {
	if n == nil || n.limit == 0 || count == 0 {
		return nil
	}
	return n.change(ctx, func(doc *nightDoc) bool {
		doc.Used = max(doc.Used-count, 0)
		return true
	})
}

// change applies f to tonight's count and writes it under the revision
// rule, reading again after another run's write, until the run must stop.
func (n *nightCap) change(ctx context.Context, f func(*nightDoc) (write bool)) error {
	night := n.night(n.now())
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 10*time.Millisecond, 500*time.Millisecond
	for {
		doc, rev, err := n.read(ctx, night)
		if err != nil {
			return fmt.Errorf("reading the night's count: %w", err)
		}
		if !f(&doc) {
			return nil
		}
		body, _ := json.Marshal(doc)
		err = putDoc(ctx, n.ledger, n.lcall, Doc{ID: nightPrefix + night, Rev: rev + 1, Body: body})
		if err == nil {
			return nil
		}
		wait := b.NextBackOff()
		if !errors.Is(err, ErrConflict) || time.Now().Add(wait).After(n.stopAt) {
			return fmt.Errorf("writing the night's count: %w", err)
		}
		time.Sleep(wait)
	}
}

// decodeNight reads a night's count.
func decodeNight(id string, body []byte) (nightDoc, error) {
	var doc nightDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nightDoc{}, fmt.Errorf("night document %s: %w", id, err)
	}
	if doc.Used < 0 {
		return nightDoc{}, fmt.Errorf("night document %s: used is %d, out of range", id, doc.Used)
	}
	return doc, nil
}
