package handler

import (
	"testing"
	"time"
)

func TestIneligible(t *testing.T) {
	now := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	ok := Gateway{Status: "Active", CcnID: "ccn-1", SerialNumbers: []string{"sage1"}, EndTime: now.Add(time.Hour)}
	with := func(f func(*Gateway)) Gateway { g := ok; f(&g); return g }
	cases := []struct {
		g    Gateway
		want string
	}{
		{ok, ""},
		{with(func(g *Gateway) { g.Status = "ACTIVE" }), ""}, // older docs spell it in capitals
		{with(func(g *Gateway) { g.Status = "Offline" }), ReasonOffline},
		{with(func(g *Gateway) { g.Status = "Ordered" }), ReasonNotActivated},
		{with(func(g *Gateway) { g.Status = "received" }), ReasonNotActivated},
		{with(func(g *Gateway) { g.Status = "Arrearage" }), ReasonExpired},
		{with(func(g *Gateway) { g.Status = "Unconfirmed" }), ReasonStateUnknown},
		{with(func(g *Gateway) { g.Status = "Exploded" }), ReasonStateUnknown},
		{with(func(g *Gateway) { g.EndTime = now }), ReasonExpired},
		{with(func(g *Gateway) { g.EndTime = time.Time{} }), ""},
		{with(func(g *Gateway) { g.CcnID = "" }), ReasonNotBoundCCN},
		{with(func(g *Gateway) { g.SerialNumbers = nil }), ReasonNoDevice},
	}
	for _, c := range cases {
		if got := ineligible(c.g, now); got != c.want {
			t.Errorf("ineligible(%+v) = %q, want %q", c.g, got, c.want)
		}
	}
}
