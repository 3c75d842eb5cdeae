package events

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// MaxCorrelationIDLen is the longest correlationId accepted, in characters.
const MaxCorrelationIDLen = 128

// batchIDPattern is what a batch id the function gives its batches looks like.
var batchIDPattern = regexp.MustCompile(`^[a-z0-9-]{0,64}$`)

// modelPattern is what a hardware model looks like (HardwareVersion).
var modelPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// MaxWave is the highest wave a request may name (ROLLOUT_WAVES holds at
// most 20 shares).
const MaxWave = 20

// Request is what every trigger carries: one JSON object, all fields
// optional. Absent lists mean the configured defaults.
type Request struct {
	Kind          upgrade.Kind          `json:"kind,omitempty"`
	Regions       []string              `json:"regions,omitempty"`
	GatewayIDs    []string              `json:"gatewayIds,omitempty"`
	VersionTypes  []upgrade.VersionType `json:"versionTypes,omitempty"`
	TargetVersion string                `json:"targetVersion,omitempty"`
	DryRun        bool                  `json:"dryRun,omitempty"`
	Force         bool                  `json:"force,omitempty"`
	CorrelationID string                `json:"correlationId,omitempty"`
	// RetryFailedOnly limits a sweep to the gateways whose last upgrade
	// failed or stayed unverified, penalty box included (needs the ledger).
	RetryFailedOnly bool `json:"retryFailedOnly,omitempty"`
	// ParentRunID is set on the batches a planner fans out and on
	// continuations: the run that sent the request.
	ParentRunID string `json:"parentRunId,omitempty"`
	// BatchID is set by a planner on each batch it sends to the work queue,
	// as the ledger records it: a batch's force holds only if the ledger
	// records that exact batch, so a message forged onto the queue cannot
	// carry it.
	BatchID string `json:"batchId,omitempty"`
	// Model narrows a control request to one hardware model's rollout.
	Model string `json:"model,omitempty"`
	// Wave is the wave an approval lets start.
	Wave int `json:"wave,omitempty"`
	// Operator is who asks, as the caller declares it (sagctl sends its
	// caller's identity): it goes into the audit trail and the events.
	// ActionTrail is the authoritative record of who invoked the function.
	Operator string `json:"operator,omitempty"`
}

// requestFields are the JSON member names of a Request, in order.
var requestFields = []string{"kind", "regions", "gatewayIds", "versionTypes", "targetVersion", "dryRun", "force", "correlationId", "retryFailedOnly", "parentRunId", "batchId", "model", "wave", "operator"}

// field returns where the value of the JSON member name goes and what it
// must be; target is nil for a name that is not a field.
func (r *Request) field(name string) (target any, want string) {
	switch name {
	case "kind":
		return &r.Kind, "a string"
	case "regions":
		return &r.Regions, "an array of strings"
	case "gatewayIds":
		return &r.GatewayIDs, "an array of strings"
	case "versionTypes":
		return &r.VersionTypes, "an array of strings"
	case "targetVersion":
		return &r.TargetVersion, "a string"
	case "dryRun":
		return &r.DryRun, "true or false"
	case "force":
		return &r.Force, "true or false"
	case "correlationId":
		return &r.CorrelationID, "a string"
	case "retryFailedOnly":
		return &r.RetryFailedOnly, "true or false"
	case "parentRunId":
		return &r.ParentRunID, "a string"
	case "batchId":
		return &r.BatchID, "a string"
	case "model":
		return &r.Model, "a string"
	case "wave":
		return &r.Wave, "a whole number"
	case "operator":
		return &r.Operator, "a string"
	}
	return nil, ""
}

// FieldError is one problem with a request, tied to the field it is in.
type FieldError struct {
	Field   string // JSON path such as "gatewayIds[2]"; "" when the problem is the whole text
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	field := e.Field
	if strings.ContainsFunc(field, notPathChar) {
		field = strconv.Quote(field) // an unknown name as sent may hold anything
	}
	return field + ": " + e.Problem
}

func notPathChar(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("[]._-", c))
}

// RequestError lists the problems that make a request unusable.
type RequestError []*FieldError

func (e RequestError) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each FieldError.
func (e RequestError) Unwrap() []error {
	errs := make([]error, len(e))
	for i, fe := range e {
		errs[i] = fe
	}
	return errs
}

func problem(field, format string, args ...any) RequestError {
	return RequestError{{Field: field, Problem: fmt.Sprintf(format, args...)}}
}

