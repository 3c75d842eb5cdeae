// Package observability is the function's observability as code: the
// logstore's index, saved searches, alert rules and a dashboard in Simple Log
// Service, and the MNS subscriptions that tell people about failed, breaker
// and control events. The kit is the JSON files beside this one, each the body
// of the SLS API call that creates it; scripts/observability creates or
// updates them in an account, and the module's TestObservabilityKitNames
// checks, on simulated nights, that every field and value they name is one the
// function really writes.
//
// Function Compute writes each line the function prints on stdout into one
// field of the log entry, StdoutField; zerolog's JSON line is its value, so
// the index makes that field a JSON field and indexes its keys, and every
// query names a key as message.<key> (zerolog's own text is message.message).
package observability

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	sls "github.com/alibabacloud-go/sls-20201230/v6/client"
)

// StdoutField is the field of an FC log entry that holds a line the function
// printed ("message": FC's execution log fields,
// https://www.alibabacloud.com/help/doc-detail/171396.htm). s.yaml's
// logBeginRule None makes each line an entry of its own.
const StdoutField = "message"

// RetentionDays is how long the logstore keeps the function's log lines: every
// decision, rollout transition and control request with its run, so the
// searches can reach back over a release's whole rollout.
const RetentionDays = 180

//go:embed index.json savedsearches.json alerts.json dashboard.json notifications.json
var files embed.FS

// Notification is a subscription of people to the outcome topic, filtered by
// the message tag the function gives an event (internal/mns.Tag: its type
// after "sag.upgrade.").
type Notification struct {
	SubscriptionName string `json:"subscriptionName"`
	MessageTag       string `json:"messageTag"`
	Why              string `json:"why"`
}

// Kit is the whole of it, as the SLS API takes it. Project, logstore,
// region and action policy are the account's: Apply's caller sets them.
type Kit struct {
	Index         *sls.Index
	SavedSearches []*sls.SavedSearch
	Alerts        []*sls.CreateAlertRequest
	Dashboard     *sls.Dashboard
	Notifications []Notification
}

// Load reads the kit's files, refusing a key the API types do not have (a
// misspelt key would be dropped by the service without a word).
func Load() (Kit, error) { return load(files) }

func load(fsys fs.FS) (Kit, error) {
	var k Kit
	for name, into := range map[string]any{
		"index.json": &k.Index, "savedsearches.json": &k.SavedSearches, "alerts.json": &k.Alerts,
		"dashboard.json": &k.Dashboard, "notifications.json": &k.Notifications,
	} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return Kit{}, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			return Kit{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	return k, nil
}

// Query is one query of the kit and where it is.
type Query struct {
	Where string // e.g. "alert sag-upgrade-breaker-opened"
	Text  string
}

// Queries returns every query the kit runs: saved searches, alerts and the
// dashboard's charts.
func (k Kit) Queries() []Query {
	var out []Query
	for _, s := range k.SavedSearches {
		out = append(out, Query{"saved search " + deref(s.SavedsearchName), deref(s.SearchQuery)})
	}
	for _, a := range k.Alerts {
		for _, q := range a.Configuration.QueryList {
			out = append(out, Query{"alert " + deref(a.Name), deref(q.Query)})
		}
	}
	for _, c := range k.Dashboard.Charts {
		q, _ := c.Search["query"].(string)
		out = append(out, Query{"dashboard chart " + deref(c.Title), q})
	}
	return out
}

// How a referenced value must be matched by a logged one, as SLS matches it.
type Match int

const (
	MatchNone   Match = iota // the key only (key: *, a column, a ${parameter})
	MatchToken               // search term: one token of the value
	MatchPhrase              // quoted search term: a run of the value's tokens
	MatchExact               // SQL comparison: the whole value
)

// Ref is a key of the function's JSON line a query names, and the value it
// compares it with, if any.
type Ref struct {
	Key   string // e.g. "outcome", "counts.failed"
	Value string
	Match Match
	SQL   bool // named in the SQL part: the key must be analysable (doc_value)
}

var (
	searchTerm = regexp.MustCompile(StdoutField + `\.([A-Za-z0-9_.]+)\s*:\s*("([^"]*)"|[^\s()]+)`)
	sqlKey     = regexp.MustCompile(`"` + StdoutField + `\.([A-Za-z0-9_.]+)"`)
	sqlCompare = regexp.MustCompile(`"` + StdoutField + `\.([A-Za-z0-9_.]+)"\s*(?:=|<>|!=)\s*'([^']*)'`)
	sqlIn      = regexp.MustCompile(`"` + StdoutField + `\.([A-Za-z0-9_.]+)"\s+IN\s*\(([^)]*)\)`)
	parameter  = regexp.MustCompile(`^\$\{[a-z]+\}$`)
)

// Refs parses a query ("search | SQL") into the keys and values it names.
// A name written any other way (message.x unquoted in SQL) is an error, so
// nothing a query names escapes the check.
func Refs(q string) ([]Ref, error) {
	search, sql, _ := strings.Cut(q, "|")
	var refs []Ref
	for _, m := range searchTerm.FindAllStringSubmatch(search, -1) {
		r := Ref{Key: m[1], Value: m[2], Match: MatchToken}
		switch {
		case strings.HasPrefix(m[2], `"`):
			r.Value, r.Match = m[3], MatchPhrase
		case m[2] == "*" || parameter.MatchString(m[2]):
			r.Value, r.Match = "", MatchNone
		}
		refs = append(refs, r)
	}
	if n := strings.Count(search, StdoutField+"."); n != len(refs) {
		return nil, fmt.Errorf("%d keys in the search %q, %d of them as key: value", n, search, len(refs))
	}
	keys := sqlKey.FindAllStringSubmatch(sql, -1)
	if n := strings.Count(sql, StdoutField+"."); n != len(keys) {
		return nil, fmt.Errorf(`%d keys in the SQL %q, %d of them quoted as "%s.key"`, n, sql, len(keys), StdoutField)
	}
	for _, m := range keys {
		refs = append(refs, Ref{Key: m[1], SQL: true})
	}
	for _, m := range sqlCompare.FindAllStringSubmatch(sql, -1) {
		refs = append(refs, Ref{Key: m[1], Value: m[2], Match: MatchExact, SQL: true})
	}
	for _, m := range sqlIn.FindAllStringSubmatch(sql, -1) {
		for v := range strings.SplitSeq(m[2], ",") {
			refs = append(refs, Ref{Key: m[1], Value: strings.Trim(strings.TrimSpace(v), "'"), Match: MatchExact, SQL: true})
		}
	}
	return refs, nil
}

// delimiters are SLS's default token delimiters, those of index.json.
const delimiters = ", '\";=()[]{}?@&<>/:\n\t\r"

// Tokens splits a value as SLS's index does, lower-cased (caseSensitive
// false).
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return strings.ContainsRune(delimiters, r) })
}

