package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Each instance reaches the tracer on a port of its own: its requests are
// told apart, and each is named by its service and action.
func TestTheTracerTellsTheInstancesApart(t *testing.T) {
	cloud := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") == "Throttled" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer cloud.Close()
	tr, err := startTracer(cloud.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	endpoint := func(i int) string {
		env, err := tr.env(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range env {
			if u, ok := strings.CutPrefix(kv, "SAG_ENDPOINT="); ok {
				return u
			}
		}
		t.Fatalf("no SAG_ENDPOINT in %v", env)
		return ""
	}
	first, second := endpoint(0), endpoint(1)
	for _, u := range []string{first + "/?Action=DescribeSmartAccessGatewayVersions", second + "/?Action=Throttled", second + "/topics/t/messages"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := map[string]Span{}
	for _, s := range tr.Spans() {
		got[s.Service+" "+s.Action] = s
	}
	want := map[string]Span{
		"SAG DescribeSmartAccessGatewayVersions": {Instance: 0, Status: 200},
		"SAG Throttled":                          {Instance: 1, Status: 400},
		"MNS GET topics":                         {Instance: 1, Status: 200},
	}
	if len(got) != len(want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	for k, w := range want {
		if s, ok := got[k]; !ok || s.Instance != w.Instance || s.Status != w.Status {
			t.Errorf("%s: %+v, want instance %d, status %d", k, s, w.Instance, w.Status)
		}
	}
}