// ParseRequest decodes and validates one request. Empty or whitespace-only
// text is {}, a default sweep. Unknown or misspelt fields (names are
// case-sensitive), repeated fields, values of the wrong JSON type, a null (as
// a member or as a list element), text after the object and anything but an
// object are errors, and so is text longer than MaxMessageBytes. A missing
// kind becomes KindSweep. On error the Request is zero and the error is a
// RequestError naming each bad field.
func ParseRequest(raw []byte) (Request, error) {
	if len(raw) > MaxMessageBytes {
		// No trigger can carry it: refuse it before spending time on it.
		return Request{}, problem("", "the request is %d bytes (at most %d, MNS's limit on one message)", len(raw), MaxMessageBytes)
	}
	req, sent, err := decodeRequest(raw)
	if err == nil {
		// A member sent counts, even false or "": {"kind":"stop","dryRun":false}
		// is as wrong as with true.
		err = req.validate(func(name string) bool { return sent[name] })
	}
	if err != nil {
		return Request{}, err
	}
	if req.Kind == "" {
		req.Kind = upgrade.KindSweep
	}
	return req, nil
}

// decodeRequest walks the members of the object itself rather than using
// DisallowUnknownFields: encoding/json matches names case-insensitively and
// silently keeps the last of two equal names, and a request that says
// "GatewayIds" or names gatewayIds twice must not be half understood.
// It also returns the names of the members sent.
func decodeRequest(raw []byte) (Request, map[string]bool, error) {
	var req Request
	text := trimJSONSpace(raw)
	if len(text) == 0 {
		return req, nil, nil
	}
	if text[0] != '{' {
		if !json.Valid(text) {
			return req, nil, problem("", "the request is not JSON (it starts with %s)", quoteStart(text))
		}
		return req, nil, problem("", "the request must be a JSON object, got %s", jsonKind(text[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	if _, err := dec.Token(); err != nil { // the '{'
		return Request{}, nil, syntaxProblem(err)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Request{}, nil, syntaxProblem(err)
		}
		name, _ := tok.(string) // the decoder only yields strings as member names
		target, want := req.field(name)
		if target == nil {
			if len(name) > 64 {
				name = cut(name, 64) + "…" // the name as sent may be as long as the message
			}
			return Request{}, nil, problem(name, "unknown field%s", suggestField(name))
		}
		if seen[name] {
			return Request{}, nil, problem(name, "appears twice")
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return Request{}, nil, syntaxProblem(err)
		}
		if err := decodeMember(name, value, target, want); err != nil {
			return Request{}, nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return Request{}, nil, syntaxProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, nil, problem("", "unexpected text after the request object")
	}
	return req, seen, nil
}

// decodeMember decodes one member's value into target. encoding/json reads
// null as "leave the target alone" and a null element as "", so a null is
// refused before that: {"gatewayIds":null} must not mean "no limit".
func decodeMember(name string, value json.RawMessage, target any, want string) error {
	if isNull(value) {
		return problem(name, "null is not allowed (leave the field out for the default)")
	}
	switch target.(type) {
	case *[]string, *[]upgrade.VersionType:
		var elems []json.RawMessage
		if json.Unmarshal(value, &elems) == nil {
			for i, e := range elems {
				if isNull(e) {
					return problem(fmt.Sprintf("%s[%d]", name, i), "null is not allowed (want a string)")
				}
			}
		}
	}
	if err := json.Unmarshal(value, target); err != nil {
		if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return problem(name, "want %s, found a JSON %s", want, ute.Value)
		}
		return syntaxProblem(err) // cannot happen: the decoder read a whole value
	}
	return nil
}

func isNull(value []byte) bool { return string(trimJSONSpace(value)) == "null" }

func suggestField(name string) string {
	for _, f := range requestFields {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf(" (did you mean %q?)", f)
		}
	}
	return " (want " + strings.Join(requestFields, ", ") + ")"
}

func syntaxProblem(err error) RequestError {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return problem("", "the request is not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return problem("", "the request is not valid JSON: it ends too early")
	}
	return problem("", "the request is not valid JSON: %v", err)
}

// Validate checks every field and reports its problems at once, the first
// maxProblems of them and how many more. A zero Kind means the default,
// sweep. A field with a value that does not apply to the kind is a problem.
func (r Request) Validate() error { return r.validate(r.given) }

// given reports whether the field has a value, the nearest a Request built
// in code comes to "the member was sent".
func (r *Request) given(name string) bool {
	target, _ := r.field(name)
	return target != nil && !reflect.ValueOf(target).Elem().IsZero()
}

// validate is Validate, with sent telling which fields were given.
func (r Request) validate(sent func(name string) bool) error {
	var errs problems
	add := errs.add
	kind := cmp.Or(r.Kind, upgrade.KindSweep)
	if !kind.Known() {
		add("kind", "%s is not a known kind (want one of %s)", quoteShort(string(r.Kind)), joinQuoted(upgrade.Kinds()))
	} else {
		for _, name := range requestFields {
			if sent(name) && !upgrade.Applies(kind, name) {
				add(name, "does not apply to kind %q (it applies to %s)", kind, upgrade.KindsTaking(name))
			}
		}
	}
	checkList(&errs, "regions", r.Regions, upgrade.KnownRegion,
		"is not a SAG region (want one of "+strings.Join(upgrade.SAGRegions(), ", ")+")")
	if n := len(r.GatewayIDs); n > MaxGatewayIDs {
		// One error for the list: one per id made megabytes of error text.
		add("gatewayIds", "%d ids (at most %d; a larger set goes by region, which fans out)", n, MaxGatewayIDs)
	} else {
		checkList(&errs, "gatewayIds", r.GatewayIDs, upgrade.ValidGatewayID,
			`is not a gateway id (want "sag-" followed by lowercase letters and digits)`)
	}
	checkList(&errs, "versionTypes", r.VersionTypes, upgrade.VersionType.Known,
		`is not a version type (want "Device" or "Dpi")`)
	if r.TargetVersion != "" {
		if !upgrade.ValidTarget(r.TargetVersion) {
			add("targetVersion", "%s is not a version (want 2 to 4 dot-separated numbers, e.g. \"2.3.1\")", quoteShort(r.TargetVersion))
		}
		// The pin applies to every requested version type; a type whose
		// list does not offer it reports skipped/target_not_offered, so a
		// firmware pin never passes silently for DPI signatures.
	}
	if len(r.ParentRunID) > 64 {
		add("parentRunId", "is %d characters long (at most 64)", len(r.ParentRunID))
	}
	if !batchIDPattern.MatchString(r.BatchID) {
		add("batchId", "%s is not a batch id (want at most 64 lowercase letters, digits and hyphens)", quoteShort(r.BatchID))
	}
	for _, name := range requestFields {
		if why, required := upgrade.Required(kind)[name]; required && !r.given(name) { // "" gives nothing
			add(name, "%s", why)
		}
	}
	for name, text := range map[string]string{"correlationId": r.CorrelationID, "operator": r.Operator} {
		if n := utf8.RuneCountInString(text); n > MaxCorrelationIDLen {
			add(name, "is %d characters long (at most %d)", n, MaxCorrelationIDLen)
		}
		for i, c := range text {
			if !unicode.IsPrint(c) || c == utf8.RuneError {
				add(name, "has a character that is not printable at byte %d", i)
				break
			}
		}
	}
	if r.Model != "" && !modelPattern.MatchString(r.Model) {
		add("model", "%s is not a hardware model (want at most 64 letters, digits, dots, hyphens or underscores, such as sag-1000)", quoteShort(r.Model))
	}
	if r.Wave < 0 || r.Wave > MaxWave {
		add("wave", "%d is not a wave (want 1 to %d; 0 is the canary, which needs no approval)", r.Wave, MaxWave)
	}
	return errs.err()
}

// problems collects a request's problems: the first maxProblems in full,
// the others only counted.
type problems struct {
	list RequestError
	more int
}

func (p *problems) add(field, format string, args ...any) {
	if len(p.list) == maxProblems {
		p.more++
		return
	}
	p.list = append(p.list, problem(field, format, args...)...)
}

// err is nil without problems, else a RequestError.
func (p *problems) err() error {
	switch {
	case len(p.list) == 0:
		return nil
	case p.more == 1:
		return append(p.list, &FieldError{Problem: "and 1 more problem"})
	case p.more > 1:
		return append(p.list, &FieldError{Problem: fmt.Sprintf("and %d more problems", p.more)})
	}
	return p.list
}

// checkList validates a list field: not given as an empty list (an empty
// gatewayIds read as "no limit" would upgrade the whole fleet), every item
// valid, no item twice.
func checkList[T ~string](errs *problems, field string, items []T, valid func(T) bool, notValid string) {
	if items != nil && len(items) == 0 {
		errs.add(field, "is an empty list (leave the field out to use the default)")
		return
	}
	first := make(map[T]int, len(items))
	for i, item := range items {
		switch j, dup := first[item]; {
		case !valid(item):
			errs.add(fmt.Sprintf("%s[%d]", field, i), "%s %s", quoteShort(string(item)), notValid)
		case dup:
			errs.add(fmt.Sprintf("%s[%d]", field, i), "%s repeats %s[%d]", quoteShort(string(item)), field, j)
		default:
			first[item] = i
		}
	}
}

func joinQuoted[T ~string](items []T) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = fmt.Sprintf("%q", it)
	}
	return strings.Join(quoted, ", ")
}

// trimJSONSpace drops the four whitespace bytes JSON allows, and no others.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// quoteStart quotes the first few characters of text for an error message.
func quoteStart(text []byte) string { return quoteCut(string(text), 24) }

// quoteShort quotes a value for an error message, only in part when it is
// long: a value sent may be as long as the message, and its error must not.
func quoteShort(s string) string { return quoteCut(s, 64) }

func quoteCut(s string, max int) string {
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(cut(s, max)) + "…"
}

// cut returns at most the first max bytes of s, not splitting a character.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// Limits on one request. A set of gateways larger than MaxGatewayIDs goes by
// region and fans out; MaxMessageBytes is MNS's limit on one message, so no
// trigger can carry a larger request.
const (
	MaxGatewayIDs   = 1000
	MaxMessageBytes = 64 << 10
)

// maxProblems is how many problems a RequestError lists; the rest are
// counted, so that a request with thousands of bad ids makes a short error.
const maxProblems = 10
