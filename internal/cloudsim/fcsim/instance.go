package fcsim

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const apiPrefix = "/2020-11-11/runtime/invocation/"

// instance is one function process with its own runtime API listener.
type instance struct {
	rt   *Runtime
	pid  int
	addr string // FC_RUNTIME_API
	srv  *http.Server
	logs *router

	queue chan *invocation // unbuffered: a /next handler takes one at a time

	started   time.Time
	pollOnce  sync.Once
	polled    chan struct{} // closed at the first GET /next
	firstPoll time.Time     // set before polled closes
	dead      chan struct{} // closed when the process has exited and its output is read
}

func (r *Runtime) startInstance(seq int) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fcsim: %w", err)
	}
	in := &instance{
		rt:     r,
		addr:   ln.Addr().String(),
		logs:   newRouter(),
		queue:  make(chan *invocation),
		polled: make(chan struct{}),
		dead:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"next", in.next)
	mux.HandleFunc("POST "+apiPrefix+"{id}/response", in.result(true))
	mux.HandleFunc("POST "+apiPrefix+"{id}/error", in.result(false))
	in.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = in.srv.Serve(ln) }()

	cmd := exec.Command(r.cfg.Binary)
	cmd.Dir = r.cfg.Dir
	cmd.Env = r.env(in.addr, seq)
	// Pipes, not files: should this process die without Close, the orphan's
	// next write (the SDK logs every refused /next) gets SIGPIPE and ends it.
	cmd.Stdout = stream{out: &r.out, dst: r.cfg.Stdout, logs: in.logs}
	cmd.Stderr = stream{out: &r.out, dst: r.cfg.Stderr}
	// Its own process group, so a kill reaches anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Wait must not hang on a grandchild that keeps the pipes open.
	cmd.WaitDelay = time.Second
	in.started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = in.srv.Close()
		return nil, fmt.Errorf("fcsim: start %s: %w", r.cfg.Binary, err)
	}
	in.pid = cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		in.logs.flush()
		r.mu.Lock()
		delete(r.live, in)
		r.mu.Unlock()
		close(in.dead)
		// Only now: a live SDK loop would flood on a refused connection.
		_ = in.srv.Close()
	}()
	return in, nil
}

// env is FC's environment for an instance (§1.1 of the reference notes) on
// top of the function's own variables; FC's win on a clash.
func (r *Runtime) env(addr string, seq int) []string {
	c := r.cfg
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}
	env = append(env, c.Env...)
	env = append(env,
		"FC_RUNTIME_API="+addr,
		"FC_FUNC_CODE_PATH="+c.Dir,
		"FC_FUNCTION_NAME="+c.FunctionName,
		"FC_FUNCTION_HANDLER="+c.Handler,
		"FC_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemoryMB),
		"FC_REGION="+c.Region,
		"FC_ACCOUNT_ID="+c.AccountID,
		fmt.Sprintf("FC_INSTANCE_ID=c-fcsim-%d-%s", seq, newRequestID()[:8]),
	)
	if c.Credentials != nil {
		cred := c.Credentials()
		env = append(env,
			"ALIBABA_CLOUD_ACCESS_KEY_ID="+cred.AccessKeyID,
			"ALIBABA_CLOUD_ACCESS_KEY_SECRET="+cred.AccessKeySecret,
			"ALIBABA_CLOUD_SECURITY_TOKEN="+cred.SecurityToken,
		)
	}
	return env
}

// next is GET …/next: block until an invocation is queued. Never answer
// anything but 200 to a live process: the SDK retries at once, in a busy loop.
func (in *instance) next(w http.ResponseWriter, req *http.Request) {
	in.pollOnce.Do(func() {
		in.firstPoll = time.Now()
		close(in.polled)
	})
	select {
	case iv := <-in.queue:
		for k, v := range in.rt.deliver(in, iv) {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(iv.payload)
	case <-req.Context().Done():
	case <-in.dead:
	}
}

// result is POST …/{id}/response (ok) and …/{id}/error.
func (in *instance) result(ok bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := in.rt.claim(in, req.PathValue("id"), outcome{ok: ok, body: body, at: time.Now()})
		w.WriteHeader(status)
	}
}

func (in *instance) hasPolled() bool {
	select {
	case <-in.polled:
		return true
	default:
		return false
	}
}

func (in *instance) exited() bool {
	select {
	case <-in.dead:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process group. Not after the exit: the group id could
// belong to someone else by then.
func (in *instance) kill() {
	if !in.exited() {
		_ = syscall.Kill(-in.pid, syscall.SIGKILL)
	}
}

// stop kills the process, waits for it, and only then closes the listener.
func (in *instance) stop() {
	in.kill()
	<-in.dead
	_ = in.srv.Close()
}