// Matches reports whether a logged value satisfies a reference's value.
func (r Ref) Matches(logged string) bool {
	switch r.Match {
	case MatchToken:
		want := Tokens(r.Value)
		return len(want) == 1 && slices.Contains(Tokens(logged), want[0])
	case MatchPhrase:
		want, got := Tokens(r.Value), Tokens(logged)
		for i := 0; len(want) > 0 && i+len(want) <= len(got); i++ {
			if slices.Equal(got[i:i+len(want)], want) {
				return true
			}
		}
		return false
	case MatchExact:
		return logged == r.Value
	}
	return true
}

// Observed is what the function wrote: every key of its JSON log lines
// (nested keys joined by dots) with the values it had, and the tags of the
// messages it published.
type Observed struct {
	Values map[string][]any // json.Number, string, bool, nil; objects and arrays are not kept
	Tags   map[string]bool
}

// AddLine adds the keys and values of one line the function wrote; a line
// that is not a JSON object (FC's own markers) adds nothing.
func (o *Observed) AddLine(line []byte) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return
	}
	if o.Values == nil {
		o.Values = map[string][]any{}
	}
	o.add("", m)
}

func (o *Observed) add(prefix string, m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			o.add(prefix+k+".", v)
		case []any:
			o.Values[prefix+k] = append(o.Values[prefix+k], nil)
		default:
			o.Values[prefix+k] = append(o.Values[prefix+k], v)
		}
	}
}

// AddTag adds the tag of a published message.
func (o *Observed) AddTag(tag string) {
	if o.Tags == nil {
		o.Tags = map[string]bool{}
	}
	o.Tags[tag] = true
}

// Check returns what the kit names that the function did not write: a key
// of the index, of a query or of an alert that no line had, a value no line
// had for its key, a key a query needs that the index leaves out, and a tag
// no published message had. Empty means the kit and the code agree.
func (k Kit) Check(o Observed) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	field := k.Index.Keys[StdoutField]
	if field == nil || deref(field.Type) != "json" {
		return []string{fmt.Sprintf("index.json: %q, the field FC writes stdout into, is not indexed as json", StdoutField)}
	}
	for key, jk := range field.JsonKeys {
		values, ok := o.Values[key]
		if !ok {
			fail("index.json: key %q is in no log line", key)
			continue
		}
		for _, v := range values {
			if !fits(deref(jk.Type), v) {
				fail("index.json: key %q is %s, but a log line has %v (%T)", key, deref(jk.Type), v, v)
				break
			}
		}
	}
	for _, q := range k.Queries() {
		refs, err := Refs(q.Text)
		if err != nil {
			fail("%s: %v", q.Where, err)
			continue
		}
		for _, r := range refs {
			jk := field.JsonKeys[r.Key]
			switch {
			case jk == nil:
				fail("%s: key %q is not in index.json", q.Where, r.Key)
			case r.SQL && (jk.DocValue == nil || !*jk.DocValue):
				fail("%s: key %q is analysed in SQL but index.json has no doc_value for it", q.Where, r.Key)
			}
			values, ok := o.Values[r.Key]
			if !ok {
				fail("%s: key %q is in no log line", q.Where, r.Key)
				continue
			}
			if r.Match != MatchNone && !slices.ContainsFunc(values, func(v any) bool { return v != nil && r.Matches(fmt.Sprint(v)) }) {
				fail("%s: no log line has %q for key %q", q.Where, r.Value, r.Key)
			}
		}
	}
	for _, n := range k.Notifications {
		if !o.Tags[n.MessageTag] {
			fail("notifications.json: %s: no published message is tagged %q", n.SubscriptionName, n.MessageTag)
		}
	}
	return problems
}

// fits reports whether a logged value can be indexed as the type.
func fits(typ string, v any) bool {
	switch v := v.(type) {
	case nil:
		return true // an array: not indexed as a value
	case json.Number:
		if typ == "long" {
			_, err := v.Int64()
			return err == nil
		}
		return typ == "double" || typ == "text"
	case string, bool:
		return typ == "text"
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
