package handler

import (
	"context"
	"time"
)

// budget splits the time to an invocation's deadline: new API calls start
// until stopAt, calls end by endAt, events are published until publishBy and
// kept in the ledger until keepBy, so the response is back before the
// deadline.
type budget struct {
	stopAt, endAt, publishBy, keepBy, deadline time.Time
}

// timeBudget makes the budget of an invocation. callTimeout is how long an
// SDK call without a context may outlive its abandonment: no such call starts
// so late that its goroutine would outlive the invocation.
func (h *Handler) timeBudget(ctx context.Context, start time.Time, callTimeout time.Duration) budget {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(15 * time.Minute)
	}
	total := deadline.Sub(start)
	margin := h.Config.DeadlineMargin
	if margin == 0 {
		margin = min(max(total/5, 500*time.Millisecond), 30*time.Second)
	}
	// The last calls of the run (ledger writes near stopAt, the last
	// publish, the last keep) must end before the deadline.
	// When the invocation is long enough (FC's timeout is minutes), its last
	// calls must also end before the deadline; a short one keeps its
	// proportions and accepts that an abandoned call may end after it.
	long := callTimeout > 0 && total >= 4*callTimeout
	if long {
		margin = max(margin, min(2*callTimeout+time.Second, total/2))
	}
	b := budget{stopAt: deadline.Add(-margin), endAt: deadline.Add(-margin / 2), publishBy: deadline.Add(-margin / 5),
		keepBy: deadline.Add(-margin / 10), deadline: deadline}
	if long {
		b.keepBy = earliest(b.keepBy, deadline.Add(-callTimeout-250*time.Millisecond))
		b.publishBy = earliest(b.publishBy, b.keepBy.Add(-time.Second))
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
