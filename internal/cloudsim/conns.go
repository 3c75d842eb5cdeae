package cloudsim

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
)

// CountConns makes srv (not started yet) count the connections clients hold
// open to it, and returns the count: a test of an adapter's Close sees its
// kept-alive connections go.
func CountConns(srv *httptest.Server) (open func() int) {
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(conns, c)
		}
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}
