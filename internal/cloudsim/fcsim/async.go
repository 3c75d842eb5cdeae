package fcsim

import (
	"context"
	"sync"
)

// asyncQueue is FC's async invocation queue: one consumer, first in, first out.
type asyncQueue struct {
	mu      sync.Mutex
	jobs    []asyncJob
	running bool          // a consumer goroutine is draining jobs
	pending int           // queued or running jobs
	idle    chan struct{} // closed when pending drops to 0
}

type asyncJob struct {
	payload []byte
	opts    InvokeOptions
}

// InvokeAsync queues an invocation and returns its request id at once, like
// FC's InvokeFunction with X-Fc-Invocation-Type: Async. A try that fails
// (error, panic, timeout, crash) is retried up to MaxAsyncRetryAttempts times
// with the same request id and x-fc-retry-count counting up, without FC's
// backoff between tries. Then OnAsyncResult receives the outcome.
func (r *Runtime) InvokeAsync(payload []byte, opts InvokeOptions) string {
	if opts.RequestID == "" {
		opts.RequestID = newRequestID()
	}
	q := &r.async
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, asyncJob{payload: payload, opts: opts})
	if q.pending == 0 {
		q.idle = make(chan struct{})
	}
	q.pending++
	if !q.running {
		q.running = true
		go r.consume()
	}
	return opts.RequestID
}

// WaitAsync waits until every queued asynchronous invocation has finished and
// its OnAsyncResult has returned.
func (r *Runtime) WaitAsync(ctx context.Context) error {
	q := &r.async
	q.mu.Lock()
	idle := q.idle
	pending := q.pending
	q.mu.Unlock()
	if pending == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runtime) consume() {
	q := &r.async
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		job := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()

		rec := r.runAsync(job)
		if r.cfg.OnAsyncResult != nil {
			r.cfg.OnAsyncResult(rec)
		}

		q.mu.Lock()
		if q.pending--; q.pending == 0 {
			close(q.idle)
		}
		q.mu.Unlock()
	}
}

func (r *Runtime) runAsync(job asyncJob) AsyncRecord {
	rec := AsyncRecord{RequestID: job.opts.RequestID, Payload: job.payload}
	base := job.opts.RetryCount
	for n := 0; n <= r.cfg.MaxAsyncRetryAttempts; n++ {
		opts := job.opts
		opts.RetryCount = base + n
		res, err := r.Invoke(r.ctx, job.payload, opts)
		if err != nil {
			rec.Err = err
			break
		}
		rec.Attempts = append(rec.Attempts, res)
		rec.Result = res
		if !res.Failed {
			rec.Success = true
			break
		}
	}
	return rec
}
