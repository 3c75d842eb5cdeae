package chaos

import (
	"net"
	"net/http"
)

// badGatewayPage is what Alibaba Cloud's load balancers (Tengine) answer
// when the service behind them fails.
const badGatewayPage = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>Tengine</center>
</body>
</html>
`

// WriteBadGateway answers as a failing load balancer: an HTML 502, not the
// service's own error format.
func WriteBadGateway(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte(badGatewayPage))
}

// Hijack takes the client's connection over so that the caller can close it
// without an answer (after logging the call: the client may look at the log
// as soon as the connection closes). It returns nil when the connection
// cannot be taken over (HTTP/2); the caller then answers instead.
func Hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	return conn
}
