package fcsim

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

const (
	maxLogBytes  = 1 << 20  // per request; FC itself returns far less (x-fc-log-result)
	maxLineBytes = 64 << 10 // longer lines are routed in pieces
	tailBytes    = 64 << 10 // Runtime.Output

	startMarker = "FC Invoke Start RequestId: "
	endMarker   = "FC Invoke End RequestId: " // may be followed by ", Error: …"
)

// output forwards process output to the configured writers, one write at a
// time, and keeps a bounded tail of it.
type output struct {
	mu  sync.Mutex
	buf []byte
}

func (o *output) write(dst io.Writer, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if dst != nil {
		_, _ = dst.Write(p) // a failing writer must not block the process's pipe
	}
	o.buf = append(o.buf, p...)
	if len(o.buf) > 2*tailBytes {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-tailBytes:]...)
	}
}

func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf[max(0, len(o.buf)-tailBytes):])
}

// stream is a process's stdout (logs set) or stderr.
type stream struct {
	out  *output
	dst  io.Writer
	logs *router
}

func (s stream) Write(p []byte) (int, error) {
	s.out.write(s.dst, p)
	if s.logs != nil {
		s.logs.write(p)
	}
	return len(p), nil
}

// logSlice is one request's stdout from its Start marker to its End marker.
type logSlice struct {
	open, done bool
	buf        []byte
	truncated  bool
	ended      chan struct{} // closed at the End marker
}

func (s *logSlice) add(line []byte) {
	if s.truncated {
		return
	}
	if len(s.buf)+len(line) > maxLogBytes {
		s.truncated = true
		s.buf = append(s.buf, "[fcsim: log truncated]\n"...)
		return
	}
	s.buf = append(s.buf, line...)
}

// router cuts a process's stdout into per-request slices. A line goes to
// every request between its markers, except the markers themselves and lines
// of the fccontext logger ("<time> <requestId> [LEVEL] …"), which go to their
// own request only. So concurrent requests (FC serves one at a time per
// instance; local tests may not) keep their tagged lines apart, while untagged
// lines printed during an overlap appear in each.
type router struct {
	mu      sync.Mutex
	partial []byte // the unfinished last line
	midLine bool   // partial continues a line already routed in pieces
	slices  map[string]*logSlice
}

func newRouter() *router { return &router{slices: map[string]*logSlice{}} }

// expect starts collecting for id; its Start marker has not been printed yet.
func (l *router) expect(id string) *logSlice {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &logSlice{ended: make(chan struct{})}
	l.slices[id] = s
	return s
}

func (l *router) drop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.slices, id)
}

func (l *router) text(s *logSlice) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(s.buf)
}

func (l *router) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			if len(l.partial) >= maxLineBytes {
				l.route(l.partial, !l.midLine)
				l.partial, l.midLine = l.partial[:0], true
			}
			return
		}
		line := append(l.partial, p[:i+1]...)
		l.route(line, !l.midLine)
		l.partial, l.midLine = line[:0], false
		p = p[i+1:]
	}
}

// flush routes an unterminated last line once the process has exited.
func (l *router) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.route(l.partial, !l.midLine)
		l.partial = nil
	}
}

// route files one line (or piece of a long line); whole reports whether it
// begins at a line start, where markers and tags are recognised.
func (l *router) route(line []byte, whole bool) {
	if whole {
		text := strings.TrimRight(string(line), "\r\n")
		if id, ok := strings.CutPrefix(text, startMarker); ok {
			if s := l.slices[id]; s != nil && !s.open && !s.done {
				s.open = true
				s.buf = append(s.buf, line...)
			}
			return
		}
		if rest, ok := strings.CutPrefix(text, endMarker); ok {
			id, _, _ := strings.Cut(rest, ",") // request ids have no commas
			if s := l.slices[id]; s != nil && s.open {
				s.open, s.done = false, true
				s.buf = append(s.buf, line...)
				close(s.ended)
			}
			return
		}
		if s := l.tagged(text); s != nil {
			s.add(line)
			return
		}
	}
	for _, s := range l.slices {
		if s.open {
			s.add(line)
		}
	}
}

// tagged returns the open slice a fccontext logger line names, if any.
func (l *router) tagged(text string) *logSlice {
	_, rest, ok := strings.Cut(text, " ")
	if !ok {
		return nil
	}
	id, rest, ok := strings.Cut(rest, " ")
	if !ok || !strings.HasPrefix(rest, "[") {
		return nil
	}
	if s := l.slices[id]; s != nil && s.open {
		return s
	}
	return nil
}
