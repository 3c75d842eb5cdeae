package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func TestParseRequestValid(t *testing.T) {
	long := strings.Repeat("x", MaxCorrelationIDLen)
	tests := []struct {
		name string
		in   string
		want Request
	}{
		{"empty", "", Request{Kind: upgrade.KindSweep}},
		{"whitespace", " \n\t\r ", Request{Kind: upgrade.KindSweep}},
		{"empty object", "{}", Request{Kind: upgrade.KindSweep}},
		{"verify", `{"kind":"verify","gatewayIds":["sag-0ovhf732a9j"]}`,
			Request{Kind: upgrade.KindVerify, GatewayIDs: []string{"sag-0ovhf732a9j"}}},
		{"every field", `{"kind":"sweep","regions":["cn-shanghai","ap-northeast-1"],"gatewayIds":["sag-0ovhf732a9j","sag-abc123"],
			"versionTypes":["Dpi"],"targetVersion":"2.3.1.1","dryRun":true,"force":true,"correlationId":"ticket-4711"}`,
			Request{Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai", "ap-northeast-1"}, GatewayIDs: []string{"sag-0ovhf732a9j", "sag-abc123"},
				VersionTypes: []upgrade.VersionType{upgrade.VersionDpi}, TargetVersion: "2.3.1.1", DryRun: true, Force: true, CorrelationID: "ticket-4711"}},
		{"the example of DESIGN.md", `{"kind":"sweep","regions":["cn-shanghai"],"gatewayIds":["sag-0ovhf732a9j"],
			"versionTypes":["Device","Dpi"],"targetVersion":"2.3.1","dryRun":true,"force":false,"correlationId":"ticket-4711"}`,
			Request{Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai"}, GatewayIDs: []string{"sag-0ovhf732a9j"},
				VersionTypes: []upgrade.VersionType{upgrade.VersionDevice, upgrade.VersionDpi}, TargetVersion: "2.3.1", DryRun: true, CorrelationID: "ticket-4711"}},
		{"a pin without version types", `{"targetVersion":"2.3.1"}`, Request{Kind: upgrade.KindSweep, TargetVersion: "2.3.1"}},
		{"retry failed only", `{"retryFailedOnly":true}`, Request{Kind: upgrade.KindSweep, RetryFailedOnly: true}},
		{"a planner's batch", `{"kind":"sweep","gatewayIds":["sag-abc"],"force":true,"parentRunId":"run-1","batchId":"run-1-0007"}`,
			Request{Kind: upgrade.KindSweep, GatewayIDs: []string{"sag-abc"}, Force: true, ParentRunID: "run-1", BatchID: "run-1-0007"}},
		{"longest batch id", `{"batchId":"` + strings.Repeat("a-9", 21) + `z"}`, Request{Kind: upgrade.KindSweep, BatchID: strings.Repeat("a-9", 21) + "z"}},
		{"stop", `{"kind":"stop","correlationId":"incident-9"}`, Request{Kind: upgrade.KindStop, CorrelationID: "incident-9"}},
		{"reset a rollout", `{"kind":"reset","versionTypes":["Device"],"targetVersion":"2.3.1"}`,
			Request{Kind: upgrade.KindReset, VersionTypes: []upgrade.VersionType{upgrade.VersionDevice}, TargetVersion: "2.3.1"}},
		{"two-part version", `{"versionTypes":["Device"],"targetVersion":"2.3"}`,
			Request{Kind: upgrade.KindSweep, VersionTypes: []upgrade.VersionType{upgrade.VersionDevice}, TargetVersion: "2.3"}},
		{"longest correlation id", `{"correlationId":"` + long + `"}`, Request{Kind: upgrade.KindSweep, CorrelationID: long}},
		{"unicode correlation id", `{"correlationId":"工单 4711"}`, Request{Kind: upgrade.KindSweep, CorrelationID: "工单 4711"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Every problem must name the field it is in, so the sender can fix it.
func TestParseRequestErrorsNameTheField(t *testing.T) {
	tests := []struct {
		in      string
		field   string // of the first FieldError
		problem string // a part of its text
	}{
		{`{"kind":"reset","versionTypes":["Device"]}`, "targetVersion", "a reset names the rollout's targetVersion"},
		{`{"kind":"upgrade"}`, "kind", `"upgrade" is not a known kind (want one of "sweep", "verify", "plan", "status", "history", "stop", "resume", "reset", "pause", "unpause", "approve")`},
		{`{"kind":"Sweep"}`, "kind", "not a known kind"},
		{`{"kind":5}`, "kind", "want a string, found a JSON number"},
		{`{"regions":"cn-shanghai"}`, "regions", "want an array of strings, found a JSON string"},
		{`{"regions":[]}`, "regions", "empty list"},
		{`{"regions":["cn-beijing"]}`, "regions[0]", `"cn-beijing" is not a SAG region`},
		{`{"regions":["cn-shanghai","cn-shanghai"]}`, "regions[1]", `"cn-shanghai" repeats regions[0]`},
		{`{"gatewayIds":["sag-0ovhf732a9j","sag-abc","SAG-1"]}`, "gatewayIds[2]",
			`"SAG-1" is not a gateway id (want "sag-" followed by lowercase letters and digits)`},
		{`{"gatewayIds":["sag-"]}`, "gatewayIds[0]", "is not a gateway id"},
		{`{"gatewayIds":["sag-abc "]}`, "gatewayIds[0]", "is not a gateway id"},
		{`{"gatewayIds":["sag-ABC"]}`, "gatewayIds[0]", "is not a gateway id"},
		{`{"gatewayIds":["sag-abc","sag-abc"]}`, "gatewayIds[1]", "repeats gatewayIds[0]"},
		{`{"gatewayIds":[1]}`, "gatewayIds", "want an array of strings, found a JSON number"},
		{`{"gatewayIds":[]}`, "gatewayIds", "empty list"},
		{`{"versionTypes":["device"]}`, "versionTypes[0]", `"device" is not a version type (want "Device" or "Dpi")`},
		{`{"versionTypes":["Dpi","Dpi"]}`, "versionTypes[1]", "repeats versionTypes[0]"},
		{`{"versionTypes":{}}`, "versionTypes", "want an array of strings, found a JSON object"},
		{`{"versionTypes":["Device"],"targetVersion":"2"}`, "targetVersion", `"2" is not a version`},
		{`{"versionTypes":["Device"],"targetVersion":"2.3.1.1.1"}`, "targetVersion", "is not a version"},
		{`{"versionTypes":["Device"],"targetVersion":"v2.3.1"}`, "targetVersion", "is not a version"},
		{`{"versionTypes":["Device"],"targetVersion":"2..3"}`, "targetVersion", "is not a version"},
		{`{"versionTypes":["Device"],"targetVersion":2.3}`, "targetVersion", "want a string, found a JSON number"},
		{`{"dryRun":"true"}`, "dryRun", "want true or false, found a JSON string"},
		{`{"force":1}`, "force", "want true or false, found a JSON number"},
		{`{"correlationId":"` + strings.Repeat("x", MaxCorrelationIDLen+1) + `"}`, "correlationId", "129 characters long (at most 128)"},
		{`{"correlationId":"line\nbreak"}`, "correlationId", "not printable"},
		{`{"correlationId":["a"]}`, "correlationId", "want a string, found a JSON array"},
		{`{"GatewayIds":["sag-abc"]}`, "GatewayIds", `unknown field (did you mean "gatewayIds"?)`},
		{`{"region":["cn-shanghai"]}`, "region", "unknown field (want kind, regions, gatewayIds"},
		{`{"dryRun":true,"dryRun":false}`, "dryRun", "appears twice"},
		{`{"batchId":"Batch-1"}`, "batchId", `"Batch-1" is not a batch id (want at most 64 lowercase letters, digits and hyphens)`},
		{`{"batchId":"b_1"}`, "batchId", "is not a batch id"},
		{`{"batchId":"` + strings.Repeat("b", 65) + `"}`, "batchId", "is not a batch id"},
		{`{"batchId":7}`, "batchId", "want a string, found a JSON number"},
		{`{"batchID":"b1"}`, "batchID", `unknown field (did you mean "batchId"?)`},
		{`{"kind":"verify","batchId":"b1"}`, "batchId", `does not apply to kind "verify" (it applies to sweep)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req, err := ParseRequest([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted as %+v", req)
			}
			if !reflect.DeepEqual(req, Request{}) {
				t.Errorf("a rejected request is not zero: %+v", req)
			}
			fe, ok := errors.AsType[*FieldError](err)
			if !ok {
				t.Fatalf("%v: no FieldError in it", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Problem, tt.problem) {
				t.Errorf("got %q\nwant field %q with %q", err, tt.field, tt.problem)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("message %q does not start with the field", err)
			}
		})
	}
}

// An explicit null is not an absent field: {"gatewayIds":null} read as "no
// limit" would upgrade the whole fleet, as [] would. Every member, and every
// element of a list, that is null is rejected naming it.
func TestParseRequestRejectsNull(t *testing.T) {
	for _, name := range requestFields {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRequest([]byte(`{"` + name + `":null}`))
			want := name + ": null is not allowed (leave the field out for the default)"
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
	tests := []struct{ in, want string }{
		{`{"gatewayIds":null,"dryRun":null}`, "gatewayIds: null is not allowed"},
		{`{"regions":["cn-shanghai",null]}`, "regions[1]: null is not allowed (want a string)"},
		{`{"gatewayIds":[null]}`, "gatewayIds[0]: null is not allowed (want a string)"},
		{`{"versionTypes":["Device", null ]}`, "versionTypes[1]: null is not allowed (want a string)"},
		{`{"kind":"verify","regions" : null }`, "regions: null is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req, err := ParseRequest([]byte(tt.in))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %+v, %v; want %q", req, err, tt.want)
			}
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Errorf("%v: no FieldError in it", err)
			}
		})
	}
}

// A field that does not apply to a kind is rejected naming it, whatever its
// value: a stop naming gateways stopped the whole fleet, and a stop with
// dryRun really stopped.
func TestParseRequestFieldsPerKind(t *testing.T) {
	tests := []struct {
		in     string
		fields []string // that do not apply, in order
		text   string   // of the first
	}{
		{`{"kind":"stop","gatewayIds":["sag-abc"]}`, []string{"gatewayIds"}, `gatewayIds: does not apply to kind "stop" (it applies to sweep, verify, plan, history)`},
		{`{"kind":"stop","dryRun":true}`, []string{"dryRun"}, `dryRun: does not apply to kind "stop" (it applies to sweep)`},
		{`{"kind":"stop","dryRun":false}`, []string{"dryRun"}, `dryRun: does not apply to kind "stop" (it applies to sweep)`},
		{`{"kind":"stop","targetVersion":""}`, []string{"targetVersion"}, `targetVersion: does not apply to kind "stop" (it applies to sweep, verify, plan, reset, pause, unpause, approve)`},
		{`{"kind":"resume","regions":["cn-shanghai"],"force":true,"retryFailedOnly":true}`, []string{"regions", "force", "retryFailedOnly"},
			`regions: does not apply to kind "resume" (it applies to sweep, verify, plan)`},
		{`{"kind":"verify","dryRun":true,"force":false,"retryFailedOnly":true}`, []string{"dryRun", "force", "retryFailedOnly"},
			`dryRun: does not apply to kind "verify" (it applies to sweep)`},
		{`{"kind":"reset","targetVersion":"2.3.1","regions":["cn-shanghai"],"gatewayIds":["sag-abc"],"parentRunId":""}`,
			[]string{"regions", "gatewayIds", "parentRunId"}, `regions: does not apply to kind "reset" (it applies to sweep, verify, plan)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req, err := ParseRequest([]byte(tt.in))
			reqErr, ok := errors.AsType[RequestError](err)
			if !ok {
				t.Fatalf("got %+v, %v", req, err)
			}
			var fields []string
			for _, fe := range reqErr {
				fields = append(fields, fe.Field)
			}
			if !reflect.DeepEqual(fields, tt.fields) || reqErr[0].Error() != tt.text {
				t.Errorf("got %v\nwant fields %q, the first %q", err, tt.fields, tt.text)
			}
		})
	}
	// Built in code, a field with a value counts (a false or "" one cannot
	// be told from an absent one).
	for _, req := range []Request{{Kind: upgrade.KindStop, DryRun: true}, {Kind: upgrade.KindResume, GatewayIDs: []string{"sag-abc"}}, {Kind: upgrade.KindVerify, Force: true}} {
		if err := req.Validate(); err == nil || !strings.Contains(err.Error(), "does not apply to kind") {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

// Every field with every kind: accepted exactly when the kind's row of the
// table lists it (correlationId and operator go with every kind).
func TestKindFieldTable(t *testing.T) {
	values := map[string]string{
		"regions": `["cn-shanghai"]`, "gatewayIds": `["sag-abc"]`, "versionTypes": `["Device"]`, "targetVersion": `"2.3.1"`,
		"dryRun": "true", "force": "false", "correlationId": `"c"`, "retryFailedOnly": "true", "parentRunId": `"r"`, "batchId": `"b"`,
		"model": `"sag-1000"`, "wave": "1", "operator": `"ops"`,
	}
	rollout := []string{"versionTypes", "targetVersion", "model"}
	applies := map[upgrade.Kind][]string{
		upgrade.KindSweep:  {"regions", "gatewayIds", "versionTypes", "targetVersion", "dryRun", "force", "retryFailedOnly", "parentRunId", "batchId"},
		upgrade.KindVerify: {"regions", "gatewayIds", "versionTypes", "targetVersion", "parentRunId"},
		upgrade.KindPlan:   {"regions", "gatewayIds", "versionTypes", "targetVersion"},
		upgrade.KindStatus: nil, upgrade.KindHistory: {"gatewayIds", "versionTypes"},
		upgrade.KindStop: nil, upgrade.KindResume: nil,
		upgrade.KindReset: rollout, upgrade.KindPause: rollout, upgrade.KindUnpause: rollout,
		upgrade.KindApprove: append(slices.Clone(rollout), "wave"),
	}
	if len(applies) != len(upgrade.Kinds()) {
		t.Fatalf("the test knows %d kinds, the table %d", len(applies), len(upgrade.Kinds()))
	}
	for kind, fields := range applies {
		for _, f := range requestFields {
			if f == "kind" {
				continue
			}
			in := `{"kind":"` + string(kind) + `","` + f + `":` + values[f]
			for required := range upgrade.Required(kind) {
				if required != f {
					in += `,"` + required + `":` + values[required]
				}
			}
			in += "}"
			_, err := ParseRequest([]byte(in))
			if f == "correlationId" || f == "operator" || slices.Contains(fields, f) {
				if err != nil {
					t.Errorf("%s: %v", in, err)
				}
				continue
			}
			if want := f + `: does not apply to kind "` + string(kind) + `"`; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: got %v, want %s…", in, err, want)
			}
		}
	}
}

// A name as sent may hold spaces or control characters; the message quotes it.
func TestFieldErrorQuotesOddNames(t *testing.T) {
	_, err := ParseRequest([]byte(`{"dry run\n":true}`))
	if want := `"dry run\n": unknown field`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s…", err, want)
	}
}

// Problems with the text as a whole have no field, but still say what is wrong.
func TestParseRequestNotAnObject(t *testing.T) {
	tests := []struct{ in, problem string }{
		{`hello topic`, `the request is not JSON (it starts with "hello topic")`},
		{`[]`, "must be a JSON object, got an array"},
		{`"{}"`, "must be a JSON object, got a string"},
		{`null`, "must be a JSON object, got null"},
		{`42`, "must be a JSON object, got a number"},
		{`true`, "must be a JSON object, got a boolean"},
		{`{"kind":"sweep"} {}`, "unexpected text after the request object"},
		{`{"kind":"sweep"} x`, "unexpected text after the request object"},
		{`{"kind":"sweep"`, "not valid JSON: it ends too early"},
		{`{"kind" "sweep"}`, "not valid JSON: expected colon after object key (at byte 8)"},
		{`{"regions":["cn-shanghai",]}`, "not valid JSON: invalid character"},
		{`{"kind":"sweep",}`, "not valid JSON: invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRequest([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("got %v, want %q", err, tt.problem)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := ParseRequest([]byte(`{"regions":["cn-beijing"],"gatewayIds":["SAG-1"],"versionTypes":["dpi"]}`))
	reqErr, ok := errors.AsType[RequestError](err)
	if !ok {
		t.Fatalf("%v is not a RequestError", err)
	}
	var fields []string
	for _, fe := range reqErr {
		fields = append(fields, fe.Field)
	}
	if want := []string{"regions[0]", "gatewayIds[0]", "versionTypes[0]"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("fields %q, want %q (%v)", fields, want, err)
	}
}

func gatewayIDs(n int, format string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(format, i)
	}
	return ids
}

// More than MaxGatewayIDs is one short error, however many ids and however
// bad: 100,000 invalid ids made a 10.7 MB error.
func TestValidateGatewayIDLimit(t *testing.T) {
	if err := (Request{GatewayIDs: gatewayIDs(MaxGatewayIDs, "sag-%d")}).Validate(); err != nil {
		t.Errorf("%d ids: %v", MaxGatewayIDs, err)
	}
	for _, n := range []int{MaxGatewayIDs + 1, 100_000} {
		for _, format := range []string{"sag-%d", "SAG-%d"} {
			err := Request{GatewayIDs: gatewayIDs(n, format)}.Validate()
			want := fmt.Sprintf("gatewayIds: %d ids (at most 1000; a larger set goes by region, which fans out)", n)
			if err == nil || err.Error() != want {
				t.Errorf("%d ids %q: got %.200v, want %q", n, format, err, want)
			}
		}
	}
	body, _ := json.Marshal(Request{GatewayIDs: gatewayIDs(MaxGatewayIDs+1, "sag-%d")})
	if _, err := ParseRequest(body); err == nil || !strings.HasPrefix(err.Error(), "gatewayIds: 1001 ids (at most 1000") {
		t.Errorf("ParseRequest: %.200v", err)
	}
}

// A request reports its first maxProblems problems and how many more.
func TestValidateCapsProblems(t *testing.T) {
	err := Request{GatewayIDs: gatewayIDs(MaxGatewayIDs-1, "SAG-%d"), VersionTypes: []upgrade.VersionType{"dpi"}}.Validate()
	reqErr, ok := errors.AsType[RequestError](err)
	if !ok {
		t.Fatalf("%v is not a RequestError", err)
	}
	if len(reqErr) != maxProblems+1 || reqErr[0].Field != "gatewayIds[0]" || reqErr[maxProblems].Error() != "and 990 more problems" {
		t.Errorf("%d problems: %v", len(reqErr), err)
	}
	if len(err.Error()) > 2<<10 {
		t.Errorf("%d bytes of error", len(err.Error()))
	}
	if err := (Request{GatewayIDs: gatewayIDs(maxProblems, "SAG-%d")}).Validate(); strings.Contains(err.Error(), "more") {
		t.Errorf("%d problems said as more: %v", maxProblems, err)
	}
}

// An error quotes a value only in part, so a huge value makes a short error.
func TestErrorsQuoteValuesInPart(t *testing.T) {
	huge, long := strings.Repeat("<", 60<<10), strings.Repeat("a", 30<<10)
	for _, in := range []string{
		`{"kind":"` + huge + `"}`,
		`{"gatewayIds":["sag-` + huge + `"]}`,
		`{"gatewayIds":["sag-` + long + `","sag-` + long + `"]}`, // repeats
		`{"regions":["` + huge + `"]}`,
		`{"versionTypes":["` + huge + `"]}`,
		`{"targetVersion":"` + huge + `"}`,
		`{"` + huge + `":1}`,
		`{"correlationId":"` + huge + `"}`,
	} {
		_, err := ParseRequest([]byte(in))
		if err == nil || len(err.Error()) > 512 {
			t.Errorf("%.30s…: %d bytes of error: %.300v", in, len(err.Error()), err)
		}
	}
}

// A request longer than an MNS message is refused before it is parsed.
func TestParseRequestSizeLimit(t *testing.T) {
	pad := func(text string, n int) []byte { return []byte(text + strings.Repeat(" ", n-len(text))) }
	if req, err := ParseRequest(pad(`{"dryRun":true}`, MaxMessageBytes)); err != nil || !req.DryRun {
		t.Errorf("%d bytes: %+v, %v", MaxMessageBytes, req, err)
	}
	for _, in := range [][]byte{
		pad(`{"dryRun":true}`, MaxMessageBytes+1),
		pad(`{"dryRun":tru`, 1<<20), // not JSON, but too long comes first
	} {
		_, err := ParseRequest(in)
		want := fmt.Sprintf("the request is %d bytes (at most 65536, MNS's limit on one message)", len(in))
		if err == nil || err.Error() != want {
			t.Errorf("got %.200v, want %q", err, want)
		}
		if _, ok := errors.AsType[*FieldError](err); !ok {
			t.Errorf("%v: no FieldError in it", err)
		}
	}
}

func TestValidateZeroRequest(t *testing.T) {
	if err := (Request{}).Validate(); err != nil {
		t.Errorf("a zero Request is a default sweep, got %v", err)
	}
	if err := (Request{CorrelationID: "bad\xffutf8"}).Validate(); err == nil {
		t.Error("invalid UTF-8 in correlationId accepted")
	}
}

// A valid request survives encoding, so it can be forwarded (fan-out).
func TestRequestMarshalRoundTrip(t *testing.T) {
	direct, err := ParseRequest(readFixture(t, "direct.json"))
	if err != nil {
		t.Fatal(err)
	}
	batch := Request{Kind: upgrade.KindSweep, Regions: []string{"cn-shanghai"}, GatewayIDs: []string{gw1, gw2}, VersionTypes: []upgrade.VersionType{upgrade.VersionDevice},
		TargetVersion: "2.3.1", DryRun: true, Force: true, CorrelationID: "c", RetryFailedOnly: true, ParentRunID: "run-1", BatchID: "run-1-0001"}
	for _, want := range []Request{direct, batch} {
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

func TestKnownRegion(t *testing.T) {
	for _, r := range upgrade.SAGRegions() {
		if !upgrade.KnownRegion(r) {
			t.Errorf("upgrade.KnownRegion(%q) = false", r)
		}
	}
	for _, r := range []string{"", "cn-beijing", "cn-shenzhen", "CN-SHANGHAI", "cn-shanghai "} {
		if upgrade.KnownRegion(r) {
			t.Errorf("upgrade.KnownRegion(%q) = true", r)
		}
	}
	upgrade.SAGRegions()[0] = "changed"
	if !upgrade.KnownRegion("cn-shanghai") {
		t.Error("upgrade.SAGRegions hands out the package's own list")
	}
}
