package observability

import (
	"errors"
	"fmt"

	"github.com/alibabacloud-go/tea/tea"

	sls "github.com/alibabacloud-go/sls-20201230/v6/client"
)

// Target is where the kit goes: the function's log project and logstore
// (s.yaml's vars.logProject and vars.logStore) in its region, and the SLS
// alert action policy that notifies people (created once in the console:
// the DingTalk robot or mail of whoever is on call).
type Target struct {
	Region, Project, Logstore string
	ActionPolicy              string
}

// SLS is the part of the official SLS client Apply uses.
type SLS interface {
	GetLogStore(project, logstore *string) (*sls.GetLogStoreResponse, error)
	UpdateLogStore(project, logstore *string, req *sls.UpdateLogStoreRequest) (*sls.UpdateLogStoreResponse, error)
	GetIndex(project, logstore *string) (*sls.GetIndexResponse, error)
	CreateIndex(project, logstore *string, req *sls.CreateIndexRequest) (*sls.CreateIndexResponse, error)
	UpdateIndex(project, logstore *string, req *sls.UpdateIndexRequest) (*sls.UpdateIndexResponse, error)
	GetSavedSearch(project, name *string) (*sls.GetSavedSearchResponse, error)
	CreateSavedSearch(project *string, req *sls.CreateSavedSearchRequest) (*sls.CreateSavedSearchResponse, error)
	UpdateSavedSearch(project, name *string, req *sls.UpdateSavedSearchRequest) (*sls.UpdateSavedSearchResponse, error)
	GetAlert(project, name *string) (*sls.GetAlertResponse, error)
	CreateAlert(project *string, req *sls.CreateAlertRequest) (*sls.CreateAlertResponse, error)
	UpdateAlert(project, name *string, req *sls.UpdateAlertRequest) (*sls.UpdateAlertResponse, error)
	GetDashboard(project, name *string) (*sls.GetDashboardResponse, error)
	CreateDashboard(project *string, req *sls.CreateDashboardRequest) (*sls.CreateDashboardResponse, error)
	UpdateDashboard(project, name *string, req *sls.UpdateDashboardRequest) (*sls.UpdateDashboardResponse, error)
}

var _ SLS = (*sls.Client)(nil)

// Apply creates what of the kit is missing in the target and updates what
// exists, so it can run again after any change to the kit; it returns what it
// did, one line each. The logstore itself must exist (deploy/README.md
// creates it); Apply sets its retention to RetentionDays. The MNS
// subscriptions are not SLS's: deploy/README.md creates them.
func Apply(c SLS, k Kit, t Target) ([]string, error) {
	if t.Region == "" || t.Project == "" || t.Logstore == "" || t.ActionPolicy == "" {
		return nil, errors.New("observability: region, project, logstore and action policy are all needed")
	}
	var done []string
	p, ls := tea.String(t.Project), tea.String(t.Logstore)

	store, err := c.GetLogStore(p, ls)
	if err != nil {
		return done, fmt.Errorf("logstore %s/%s: %w", t.Project, t.Logstore, err)
	}
	if s := store.Body; s == nil || tea.Int32Value(s.Ttl) != RetentionDays {
		upd := &sls.UpdateLogStoreRequest{LogstoreName: ls, Ttl: tea.Int32(RetentionDays)}
		if s != nil {
			upd.ShardCount, upd.AutoSplit, upd.MaxSplitShard = s.ShardCount, s.AutoSplit, s.MaxSplitShard
			upd.AppendMeta, upd.EnableTracking, upd.Mode, upd.HotTtl = s.AppendMeta, s.EnableTracking, s.Mode, s.HotTtl
			upd.TelemetryType = s.TelemetryType
		}
		if _, err := c.UpdateLogStore(p, ls, upd); err != nil {
			return done, fmt.Errorf("logstore retention: %w", err)
		}
		done = append(done, fmt.Sprintf("updated logstore %s: ttl %d days", t.Logstore, RetentionDays))
	}

	exists, err := found(c.GetIndex(p, ls))
	if err == nil && exists {
		_, err = c.UpdateIndex(p, ls, &sls.UpdateIndexRequest{Body: k.Index})
	} else if err == nil {
		_, err = c.CreateIndex(p, ls, &sls.CreateIndexRequest{Body: k.Index})
	}
	if done, err = step(done, "index of "+t.Logstore, exists, err); err != nil {
		return done, err
	}

	for _, s := range k.SavedSearches {
		s.Logstore = ls
		exists, err := found(c.GetSavedSearch(p, s.SavedsearchName))
		if err == nil && exists {
			_, err = c.UpdateSavedSearch(p, s.SavedsearchName, &sls.UpdateSavedSearchRequest{DisplayName: s.DisplayName,
				Logstore: s.Logstore, SavedsearchName: s.SavedsearchName, SearchQuery: s.SearchQuery, Topic: s.Topic})
		} else if err == nil {
			_, err = c.CreateSavedSearch(p, &sls.CreateSavedSearchRequest{DisplayName: s.DisplayName,
				Logstore: s.Logstore, SavedsearchName: s.SavedsearchName, SearchQuery: s.SearchQuery, Topic: s.Topic})
		}
		if done, err = step(done, "saved search "+tea.StringValue(s.SavedsearchName), exists, err); err != nil {
			return done, err
		}
	}

	for _, a := range k.Alerts {
		for _, q := range a.Configuration.QueryList {
			q.Region, q.Project, q.Store = tea.String(t.Region), p, ls
		}
		if a.Configuration.PolicyConfiguration == nil {
			a.Configuration.PolicyConfiguration = &sls.PolicyConfiguration{}
		}
		a.Configuration.PolicyConfiguration.ActionPolicyId = tea.String(t.ActionPolicy)
		exists, err := found(c.GetAlert(p, a.Name))
		if err == nil && exists {
			_, err = c.UpdateAlert(p, a.Name, &sls.UpdateAlertRequest{Configuration: a.Configuration,
				Description: a.Description, DisplayName: a.DisplayName, Schedule: a.Schedule})
		} else if err == nil {
			_, err = c.CreateAlert(p, a)
		}
		if done, err = step(done, "alert "+tea.StringValue(a.Name), exists, err); err != nil {
			return done, err
		}
	}

	d := k.Dashboard
	for _, ch := range d.Charts {
		ch.Search["logstore"] = t.Logstore
	}
	exists, err = found(c.GetDashboard(p, d.DashboardName))
	if err == nil && exists {
		_, err = c.UpdateDashboard(p, d.DashboardName, &sls.UpdateDashboardRequest{Attribute: d.Attribute, Charts: d.Charts,
			DashboardName: d.DashboardName, Description: d.Description, DisplayName: d.DisplayName})
	} else if err == nil {
		_, err = c.CreateDashboard(p, &sls.CreateDashboardRequest{Body: d})
	}
	done, err = step(done, "dashboard "+tea.StringValue(d.DashboardName), exists, err)
	return done, err
}

// found tells a Get that found its resource from one answered 404, and
// passes any other error on.
func found[T any](_ T, err error) (bool, error) {
	var e *tea.SDKError
	if errors.As(err, &e) && tea.IntValue(e.StatusCode) == 404 {
		return false, nil
	}
	return err == nil, err
}

func step(done []string, what string, existed bool, err error) ([]string, error) {
	if err != nil {
		return done, fmt.Errorf("%s: %w", what, err)
	}
	verb := "created"
	if existed {
		verb = "updated"
	}
	return append(done, verb+" "+what), nil
}
