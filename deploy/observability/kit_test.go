package observability

import (
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRefs(t *testing.T) {
	refs, err := Refs(`message.message: "run started" and message.smartAGId: ${gateway} or message.trigger: timer | ` +
		`SELECT "message.runId", count_if("message.outcome" IN ('failed', 'unverified')) WHERE "message.kind" = 'stop'`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{Key: "message", Value: "run started", Match: MatchPhrase},
		{Key: "smartAGId", Match: MatchNone},
		{Key: "trigger", Value: "timer", Match: MatchToken},
		{Key: "runId", SQL: true}, {Key: "outcome", SQL: true}, {Key: "kind", SQL: true},
		{Key: "kind", Value: "stop", Match: MatchExact, SQL: true},
		{Key: "outcome", Value: "failed", Match: MatchExact, SQL: true},
		{Key: "outcome", Value: "unverified", Match: MatchExact, SQL: true},
	}
	if !slices.Equal(refs, want) {
		t.Errorf("Refs:\n%+v\nwant\n%+v", refs, want)
	}
	// A key the parser cannot read is an error, not a key left unchecked.
	for _, q := range []string{`message.outcome:failed or message.reason`, `* | SELECT message.outcome`} {
		if _, err := Refs(q); err == nil {
			t.Errorf("Refs(%q) took a key it could not read", q)
		}
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		ref    Ref
		logged string
		want   bool
	}{
		{Ref{Value: "decision", Match: MatchToken}, "decision", true},
		{Ref{Value: "rollout", Match: MatchToken}, "rollout breaker", true},
		{Ref{Value: "Breaker", Match: MatchToken}, "rollout breaker", true}, // not case sensitive
		{Ref{Value: "roll", Match: MatchToken}, "rollout", false},
		{Ref{Value: "events kept in the ledger", Match: MatchPhrase}, "events kept in the ledger; a later sweep publishes them", true},
		{Ref{Value: "kept events", Match: MatchPhrase}, "events kept in the ledger", false},
		{Ref{Value: "run started", Match: MatchExact}, "run started", true},
		{Ref{Value: "run", Match: MatchExact}, "run started", false},
	} {
		if got := c.ref.Matches(c.logged); got != c.want {
			t.Errorf("%+v matches %q: %v, want %v", c.ref, c.logged, got, c.want)
		}
	}
}

// Check names what the kit names and the function did not write.
func TestCheckReportsWhatNoLineHas(t *testing.T) {
	k, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var o Observed
	o.AddLine([]byte(`{"level":"info","message":"decision","outcome":"skipped","wave":"two","counts":{"failed":1}}`))
	o.AddLine([]byte(`FC Invoke Start RequestId: 1`))
	o.AddTag("failed")
	problems := strings.Join(k.Check(o), "\n")
	for _, want := range []string{
		`index.json: key "rollout" is in no log line`,
		`index.json: key "wave" is long, but a log line has two`,
		`saved search sag-rollout-decisions: no log line has "rollout" for key "message"`,
		`alert sag-upgrade-failures-share: no log line has "unverified" for key "outcome"`,
		`notifications.json: people-breaker: no published message is tagged "rollout.breaker"`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("Check did not report %s; it reported:\n%s", want, problems)
		}
	}
	for _, wrong := range []string{`key "counts.failed" is in no log line`, `tagged "failed"`, `key "level" is in no log line`} {
		if strings.Contains(problems, wrong) {
			t.Errorf("Check reported %s, which a line has", wrong)
		}
	}
}

func TestLoadRefusesAMisspeltKey(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, name := range []string{"index.json", "savedsearches.json", "alerts.json", "dashboard.json", "notifications.json"} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	if _, err := load(fsys); err != nil {
		t.Fatal(err)
	}
	fsys["alerts.json"].Data = []byte(strings.Replace(string(fsys["alerts.json"].Data), `"severityConfigurations"`, `"severityConfiguration"`, 1))
	if _, err := load(fsys); err == nil || !strings.Contains(err.Error(), "alerts.json") {
		t.Fatalf("a misspelt alert key: %v", err)
	}
}

// deploy/README.md's commands subscribe people to exactly the tags of
// notifications.json, under their names.
func TestREADMESubscribesEachNotification(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	loop, ok := strings.CutPrefix(string(b)[strings.Index(string(b), "for sub in "):], "for sub in ")
	if !ok {
		t.Fatal("deploy/README.md has no `for sub in` loop of subscriptions")
	}
	loop, _, _ = strings.Cut(loop, "; do")
	var got []Notification
	for _, f := range strings.Fields(strings.ReplaceAll(loop, "\\", "")) {
		name, tag, _ := strings.Cut(f, ":")
		got = append(got, Notification{SubscriptionName: "people-" + name, MessageTag: tag})
	}
	k, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var want []Notification
	for _, n := range k.Notifications {
		want = append(want, Notification{SubscriptionName: n.SubscriptionName, MessageTag: n.MessageTag})
	}
	if !slices.Equal(got, want) {
		t.Errorf("deploy/README.md subscribes\n%v\nnotifications.json has\n%v", got, want)
	}
}
