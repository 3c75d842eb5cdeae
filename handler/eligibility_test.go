package handler

import (
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
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
		{with(func(g *Gateway) { g.Status = "Offline" }), upgrade.ReasonOffline},
		{with(func(g *Gateway) { g.Status = "Ordered" }), upgrade.ReasonNotActivated},
		{with(func(g *Gateway) { g.Status = "received" }), upgrade.ReasonNotActivated},
		{with(func(g *Gateway) { g.Status = "Arrearage" }), upgrade.ReasonExpired},
		{with(func(g *Gateway) { g.Status = "Unconfirmed" }), upgrade.ReasonStateUnknown},
		{with(func(g *Gateway) { g.Status = "Exploded" }), upgrade.ReasonStateUnknown},
		{with(func(g *Gateway) { g.EndTime = now }), upgrade.ReasonExpired},
		{with(func(g *Gateway) { g.EndTime = time.Time{} }), ""},
		{with(func(g *Gateway) { g.CcnID = "" }), upgrade.ReasonNotBoundCCN},
		{with(func(g *Gateway) { g.SerialNumbers = nil }), upgrade.ReasonNoDevice},
	}
	for _, c := range cases {
		if got := ineligible(c.g, now); got != c.want {
			t.Errorf("ineligible(%+v) = %q, want %q", c.g, got, c.want)
		}
	}
}
