package observability_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sls "github.com/alibabacloud-go/sls-20201230/v6/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/sag-upgrade/sag-upgrade/deploy/observability"
)

// fakeSLS keeps what the SLS API is asked to create, by resource path, and
// answers a Get of a missing one 404, as SLS does. It is reached as an HTTP
// proxy, so the official client keeps its real endpoint and project host.
type fakeSLS struct {
	mu        sync.Mutex
	resources map[string]json.RawMessage
	calls     []string
	hosts     map[string]bool
}

func (f *fakeSLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[r.Host] = true
	body, _ := io.ReadAll(r.Body)
	path := r.URL.Path
	notFound := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errorCode":"NotExist","errorMessage":"`+path+` does not exist"}`)
	}
	switch r.Method {
	case http.MethodGet:
		b, ok := f.resources[path]
		if !ok {
			notFound()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case http.MethodPost:
		key := path
		var named map[string]any
		json.Unmarshal(body, &named)
		for _, name := range []string{"savedsearchName", "name", "dashboardName"} {
			if v, ok := named[name].(string); ok && path != "/logstores" {
				key = path + "/" + v
			}
		}
		if _, ok := f.resources[key]; ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errorCode":"AlreadyExist","errorMessage":"exists"}`)
			return
		}
		f.resources[key] = body
		f.calls = append(f.calls, "POST "+key)
	case http.MethodPut:
		if _, ok := f.resources[path]; !ok {
			notFound()
			return
		}
		f.resources[path] = body
		f.calls = append(f.calls, "PUT "+path)
	}
}

func newFake(t *testing.T) (*fakeSLS, *sls.Client) {
	t.Helper()
	f := &fakeSLS{resources: map[string]json.RawMessage{
		"/logstores/sag-upgrade": json.RawMessage(`{"logstoreName":"sag-upgrade","ttl":30,"shardCount":2,"autoSplit":true,"maxSplitShard":64}`),
	}, hosts: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := sls.NewClient(&openapi.Config{
		AccessKeyId: tea.String("test-key"), AccessKeySecret: tea.String("test-secret"),
		Endpoint: tea.String("cn-shanghai.log.aliyuncs.com"), Protocol: tea.String("http"), HttpProxy: tea.String(srv.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

var target = observability.Target{Region: "cn-shanghai", Project: "sag-upgrade-logs", Logstore: "sag-upgrade", ActionPolicy: "sag-upgrade-oncall"}

// Apply on an empty project creates every part of the kit as the files say,
// with the account's project, logstore and action policy filled in; applied
// again, it updates each and creates nothing.
func TestApplyCreatesThenUpdates(t *testing.T) {
	f, c := newFake(t)
	kit, err := observability.Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := observability.Apply(c, kit, target); err != nil {
		t.Fatal(err)
	}
	want := []string{"PUT /logstores/sag-upgrade", "POST /logstores/sag-upgrade/index"}
	for _, s := range kit.SavedSearches {
		want = append(want, "POST /savedsearches/"+*s.SavedsearchName)
	}
	for _, a := range kit.Alerts {
		want = append(want, "POST /alerts/"+*a.Name)
	}
	want = append(want, "POST /dashboards/"+*kit.Dashboard.DashboardName)
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if !f.hosts["sag-upgrade-logs.cn-shanghai.log.aliyuncs.com"] || len(f.hosts) != 1 {
		t.Errorf("hosts %v: want the project's endpoint only", f.hosts)
	}

	var store struct {
		TTL        int `json:"ttl"`
		ShardCount int `json:"shardCount"`
	}
	json.Unmarshal(f.resources["/logstores/sag-upgrade"], &store)
	if store.TTL != observability.RetentionDays || store.ShardCount != 2 {
		t.Errorf("logstore after Apply: %s", f.resources["/logstores/sag-upgrade"])
	}
	var index sls.Index
	if err := json.Unmarshal(f.resources["/logstores/sag-upgrade/index"], &index); err != nil {
		t.Fatal(err)
	}
	if k := index.Keys[observability.StdoutField]; k == nil || *k.Type != "json" || len(k.JsonKeys) != len(kit.Index.Keys[observability.StdoutField].JsonKeys) {
		t.Errorf("index sent: %s", f.resources["/logstores/sag-upgrade/index"])
	}
	for _, a := range kit.Alerts {
		var got sls.CreateAlertRequest
		if err := json.Unmarshal(f.resources["/alerts/"+*a.Name], &got); err != nil {
			t.Fatal(err)
		}
		q := got.Configuration.QueryList[0]
		if *q.Project != target.Project || *q.Store != target.Logstore || *q.Region != target.Region || *q.Query == "" ||
			*got.Configuration.PolicyConfiguration.ActionPolicyId != target.ActionPolicy || got.Schedule == nil {
			t.Errorf("alert %s sent: %s", *a.Name, f.resources["/alerts/"+*a.Name])
		}
	}
	for _, s := range kit.SavedSearches {
		var got sls.SavedSearch
		json.Unmarshal(f.resources["/savedsearches/"+*s.SavedsearchName], &got)
		if got.Logstore == nil || *got.Logstore != target.Logstore || *got.SearchQuery != *s.SearchQuery {
			t.Errorf("saved search sent: %s", f.resources["/savedsearches/"+*s.SavedsearchName])
		}
	}
	var dash sls.Dashboard
	json.Unmarshal(f.resources["/dashboards/"+*kit.Dashboard.DashboardName], &dash)
	if len(dash.Charts) != len(kit.Dashboard.Charts) {
		t.Fatalf("dashboard sent: %s", f.resources["/dashboards/"+*kit.Dashboard.DashboardName])
	}
	for _, ch := range dash.Charts {
		if ch.Search["logstore"] != target.Logstore || ch.Search["query"] == "" {
			t.Errorf("chart %s searches %v", *ch.Title, ch.Search)
		}
	}

	// Again, from the files: every part exists, so each is updated and the
	// logstore's retention is left alone.
	f.calls = nil
	kit, _ = observability.Load()
	done, err := observability.Apply(c, kit, target)
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range f.calls {
		if !strings.HasPrefix(call, "PUT ") || call == "PUT /logstores/sag-upgrade" {
			t.Errorf("second Apply: %s", call)
		}
	}
	if len(f.calls) != len(want)-1 || len(done) != len(f.calls) {
		t.Errorf("second Apply made %d calls and reported %v", len(f.calls), done)
	}
}

func TestApplyNeedsTheWholeTarget(t *testing.T) {
	_, c := newFake(t)
	kit, _ := observability.Load()
	noPolicy := target
	noPolicy.ActionPolicy = ""
	if _, err := observability.Apply(c, kit, noPolicy); err == nil {
		t.Fatal("Apply without an action policy succeeded")
	}
}
