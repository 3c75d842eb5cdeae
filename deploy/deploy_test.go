package deploy_test

// The deployment files checked for what fc3's JSON schema (and so `s verify`)
// does not see: the schema accepts any triggerConfig and misspelt keys, and
// knows nothing of this function's binary, configuration or role.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler"
)

// The files checked, named from the repository's root as s.yaml and the
// messages name them; repoFile finds them from deploy/, where go test runs.
const (
	deploySYAML       = "s.yaml"
	deployBuildScript = "scripts/build.sh"
	deployRAMPolicy   = "deploy/ram-policy.json"
	deployTrustPolicy = "deploy/trust-policy.json"

	// deployTestAccount stands in for ${config('AccountID')}.
	deployTestAccount = "1234567890123456"

	// deployMinTimeout is the least timeout that lets a sweep do anything:
	// listing, version look-ups and retries at a modest API rate take
	// minutes, and fc3 defaults to 3 s when timeout is missing.
	deployMinTimeout = 5 * 60
)

// deployEnvNames are the variables of handler's configuration table; s.yaml
// may set no others (a misspelt name would be silently ignored by the
// function). TestDeployEnvNamesAreWhatConfigFromEnvReads checks that the
// function reads no name outside the table.
var deployEnvNames = handler.EnvNames()

// The parts of s.yaml this project uses. Decoding is strict: a key not here
// is a misspelling, or an fc3 setting new to this file that belongs here.
type deploySpec struct {
	Edition   string                    `yaml:"edition"`
	Name      string                    `yaml:"name"`
	Access    string                    `yaml:"access"`
	Vars      map[string]string         `yaml:"vars"`
	Resources map[string]deployResource `yaml:"resources"`
}

type deployResource struct {
	Component string                    `yaml:"component"`
	Actions   map[string][]deployAction `yaml:"actions"`
	Props     deployProps               `yaml:"props"`
}

type deployAction struct {
	Run  string `yaml:"run"`
	Path string `yaml:"path"`
}

type deployProps struct {
	Region               string            `yaml:"region"`
	FunctionName         string            `yaml:"functionName"`
	Description          string            `yaml:"description"`
	Runtime              string            `yaml:"runtime"`
	Handler              string            `yaml:"handler"`
	Code                 string            `yaml:"code"`
	MemorySize           int               `yaml:"memorySize"`
	Timeout              *int              `yaml:"timeout"`
	InternetAccess       *bool             `yaml:"internetAccess"`
	Role                 string            `yaml:"role"`
	EnvironmentVariables map[string]string `yaml:"environmentVariables"`
	LogConfig            *struct {
		Project               string `yaml:"project"`
		Logstore              string `yaml:"logstore"`
		EnableRequestMetrics  bool   `yaml:"enableRequestMetrics"`
		EnableInstanceMetrics bool   `yaml:"enableInstanceMetrics"`
		LogBeginRule          string `yaml:"logBeginRule"`
	} `yaml:"logConfig"`
	ConcurrencyConfig *struct {
		ReservedConcurrency int `yaml:"reservedConcurrency"`
	} `yaml:"concurrencyConfig"`
	AsyncInvokeConfig *struct {
		Qualifier                 string `yaml:"qualifier"`
		MaxAsyncRetryAttempts     *int   `yaml:"maxAsyncRetryAttempts"`
		MaxAsyncEventAgeInSeconds int    `yaml:"maxAsyncEventAgeInSeconds"`
		AsyncTask                 bool   `yaml:"asyncTask"`
		DestinationConfig         struct {
			OnSuccess *deployDestination `yaml:"onSuccess"`
			OnFailure *deployDestination `yaml:"onFailure"`
		} `yaml:"destinationConfig"`
	} `yaml:"asyncInvokeConfig"`
	Triggers []deployTrigger `yaml:"triggers"`
}

type deployDestination struct {
	Destination string `yaml:"destination"`
}

type deployTrigger struct {
	TriggerName    string              `yaml:"triggerName"`
	TriggerType    string              `yaml:"triggerType"`
	Qualifier      string              `yaml:"qualifier"`
	SourceArn      string              `yaml:"sourceArn"`
	InvocationRole string              `yaml:"invocationRole"`
	Config         deployTriggerConfig `yaml:"triggerConfig"`
}

// deployTriggerConfig holds the keys of every trigger type this function uses.
type deployTriggerConfig struct {
	// timer
	CronExpression string `yaml:"cronExpression"`
	Enable         *bool  `yaml:"enable"`
	Payload        string `yaml:"payload"`
	// mns_topic
	NotifyContentFormat string `yaml:"notifyContentFormat"`
	NotifyStrategy      string `yaml:"notifyStrategy"`
	FilterTag           string `yaml:"filterTag"`
	// eventbridge
	TriggerEnable          *bool  `yaml:"triggerEnable"`
	AsyncInvocationType    *bool  `yaml:"asyncInvocationType"`
	EventRuleFilterPattern string `yaml:"eventRuleFilterPattern"`
	EventSourceConfig      struct {
		EventSourceType       string `yaml:"eventSourceType"`
		EventSourceParameters struct {
			SourceMNSParameters *struct {
				RegionID       string `yaml:"RegionId"`
				QueueName      string `yaml:"QueueName"`
				IsBase64Decode *bool  `yaml:"IsBase64Decode"`
			} `yaml:"sourceMNSParameters"`
		} `yaml:"eventSourceParameters"`
	} `yaml:"eventSourceConfig"`
	EventSinkConfig struct {
		DeliveryOption struct {
			Mode        string `yaml:"mode"`
			EventSchema string `yaml:"eventSchema"`
		} `yaml:"deliveryOption"`
	} `yaml:"eventSinkConfig"`
	RunOptions struct {
		Mode            string `yaml:"mode"`
		ErrorsTolerance string `yaml:"errorsTolerance"`
		RetryStrategy   struct {
			PushRetryStrategy        string `yaml:"PushRetryStrategy"`
			MaximumRetryAttempts     int    `yaml:"MaximumRetryAttempts"`
			MaximumEventAgeInSeconds int    `yaml:"MaximumEventAgeInSeconds"`
		} `yaml:"retryStrategy"`
		BatchWindow struct {
			CountBasedWindow int `yaml:"CountBasedWindow"`
			TimeBasedWindow  int `yaml:"TimeBasedWindow"`
		} `yaml:"batchWindow"`
		DeadLetterQueue *struct {
			Arn string `yaml:"Arn"`
		} `yaml:"deadLetterQueue"`
	} `yaml:"runOptions"`
}

// deployment is s.yaml with its magic variables rendered, and the function
// resource in it.
type deployment struct {
	spec  deploySpec
	name  string // the resource's key
	fn    deployProps
	lines map[string]int // "triggers[i]" and prop names → line in s.yaml, for messages
	// The operators' function (CONTROL_ENDPOINT=true, no trigger) and the
	// look-only one (QUERY_ENDPOINT=true, no trigger).
	controlName string
	control     deployProps
	queryName   string
	query       deployProps
}

func repoFile(name string) string { return filepath.Join("..", name) }

func loadDeployment(t *testing.T) deployment {
	t.Helper()
	raw, err := os.ReadFile(repoFile(deploySYAML))
	if err != nil {
		t.Fatal(err)
	}
	// Keys: the raw text, strictly, so errors carry s.yaml's own line numbers.
	var strict deploySpec
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err != nil {
		t.Fatalf("%s: %v\n(a key the test does not know is misspelt, or is a new fc3 setting: add it to the structs in deploy/deploy_test.go)", deploySYAML, err)
	}

	// Values: the node tree with ${…} rendered in every scalar.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	vars, err := deployRenderVars(&doc)
	if err != nil {
		t.Fatalf("%s: %v", deploySYAML, err)
	}
	if errs := deployRenderTree(&doc, vars); len(errs) > 0 {
		t.Fatalf("%s: magic variables this test cannot render (it knows ${vars.NAME} and ${config('AccountID')}):\n%s", deploySYAML, strings.Join(errs, "\n"))
	}
	var d deployment
	if err := doc.Decode(&d.spec); err != nil {
		t.Fatalf("%s after rendering: %v", deploySYAML, err)
	}
	for name, r := range d.spec.Resources {
		if !strings.Contains(r.Component, "fc3") {
			continue
		}
		control := r.Props.EnvironmentVariables["CONTROL_ENDPOINT"] == "true"
		query := r.Props.EnvironmentVariables["QUERY_ENDPOINT"] == "true"
		switch {
		case control && d.controlName != "":
			t.Fatalf("%s: two control functions, %s and %s", deploySYAML, d.controlName, name)
		case control:
			d.controlName, d.control = name, r.Props
		case query && d.queryName != "":
			t.Fatalf("%s: two look-only functions, %s and %s", deploySYAML, d.queryName, name)
		case query:
			d.queryName, d.query = name, r.Props
		case d.name != "":
			t.Fatalf("%s: two fc3 functions without CONTROL_ENDPOINT or QUERY_ENDPOINT, %s and %s; this test checks one and its operators' functions", deploySYAML, d.name, name)
		default:
			d.name, d.fn = name, r.Props
		}
	}
	if d.name == "" {
		t.Fatalf("%s: no resource with component fc3", deploySYAML)
	}
	d.lines = deployLines(&doc, d.name)
	return d
}

// deployRenderVars renders the vars section. Vars may use
// ${config('AccountID')} but not other vars.
func deployRenderVars(doc *yaml.Node) (map[string]string, error) {
	vars := map[string]string{}
	v := deployChild(doc.Content[0], "vars")
	if v == nil {
		return vars, nil
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		out, err := deployRender(val.Value, nil)
		if err != nil {
			return nil, fmt.Errorf("line %d: vars.%s: %v", val.Line, k.Value, err)
		}
		vars[k.Value] = out
	}
	return vars, nil
}

func deployRenderTree(n *yaml.Node, vars map[string]string) (errs []string) {
	if n.Kind == yaml.ScalarNode {
		out, err := deployRender(n.Value, vars)
		if err != nil {
			return []string{fmt.Sprintf("  line %d: %v", n.Line, err)}
		}
		n.Value = out
		return nil
	}
	for _, c := range n.Content {
		errs = append(errs, deployRenderTree(c, vars)...)
	}
	return errs
}

var (
	deployMagic     = regexp.MustCompile(`\$\{([^}]*)\}`)
	deployVarRef    = regexp.MustCompile(`^vars\.([A-Za-z_][A-Za-z0-9_-]*)$`)
	deployAccountID = regexp.MustCompile(`^config\(\s*['"]AccountID['"]\s*\)$`)
)

// deployRender replaces exactly the magic variables s.yaml uses:
// ${vars.NAME} and ${config('AccountID')}. Anything else is an error, so a
// new kind of variable gets a thought about what the test should put there.
func deployRender(s string, vars map[string]string) (string, error) {
	var errs []string
	out := deployMagic.ReplaceAllStringFunc(s, func(m string) string {
		expr := strings.TrimSpace(m[2 : len(m)-1])
		if deployAccountID.MatchString(expr) {
			return deployTestAccount
		}
		if v := deployVarRef.FindStringSubmatch(expr); v != nil {
			if val, ok := vars[v[1]]; ok {
				return val
			}
			errs = append(errs, fmt.Sprintf("%s: no such var", m))
			return m
		}
		errs = append(errs, fmt.Sprintf("%s: unknown magic variable", m))
		return m
	})
	if len(errs) == 0 && strings.Contains(out, "${") {
		errs = append(errs, fmt.Sprintf("%q: unterminated ${", s))
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func deployChild(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// deployLines finds where the function's props and triggers are in s.yaml.
func deployLines(doc *yaml.Node, resource string) map[string]int {
	lines := map[string]int{}
	props := deployChild(deployChild(deployChild(doc.Content[0], "resources"), resource), "props")
	if props == nil {
		return lines
	}
	for i := 0; i+1 < len(props.Content); i += 2 {
		lines[props.Content[i].Value] = props.Content[i].Line
	}
	if tr := deployChild(props, "triggers"); tr != nil {
		for i, c := range tr.Content {
			lines[fmt.Sprintf("triggers[%d]", i)] = c.Line
		}
	}
	return lines
}

// at names a place in s.yaml for a failure message.
func (d deployment) at(key string) string {
	if l, ok := d.lines[key]; ok {
		return fmt.Sprintf("%s:%d: %s", deploySYAML, l, key)
	}
	return fmt.Sprintf("%s: %s", deploySYAML, key)
}

func (d deployment) triggerAt(i int) string {
	return fmt.Sprintf("%s (%s)", d.at(fmt.Sprintf("triggers[%d]", i)), d.fn.Triggers[i].TriggerName)
}

// buildScriptNames reads the binary and package names from scripts/build.sh.
func buildScriptNames(t *testing.T) (bin, pkg string) {
	t.Helper()
	script, err := os.ReadFile(repoFile(deployBuildScript))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=([^\s#]+)`).FindSubmatch(script)
		if m == nil {
			t.Fatalf("%s: no line %s=… (this test reads it)", deployBuildScript, name)
		}
		return string(m[1])
	}
	return get("binary"), get("package")
}

func TestDeployFunction(t *testing.T) {
	d := loadDeployment(t)
	fn := d.fn
	if d.spec.Edition != "3.0.0" {
		t.Errorf("%s: edition %q, want 3.0.0 (fc3 is a Serverless Devs 3.x component)", deploySYAML, d.spec.Edition)
	}
	if fn.Runtime != "go1" {
		t.Errorf("%s is %q, want go1: fc-runtime-go-sdk needs FC_RUNTIME_API, which only go1 sets", d.at("runtime"), fn.Runtime)
	}
	bin, pkg := buildScriptNames(t)
	if fn.Handler != bin {
		t.Errorf("%s is %q, but %s builds %q: FC would not find the executable", d.at("handler"), fn.Handler, deployBuildScript, bin)
	}
	if filepath.Clean(fn.Code) != filepath.Clean(pkg) {
		t.Errorf("%s is %q, want %q, the package %s builds", d.at("code"), fn.Code, pkg, deployBuildScript)
	}
	var builds bool
	for _, a := range d.spec.Resources[d.name].Actions["pre-deploy"] {
		builds = builds || strings.Contains(a.Run, deployBuildScript)
	}
	if !builds {
		t.Errorf("%s: no pre-deploy action runs %s: `s deploy` would upload a stale or missing package", deploySYAML, deployBuildScript)
	}

	switch {
	case fn.Timeout == nil:
		t.Errorf("%s: timeout is not set; fc3 then uses 3 s", deploySYAML)
	case *fn.Timeout < 1 || *fn.Timeout > 86400:
		t.Errorf("%s is %d s, outside FC's 1..86400", d.at("timeout"), *fn.Timeout)
	case *fn.Timeout < deployMinTimeout:
		t.Errorf("%s is %d s; a sweep needs minutes (at least %d s)", d.at("timeout"), *fn.Timeout, deployMinTimeout)
	}

	role := regexp.MustCompile(`^acs:ram::` + deployTestAccount + `:role/([a-z0-9][a-z0-9-]*)$`)
	if !role.MatchString(fn.Role) {
		t.Errorf("%s is %q, want acs:ram::<account>:role/<lower-case name> (fc3 lower-cases role names)", d.at("role"), fn.Role)
	}
	if fn.LogConfig == nil || fn.LogConfig.Project == "" || fn.LogConfig.Logstore == "" {
		t.Errorf("%s: no logConfig project and logstore: the function's JSON logs would go nowhere", deploySYAML)
	}
}

// The operators' function is the one place control and force are served,
// and the look-only one answers queries alone, so no trigger may reach
// either, and each is the function the triggers reach in all else.
func TestDeployOperatorsFunctions(t *testing.T) {
	d := loadDeployment(t)
	for _, f := range []struct {
		variable, name, why string
		props               deployProps
	}{
		{"CONTROL_ENDPOINT", d.controlName, "operators could not stop, resume, reset, pause or approve", d.control},
		{"QUERY_ENDPOINT", d.queryName, "operators who may only look would need the control function", d.query},
	} {
		if f.name == "" {
			t.Errorf("%s: no function with %s \"true\": %s", deploySYAML, f.variable, f.why)
			continue
		}
		c, fn := f.props, d.fn
		if len(c.Triggers) != 0 {
			t.Errorf("%s: %s has triggers: whoever can reach a trigger could do what only an operator may", deploySYAML, f.name)
		}
		if v, ok := fn.EnvironmentVariables[f.variable]; ok && v != "false" {
			t.Errorf("%s: the function the triggers reach sets %s=%q", deploySYAML, f.variable, v)
		}
		if c.FunctionName == fn.FunctionName || c.Region != fn.Region {
			t.Errorf("%s: %s is %q in %s, the other %q in %s", deploySYAML, f.name, c.FunctionName, c.Region, fn.FunctionName, fn.Region)
		}
		same := func(what string, a, b any) {
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s: %s's %s is %v, the other's %v", deploySYAML, f.name, what, a, b)
			}
		}
		same("code", c.Code, fn.Code)
		same("runtime", c.Runtime, fn.Runtime)
		same("handler", c.Handler, fn.Handler)
		same("role", c.Role, fn.Role)
		same("timeout", c.Timeout, fn.Timeout)
		same("logConfig", c.LogConfig, fn.LogConfig)
		env := maps.Clone(c.EnvironmentVariables)
		delete(env, f.variable)
		same("environment (but "+f.variable+")", env, fn.EnvironmentVariables)
	}
	if d.controlName != "" && d.queryName != "" && d.control.FunctionName == d.query.FunctionName {
		t.Errorf("%s: the control and the look-only functions share the name %q", deploySYAML, d.control.FunctionName)
	}
}

func TestDeployAsyncInvokeConfig(t *testing.T) {
	d := loadDeployment(t)
	a := d.fn.AsyncInvokeConfig
	if a == nil {
		t.Fatalf("%s: no asyncInvokeConfig: FC's defaults apply and a failed timer run vanishes", deploySYAML)
	}
	if n := a.MaxAsyncRetryAttempts; n == nil || *n < 0 || *n > 8 {
		t.Errorf("%s: maxAsyncRetryAttempts must be set, 0..8", d.at("asyncInvokeConfig"))
	}
	if !a.AsyncTask {
		t.Errorf("%s: asyncTask is not true: an operator can neither watch the nightly run's state nor stop it (ListAsyncTasks, StopAsyncTask)", d.at("asyncInvokeConfig"))
	}
	f := a.DestinationConfig.OnFailure
	if f == nil || f.Destination == "" {
		t.Fatalf("%s: no onFailure destination: a run that fails for good would be lost silently", d.at("asyncInvokeConfig"))
	}
	if err := checkMNSArn(f.Destination, d.fn.Region, true); err != nil {
		t.Errorf("%s: onFailure destination: %v", d.at("asyncInvokeConfig"), err)
	}
	if s := a.DestinationConfig.OnSuccess; s != nil {
		if err := checkMNSArn(s.Destination, d.fn.Region, true); err != nil {
			t.Errorf("%s: onSuccess destination: %v", d.at("asyncInvokeConfig"), err)
		}
	}
}

var deployMNSArn = regexp.MustCompile(`^acs:mns:([a-z0-9-]+):([0-9]+):/(topics|queues)/([A-Za-z0-9][A-Za-z0-9-]{0,255})(/messages)?$`)

// checkMNSArn checks an MNS ARN in the function's region and account. A
// destination ends in /messages; a trigger's source does not.
func checkMNSArn(arn, region string, destination bool) error {
	m := deployMNSArn.FindStringSubmatch(arn)
	switch {
	case m == nil:
		return fmt.Errorf("%q is not acs:mns:<region>:<account>:/(topics|queues)/<name>[/messages]", arn)
	case m[1] != region:
		return fmt.Errorf("%q is in region %s, the function in %s", arn, m[1], region)
	case m[2] != deployTestAccount:
		return fmt.Errorf("%q names account %s, not ${config('AccountID')}", arn, m[2])
	case destination && m[5] == "":
		return fmt.Errorf("%q: a destination ARN ends in /messages", arn)
	case !destination && m[5] != "":
		return fmt.Errorf("%q: a trigger source names the topic, without /messages", arn)
	}
	return nil
}

func TestDeployTriggers(t *testing.T) {
	d := loadDeployment(t)
	if len(d.fn.Triggers) == 0 {
		t.Fatalf("%s: no triggers", deploySYAML)
	}
	var timers int
	lastOther := -1
	for i, tr := range d.fn.Triggers {
		c := tr.Config
		where := d.triggerAt(i)
		if tr.TriggerType != "eventbridge" {
			lastOther = i
		}
		switch tr.TriggerType {
		case "timer":
			timers++
			if err := checkCron(c.CronExpression); err != nil {
				t.Errorf("%s: cronExpression %q: %v", where, c.CronExpression, err)
			}
			if c.Enable == nil || !*c.Enable {
				t.Errorf("%s: enable is not true: the timer would never fire", where)
			}
			if _, err := events.ParseRequest([]byte(c.Payload)); err != nil {
				t.Errorf("%s: payload %q is not a request the function accepts: %v", where, c.Payload, err)
			}
		case "mns_topic":
			if !slices.Contains([]string{"JSON", "STREAM"}, c.NotifyContentFormat) {
				t.Errorf("%s: notifyContentFormat %q, want JSON or STREAM", where, c.NotifyContentFormat)
			}
			if !slices.Contains([]string{"BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"}, c.NotifyStrategy) {
				t.Errorf("%s: notifyStrategy %q, want BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY", where, c.NotifyStrategy)
			}
			if n := len([]rune(c.FilterTag)); n > 16 {
				t.Errorf("%s: filterTag %q has %d characters, MNS allows 16", where, c.FilterTag, n)
			}
			if err := checkMNSArn(tr.SourceArn, d.fn.Region, false); err != nil {
				t.Errorf("%s: sourceArn: %v", where, err)
			} else if !strings.Contains(tr.SourceArn, ":/topics/") {
				t.Errorf("%s: sourceArn %q is not a topic", where, tr.SourceArn)
			}
			if tr.InvocationRole != "" && !regexp.MustCompile(`^acs:ram::`+deployTestAccount+`:role/[a-z0-9-]+$`).MatchString(tr.InvocationRole) {
				t.Errorf("%s: invocationRole %q is not acs:ram::<account>:role/<lower-case name>", where, tr.InvocationRole)
			}
		case "eventbridge":
			src := c.EventSourceConfig
			p := src.EventSourceParameters.SourceMNSParameters
			if src.EventSourceType != "MNS" || p == nil {
				t.Errorf("%s: eventSourceType %q; the function expects an MNS queue source with sourceMNSParameters", where, src.EventSourceType)
				continue
			}
			if p.RegionID != d.fn.Region {
				t.Errorf("%s: RegionId %q; the queue must be in the function's region %s", where, p.RegionID, d.fn.Region)
			}
			if queue := d.fn.EnvironmentVariables["WORK_QUEUE"]; p.QueueName != queue {
				t.Errorf("%s: QueueName %q is not WORK_QUEUE %q: the function would send work where nothing listens", where, p.QueueName, queue)
			}
			if c.EventSinkConfig.DeliveryOption.EventSchema != "CloudEvents" {
				t.Errorf("%s: eventSchema %q; events.Decode expects CloudEvents", where, c.EventSinkConfig.DeliveryOption.EventSchema)
			}
			if c.TriggerEnable == nil || c.AsyncInvocationType == nil {
				t.Errorf("%s: set triggerEnable and asyncInvocationType explicitly", where)
			}
		default:
			t.Errorf("%s: trigger type %q: the function decodes timer, mns_topic and eventbridge (MNS queue) events only", where, tr.TriggerType)
		}
	}
	for i, tr := range d.fn.Triggers {
		if tr.TriggerType == "eventbridge" && i < lastOther {
			t.Errorf("%s comes before %s: keep EventBridge triggers last (fc3 skips the triggers after an unchanged EventBridge trigger)", d.triggerAt(i), d.triggerAt(lastOther))
		}
	}
	if timers == 0 {
		t.Errorf("%s: no timer trigger: nothing starts the nightly sweep", deploySYAML)
	}
}

// fcCron parses the timer expressions checkCron lets through: six fields,
// seconds first, an optional CRON_TZ= zone, and @every.
var fcCron = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var cronFieldNames = []string{"seconds", "minutes", "hours", "day-of-month", "month", "day-of-week"}

// parseCron checks an FC timer expression, "@every <duration>" or six
// fields, seconds first, after an optional CRON_TZ=<IANA zone> (else UTC),
// and returns its schedule. robfig/cron checks the fields' ranges, names,
// lists and steps; the rest is FC's own dialect, which robfig/cron takes
// more loosely: only @every among the descriptors, with a positive
// duration; the zone only as CRON_TZ=; ? alone, and only in day-of-month
// or day-of-week; no empty list item; and day-of-week 7 for Sunday (FC's
// pages say both 0-6 SUN-SAT and 1-7 MON-SUN, which agree on every value
// but Sunday's, so both 0 and 7 are Sunday).
func parseCron(expr string) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "@") {
		rest, ok := strings.CutPrefix(expr, "@every ")
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if !ok || err != nil || d <= 0 {
			return nil, fmt.Errorf("FC takes @every with a positive duration such as 5m, and no other @ form")
		}
		return fcCron.Parse(expr)
	}
	fields := strings.Fields(expr)
	var zone []string
	if len(fields) > 0 && strings.HasPrefix(fields[0], "CRON_TZ=") {
		name := strings.TrimPrefix(fields[0], "CRON_TZ=")
		if _, err := time.LoadLocation(name); err != nil || name == "" || name == "Local" {
			return nil, fmt.Errorf("CRON_TZ=%s is not an IANA time zone", name)
		}
		zone, fields = fields[:1], fields[1:]
	}
	if len(fields) != 6 {
		return nil, fmt.Errorf("%d fields, want 6: seconds minutes hours day-of-month month day-of-week (FC's cron starts with seconds)", len(fields))
	}
	for i, f := range fields {
		if slices.Contains(strings.Split(f, ","), "") {
			return nil, fmt.Errorf("%s field %q: an empty list item", cronFieldNames[i], f)
		}
		if strings.Contains(f, "?") && (f != "?" || (i != 3 && i != 5)) {
			return nil, fmt.Errorf("%s field %q: ? stands alone, and only in day-of-month and day-of-week", cronFieldNames[i], f)
		}
	}
	fields[5] = sundayAsZero(fields[5])
	return fcCron.Parse(strings.Join(append(zone, fields...), " "))
}

func checkCron(expr string) error {
	_, err := parseCron(expr)
	return err
}

// sundayAsZero writes a day-of-week field's 7 (Sunday in FC's 1-7 reading)
// as robfig/cron's 0: "7" → "0", "a-7" → "a-6,0", "a-7/n" → "a-6/n" and 0
// when the step lands on 7. Anything else passes as it is.
func sundayAsZero(field string) string {
	var out []string
	for _, item := range strings.Split(field, ",") {
		base, step, hasStep := strings.Cut(item, "/")
		lo, hi, isRange := strings.Cut(base, "-")
		switch {
		case base == "7":
			out = append(out, "0")
		case isRange && hi == "7":
			from := strings.ToUpper(lo)
			if i := slices.Index([]string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, from); i >= 0 {
				from = strconv.Itoa(i)
			}
			a, errA := strconv.Atoi(from)
			n, errN := 1, error(nil)
			if hasStep {
				n, errN = strconv.Atoi(step)
			}
			if errA != nil || errN != nil || n < 1 || a > 6 {
				out = append(out, item) // robfig/cron says what is wrong with it
				continue
			}
			out = append(out, lo+"-6"+strings.TrimPrefix(item, base))
			if (7-a)%n == 0 {
				out = append(out, "0")
			}
		default:
			out = append(out, item)
		}
	}
	return strings.Join(out, ",")
}

func TestCheckCron(t *testing.T) {
	good := []string{
		"CRON_TZ=Asia/Shanghai 0 5 1 * * *", "0 */5 * * * *", "@every 5m", "0 0 1 ? * MON-FRI",
		"0 0,30 9-17 1-15 JAN,jul *", "30 59 23 31 12 0", "0 0 0 * * 7", "0 0 0 * * 5-7", "0 0 0 * * FRI-7/2",
	}
	bad := []string{
		"5 1 * * *", "CRON_TZ=Asia/Shanghai 5 1 * * *", "0 0 0 * * * *", "60 0 0 * * *", "0 0 24 * * *",
		"0 0 0 0 * *", "0 0 0 * 13 *", "0 0 0 * * 8", "CRON_TZ=Mars/Olympus 0 0 0 * * *", "0 */0 * * * *",
		"0 5-1 * * * *", "? 0 0 * * *", "@every soon", "0 0 0 * FOO *", "0 0 0 * * ,",
		// robfig/cron takes these; FC's dialect does not.
		"@daily", "@every 0s", "@every -5m", "TZ=UTC 0 0 0 * * *", "CRON_TZ= 0 0 0 * * *",
		"0 ? 0 * * *", "0 0 0 ?,1 * *", "0 0 0 1,,2 * *",
	}
	for _, e := range good {
		if err := checkCron(e); err != nil {
			t.Errorf("checkCron(%q) = %v, want nil", e, err)
		}
	}
	for _, e := range bad {
		if err := checkCron(e); err == nil {
			t.Errorf("checkCron(%q) accepted a bad expression", e)
		}
	}
}

func TestDeployEnvironment(t *testing.T) {
	d := loadDeployment(t)
	env := d.fn.EnvironmentVariables
	for name := range env {
		if !slices.Contains(deployEnvNames, name) {
			t.Errorf("%s: %s is not a variable handler.ConfigFromEnv reads (misspelt?)", d.at("environmentVariables"), name)
		}
		if strings.HasPrefix(name, "FC_") {
			t.Errorf("%s: %s: FC reserves names starting with FC_", d.at("environmentVariables"), name)
		}
	}
	cfg, wiring, err := handler.ReadEnv(func(name string) string { return env[name] }, d.fn.Region)
	if err != nil {
		t.Fatalf("%s: the function would not start: %v", d.at("environmentVariables"), err)
	}
	if wiring.MNSEndpoint == "" || wiring.OutcomeTopic == "" || wiring.WorkQueue == "" {
		t.Errorf("%s: MNS_ENDPOINT, OUTCOME_TOPIC and WORK_QUEUE must be set: outcomes and continuations go through MNS", d.at("environmentVariables"))
	}
	if !wiring.Ledger() {
		t.Errorf("%s: LEDGER_ENDPOINT, LEDGER_INSTANCE and LEDGER_TABLE must be set: without the ledger a redelivered request can upgrade a gateway twice", d.at("environmentVariables"))
	}
	// A claim must outlive the run that made it, or a slow run's gateway
	// could be claimed again while its call is still on its way.
	if d.fn.Timeout == nil {
		return // TestDeployFunction reports it
	}
	if timeout := time.Duration(*d.fn.Timeout) * time.Second; cfg.LedgerLease <= timeout {
		t.Errorf("%s: LEDGER_LEASE %v does not outlive the function's timeout %v", d.at("environmentVariables"), cfg.LedgerLease, timeout)
	}
}

// TestDeployEnvNamesAreWhatConfigFromEnvReads watches which names
// ConfigFromEnv asks for, so deployEnvNames cannot drift from it.
func TestDeployEnvNamesAreWhatConfigFromEnvReads(t *testing.T) {
	var read []string
	_, _ = handler.ConfigFromEnv(func(name string) string {
		if !slices.Contains(read, name) {
			read = append(read, name)
		}
		return ""
	}, "cn-shanghai")
	slices.Sort(read)
	want := slices.Sorted(slices.Values(deployEnvNames))
	if !slices.Equal(read, want) {
		t.Errorf("handler.ConfigFromEnv reads %v;\ndeployEnvNames lists %v: update the list", read, want)
	}
}

// A RAM policy document. Action and Resource may each be a string or a list.
type ramPolicy struct {
	Version   string
	Statement []struct {
		Effect    string
		Action    ramStrings
		Resource  ramStrings
		Principal struct{ Service ramStrings }
	}
}

type ramStrings []string

func (s *ramStrings) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

func readRAMPolicy(t *testing.T, path string) ramPolicy {
	t.Helper()
	raw, err := os.ReadFile(repoFile(path))
	if err != nil {
		t.Fatal(err)
	}
	var p ramPolicy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.Version != "1" || len(p.Statement) == 0 {
		t.Fatalf("%s: want Version \"1\" and at least one statement", path)
	}
	return p
}

// deployAllResourcesOnly are the actions RAM cannot scope to a resource, the
// only ones that may be granted on "*".
var deployAllResourcesOnly = []string{"smartag:DescribeSmartAccessGateways"}

// ramGlob turns a RAM resource pattern into a regexp: * matches anything.
func ramGlob(pattern string) *regexp.Regexp {
	return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$")
}

// allows reports whether an Allow statement grants action on resource.
func (p ramPolicy) allows(action, resource string) bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" || !slices.Contains(s.Action, action) {
			continue
		}
		for _, r := range s.Resource {
			if ramGlob(r).MatchString(resource) {
				return true
			}
		}
	}
	return false
}

func TestDeployRAMPolicy(t *testing.T) {
	d := loadDeployment(t)
	p := readRAMPolicy(t, deployRAMPolicy)
	for i, s := range p.Statement {
		for _, a := range s.Action {
			switch {
			case strings.Contains(a, "*"):
				t.Errorf("%s: statement %d grants %q: name each action", deployRAMPolicy, i, a)
			case strings.HasPrefix(a, "smartag:Upgrade") || strings.HasPrefix(a, "smartag:Downgrade"):
				t.Errorf("%s: statement %d grants %s, which changes the gateway's billing: never", deployRAMPolicy, i, a)
			}
			if slices.Contains(s.Resource, "*") && !slices.Contains(deployAllResourcesOnly, a) {
				t.Errorf("%s: statement %d grants %s on every resource; RAM can scope it", deployRAMPolicy, i, a)
			}
		}
	}

	// SAG: each configured region, any gateway in it.
	cfg, wiring, err := handler.ReadEnv(func(name string) string { return d.fn.EnvironmentVariables[name] }, d.fn.Region)
	if err != nil {
		t.Fatalf("%s: %v", deploySYAML, err)
	}
	for _, region := range cfg.Regions {
		gateway := fmt.Sprintf("acs:smartag:%s:%s:smartag/sag-0example", region, deployTestAccount)
		for _, a := range []string{
			"smartag:DescribeSmartAccessGateways", "smartag:DescribeSmartAccessGatewayVersions",
			"smartag:DescribeSmartAccessGatewayAttribute", "smartag:UpdateSmartAccessGatewayVersion",
		} {
			if !p.allows(a, gateway) {
				t.Errorf("%s does not grant %s on gateways in %s (SAG_REGIONS)", deployRAMPolicy, a, region)
			}
		}
	}

	// MNS: what s.yaml names, in the function's region.
	mns := func(kind, name string) string {
		return fmt.Sprintf("acs:mns:%s:%s:/%s/%s/messages", d.fn.Region, deployTestAccount, kind, name)
	}
	if !p.allows("mns:PublishMessage", mns("topics", wiring.OutcomeTopic)) {
		t.Errorf("%s does not grant mns:PublishMessage on OUTCOME_TOPIC %s", deployRAMPolicy, wiring.OutcomeTopic)
	}
	for _, a := range []string{"mns:SendMessage", "mns:BatchSendMessage"} {
		if !p.allows(a, mns("queues", wiring.WorkQueue)) {
			t.Errorf("%s does not grant %s on WORK_QUEUE %s", deployRAMPolicy, a, wiring.WorkQueue)
		}
	}
	if a := d.fn.AsyncInvokeConfig; a != nil && a.DestinationConfig.OnFailure != nil {
		dest := a.DestinationConfig.OnFailure.Destination
		action := "mns:PublishMessage"
		if strings.Contains(dest, ":/queues/") {
			action = "mns:SendMessage"
		}
		if !p.allows(action, dest) {
			t.Errorf("%s does not grant %s on the onFailure destination %s: FC delivers it with the function's role", deployRAMPolicy, action, dest)
		}
	}

	// The ledger: every Tablestore action the adapter calls (read off its
	// code, so a new call cannot go without its permission), on its one
	// table. CreateTable is the operator's, once (scripts/ledgertable).
	table := fmt.Sprintf("acs:ots:%s:%s:instance/%s/table/%s", d.fn.Region, deployTestAccount, wiring.LedgerInstance, wiring.LedgerTable)
	for _, a := range ledgerActions(t) {
		if a != "ots:CreateTable" && !p.allows(a, table) {
			t.Errorf("%s does not grant %s on the ledger table %s: the ledger adapter calls it", deployRAMPolicy, a, table)
		}
	}

	// Logs: FC writes them with the function's role.
	if lc := d.fn.LogConfig; lc != nil {
		store := fmt.Sprintf("acs:log:%s:%s:project/%s/logstore/%s", d.fn.Region, deployTestAccount, lc.Project, lc.Logstore)
		if !p.allows("log:PostLogStoreLogs", store) {
			t.Errorf("%s does not grant log:PostLogStoreLogs on %s", deployRAMPolicy, store)
		}
	}
}

// ledgerActions are the Tablestore actions internal/tablestore calls: each
// l.client.<Action>( in its code.
func ledgerActions(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(repoFile("internal/tablestore/*.go"))
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`\bl\.client\.([A-Z][A-Za-z]+)\(`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			if a := "ots:" + m[1]; !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if len(out) < 4 {
		t.Fatalf("found only %v in internal/tablestore: has the adapter's client changed its name?", out)
	}
	return out
}

func TestDeployTrustPolicy(t *testing.T) {
	p := readRAMPolicy(t, deployTrustPolicy)
	for _, s := range p.Statement {
		if s.Effect == "Allow" && slices.Contains(s.Action, "sts:AssumeRole") && slices.Contains(s.Principal.Service, "fc.aliyuncs.com") {
			return
		}
	}
	t.Errorf("%s: no statement lets fc.aliyuncs.com assume the role", deployTrustPolicy)
}

// The operators' policies: those who may only look can invoke the look-only
// function and nothing else; those who may steer can also invoke the control
// function; neither may invoke the function the triggers reach (a sweep is
// for the timer and the requests topic) nor anything else at all.
func TestDeployOperatorPolicies(t *testing.T) {
	d := loadDeployment(t)
	arn := func(name string) string {
		return fmt.Sprintf("acs:fc:%s:%s:functions/%s", d.fn.Region, "1234567890123456", name)
	}
	for _, c := range []struct {
		path    string
		may     []string
		mayNot  []string
		subject string
	}{
		{"deploy/operator-look-policy.json", []string{d.query.FunctionName}, []string{d.control.FunctionName, d.fn.FunctionName}, "look"},
		{"deploy/operator-steer-policy.json", []string{d.query.FunctionName, d.control.FunctionName}, []string{d.fn.FunctionName}, "steer"},
	} {
		p := readRAMPolicy(t, c.path)
		for _, s := range p.Statement {
			if s.Effect == "Allow" && !slices.Equal(s.Action, []string{"fc:InvokeFunction"}) {
				t.Errorf("%s: allows %v; operators who %s need fc:InvokeFunction alone", c.path, s.Action, c.subject)
			}
		}
		for _, name := range c.may {
			if !p.allows("fc:InvokeFunction", arn(name)) {
				t.Errorf("%s: does not let operators who %s invoke %s (%s)", c.path, c.subject, name, arn(name))
			}
		}
		for _, name := range c.mayNot {
			if p.allows("fc:InvokeFunction", arn(name)) {
				t.Errorf("%s: lets operators who %s invoke %s", c.path, c.subject, name)
			}
		}
		if p.allows("fc:InvokeFunction", arn("some-other-function")) {
			t.Errorf("%s: lets operators invoke any function", c.path)
		}
	}
}

// Every maintenance window is reached: for each day of a year (daylight
// saving's changes included), a sweep timer fires at a time an upgrade fits
// in the window of every region SAG_REGIONS names, by MAINTENANCE_WINDOWS or
// MAINTENANCE_WINDOW. A region whose window no timer reaches would never be
// swept: the timer's run lists only the regions whose window is open.
func TestDeployTimersReachEveryWindow(t *testing.T) {
	d := loadDeployment(t)
	env := d.fn.EnvironmentVariables
	cfg, err := handler.ConfigFromEnv(func(name string) string { return env[name] }, d.fn.Region)
	if err != nil {
		t.Fatal(err)
	}
	var crons []string
	for _, tr := range d.fn.Triggers {
		if tr.TriggerType != "timer" || tr.Config.Enable == nil || !*tr.Config.Enable {
			continue
		}
		if req, err := events.ParseRequest([]byte(tr.Config.Payload)); err == nil && (req.Kind == "" || req.Kind == "sweep") {
			crons = append(crons, tr.Config.CronExpression)
		}
	}
	for _, problem := range windowsUnreached(cfg, crons, 2027) {
		t.Errorf("%s: %s", deploySYAML, problem)
	}
}

// windowsUnreached says which regions' windows the timers miss on some day
// of year. Only cron timers count: FC does not say when an @every timer
// fires first, so which times of day it hits is not known.
func windowsUnreached(cfg handler.Config, crons []string, year int) []string {
	var timers []*cron.SpecSchedule
	for _, c := range crons {
		if s, err := parseCron(c); err == nil {
			if spec, ok := s.(*cron.SpecSchedule); ok {
				timers = append(timers, spec)
			}
		} // TestDeployTriggers reports an expression that does not parse
	}
	var problems []string
	for _, region := range cfg.Regions {
		w := cfg.WindowOf(region)
		if w.Always() {
			if len(crons) == 0 {
				problems = append(problems, region+": no sweep timer")
			}
			continue
		}
		for day := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() == year; day = day.AddDate(0, 0, 1) {
			if !reachedOn(w, cfg.UpgradeTime, timers, day) {
				problems = append(problems, fmt.Sprintf("%s: no sweep timer fires inside its window %s with room for UPGRADE_TIME %v on %s "+
					"(add a timer in its zone at a time inside the window that exists once every day, not in an hour daylight saving skips or repeats, e.g. cronExpression 'CRON_TZ=Europe/Berlin 0 5 3 * * *' for 02:00-04:00 there)", region, w, cfg.UpgradeTime, day.Format(time.DateOnly)))
				break
			}
		}
	}
	return problems
}

// reachedOn reports whether a timer fires, on the calendar day of day in
// the window's zone, at a time an upgrade of d fits in w. A firing at a
// wall-clock time that day's daylight saving change skips or repeats does
// not count: FC's timer page says a timer may then fire twice or not at all
// (https://help.aliyun.com/document_detail/2513615.html, on CRON_TZ).
// robfig/cron skips a time in the gap and fires twice in a repeated hour;
// FC promises neither.
func reachedOn(w handler.Window, d time.Duration, timers []*cron.SpecSchedule, day time.Time) bool {
	loc := zoneOf(w)
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	end := start.AddDate(0, 0, 1)
	for _, s := range timers {
		// Next gives the first firing after its argument, whole seconds.
		for at := s.Next(start.Add(-time.Second)); !at.IsZero() && at.Before(end); at = s.Next(at) {
			if w.Allows(at, d) && !atClockChange(at, s.Location) {
				return true
			}
		}
	}
	return false
}

// atClockChange reports whether at's wall-clock time in loc is one a
// daylight saving change skips or repeats: the same reading, under the
// offset in force a day before or after, names another instant that really
// has that offset.
func atClockChange(at time.Time, loc *time.Location) bool {
	_, off := at.In(loc).Zone()
	for _, near := range []time.Time{at.AddDate(0, 0, -1), at.AddDate(0, 0, 1)} {
		_, o := near.In(loc).Zone()
		if o == off {
			continue
		}
		if _, got := at.Add(time.Duration(off-o) * time.Second).In(loc).Zone(); got == o {
			return true
		}
	}
	return false
}

// zoneOf is a window's time zone, from its text ("01:00-05:00 Asia/Shanghai").
func zoneOf(w handler.Window) *time.Location {
	_, zone, _ := strings.Cut(w.String(), " ")
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// The check itself: a second region's window needs its own timer, across
// daylight saving's changes.
func TestWindowsUnreached(t *testing.T) {
	cfg, err := handler.ConfigFromEnv(func(name string) string {
		return map[string]string{"SAG_REGIONS": "cn-shanghai,eu-central-1", "MAINTENANCE_WINDOW": "01:00-05:00",
			"MAINTENANCE_WINDOWS": "eu-central-1=02:00-04:00@Europe/Berlin"}[name]
	}, "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	shanghai := "CRON_TZ=Asia/Shanghai 0 5 1 * * *"
	if p := windowsUnreached(cfg, []string{shanghai}, 2027); len(p) != 1 || !strings.HasPrefix(p[0], "eu-central-1:") {
		t.Fatalf("Berlin without a timer: %v", p)
	}
	// 02:05 Berlin time does not exist on the day clocks spring forward
	// (02:00 → 03:00): that night is missed. 03:05 exists every day.
	if p := windowsUnreached(cfg, []string{shanghai, "CRON_TZ=Europe/Berlin 0 5 2 * * *"}, 2027); len(p) != 1 || !strings.Contains(p[0], "2027-03-28") {
		t.Fatalf("a Berlin timer at 02:05: %v", p)
	}
	if p := windowsUnreached(cfg, []string{shanghai, "CRON_TZ=Europe/Berlin 0 5 3 * * *"}, 2027); len(p) != 0 {
		t.Fatalf("with Berlin's timer at 03:05: %v", p)
	}
	// 00:30 UTC is 02:30 in Berlin's summer, but 01:30 in its winter.
	if p := windowsUnreached(cfg, []string{shanghai, "0 30 0 * * *"}, 2027); len(p) != 1 {
		t.Fatalf("a UTC timer that misses Berlin's winter: %v", p)
	}
	// Hourly reaches every window.
	if p := windowsUnreached(cfg, []string{"0 5 * * * *"}, 2027); len(p) != 0 {
		t.Fatalf("hourly: %v", p)
	}

	// New York's clocks go back from 02:00 to 01:00 (2027-11-07) and
	// forward from 02:00 to 03:00 (2027-03-14): 01:30 happens twice on the
	// first night, 02:30 not at all on the second. FC warns that a timer
	// may then fire twice or not at all, so neither night counts as
	// reached, though robfig/cron fires 01:30 twice that night.
	cfg, err = handler.ConfigFromEnv(func(name string) string {
		return map[string]string{"SAG_REGIONS": "eu-central-1", "MAINTENANCE_WINDOWS": "eu-central-1=00:00-05:00@America/New_York"}[name]
	}, "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	for timer, missed := range map[string]string{
		"CRON_TZ=America/New_York 0 30 1 * * *":   "2027-11-07",
		"CRON_TZ=America/New_York 0 30 2 * * *":   "2027-03-14",
		"CRON_TZ=America/New_York 0 30 3 * * *":   "",
		"CRON_TZ=America/New_York 0 30 1,3 * * *": "",
	} {
		p := windowsUnreached(cfg, []string{timer}, 2027)
		if missed == "" && len(p) != 0 || missed != "" && (len(p) != 1 || !strings.Contains(p[0], missed)) {
			t.Errorf("%s: %v, want a miss on %q", timer, p, missed)
		}
	}
}

// Sunday is 0 and 7 (FC's two readings of day-of-week); each schedule
// fires on the days it names, in a week from Sunday 2027-01-03.
func TestParseCronDaysOfWeek(t *testing.T) {
	for expr, want := range map[string][]time.Weekday{
		"0 0 12 * * 0":       {time.Sunday},
		"0 0 12 * * 7":       {time.Sunday},
		"0 0 12 ? * SUN":     {time.Sunday},
		"0 0 12 * * 5-7":     {time.Sunday, time.Friday, time.Saturday},
		"0 0 12 * * 1-7/3":   {time.Sunday, time.Monday, time.Thursday},
		"0 0 12 * * 2-7/2":   {time.Tuesday, time.Thursday, time.Saturday},
		"0 0 12 * * MON-FRI": {time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
		"0 0 12 * * 6,7":     {time.Sunday, time.Saturday},
		"0 0 12 * * THU-7/3": {time.Sunday, time.Thursday},
	} {
		s, err := parseCron(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		start := time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC)
		var got []time.Weekday
		for at := s.Next(start); at.Before(start.AddDate(0, 0, 7)); at = s.Next(at) {
			got = append(got, at.Weekday())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s fires on %v, want %v", expr, got, want)
		}
	}
}

// deployFunctions are the three functions s.yaml deploys, by resource name.
func (d deployment) functions() []struct {
	name  string
	props deployProps
} {
	return []struct {
		name  string
		props deployProps
	}{{d.name, d.fn}, {d.controlName, d.control}, {d.queryName, d.query}}
}

// fc3Pinned is how a pinned component is written: fc3@<version>, the form
// Serverless Devs' loader splits at "@" and fetches as that release's tag
// (Serverless-Devs/toolkit packages/load-component/src/utils/index.ts,
// getProvider and getUrlWithVersion).
var fc3Pinned = regexp.MustCompile(`^fc3@(\d+\.\d+\.\d+)$`)

// componentProblems: every function uses one pinned fc3 release, so a new
// fc3 cannot change what `s deploy` does unseen (this file's knowledge of
// fc3 is of one release's source).
func componentProblems(d deployment) []string {
	var problems []string
	versions := map[string]bool{}
	for name, r := range d.spec.Resources {
		m := fc3Pinned.FindStringSubmatch(r.Component)
		if m == nil {
			problems = append(problems, fmt.Sprintf("resource %s: component %q is not pinned: write fc3@<version>, a published release (devsapp/fc3 publish.yaml, its tag)", name, r.Component))
			continue
		}
		versions[m[1]] = true
	}
	if len(versions) > 1 {
		problems = append(problems, fmt.Sprintf("the resources pin different fc3 releases %v: one deploy, one component", slices.Sorted(maps.Keys(versions))))
	}
	return problems
}

// aliasProblems: every trigger invokes the alias, and the asynchronous
// settings (retries, onFailure) are written for that qualifier: fc3 writes
// asyncInvokeConfig for its `qualifier` alone, LATEST when it is unset
// (devsapp/fc3 0.1.22, src/subCommands/deploy/impl/async_invoke_config.ts),
// and FC keeps them per qualifier, so settings on LATEST would not apply to
// what the triggers invoke.
func aliasProblems(d deployment) []string {
	var problems []string
	alias := d.spec.Vars["alias"]
	// FC's alias names: a letter or _, then letters, digits, _ and -, up to
	// 128 (internal/cloudsim/fcapi checks the same); LATEST names no version.
	if !regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$`).MatchString(alias) || alias == "LATEST" {
		return []string{fmt.Sprintf("vars.alias %q: want the name of an alias such as live (not LATEST: `s deploy` would change what the triggers run at once)", alias)}
	}
	for i, tr := range d.fn.Triggers {
		if tr.Qualifier != alias {
			problems = append(problems, fmt.Sprintf("%s: qualifier %q, want the alias %q: a trigger on LATEST runs whatever was deployed last, and a rollback is a redeploy", d.triggerAt(i), tr.Qualifier, alias))
		}
	}
	if a := d.fn.AsyncInvokeConfig; a == nil || a.Qualifier != alias {
		got := "LATEST (unset)"
		if a != nil && a.Qualifier != "" {
			got = a.Qualifier
		}
		problems = append(problems, fmt.Sprintf("%s: qualifier is %s, want the alias %q: fc3 writes the retries and onFailure for that qualifier only, and the triggers invoke the alias", d.at("asyncInvokeConfig"), got, alias))
	}
	return problems
}

// rateProblems: each instance paces its SAG calls with API_QPS as a ceiling
// and cuts its rate when throttled, so instances sharing the account's limit
// find their shares (README "Benchmarks": 4 and 8 instances, each with the
// whole limit, 1.06–1.12× the bound with 1.3–2.0% of calls throttled). What the
// deployment must hold is therefore a cap on the instances that share it
// (the reserved concurrency of each function, all three call SAG), no more
// of them than the pacing was measured with, and no ceiling above the limit
// the operator configures (SAG publishes none).
func rateProblems(d deployment) []string {
	var problems []string
	limit, err := strconv.ParseFloat(d.spec.Vars["sagRateLimit"], 64)
	if err != nil || !(limit > 0) {
		problems = append(problems, fmt.Sprintf("vars.sagRateLimit %q: want the SAG calls a second the account may make of each action, a number above 0", d.spec.Vars["sagRateLimit"]))
	}
	instances := 0
	var terms []string
	for _, f := range d.functions() {
		c := f.props.ConcurrencyConfig
		if c == nil || c.ReservedConcurrency < 1 {
			problems = append(problems, fmt.Sprintf("resource %s: no concurrencyConfig.reservedConcurrency of 1 or more: nothing bounds how many of its instances call SAG at once (0 would disable the function)", f.name))
			continue
		}
		instances += c.ReservedConcurrency
		terms = append(terms, fmt.Sprintf("%s %d", f.name, c.ReservedConcurrency))
		cfg, err := handler.ConfigFromEnv(func(name string) string { return f.props.EnvironmentVariables[name] }, f.props.Region)
		if err != nil {
			continue // TestDeployEnvironment reports it
		}
		if limit > 0 && cfg.APIQPS > limit {
			problems = append(problems, fmt.Sprintf("resource %s: API_QPS %g is above vars.sagRateLimit %g: a ceiling above the account's limit starts every instance over it", f.name, cfg.APIQPS, limit))
		}
	}
	if instances > maxSharing {
		problems = append(problems, fmt.Sprintf("reserved concurrency %s = %d instances sharing the SAG limit, above %d: the pacing settles on shares measured up to 8 workers and the two operators' functions",
			strings.Join(terms, " + "), instances, maxSharing))
	}
	return problems
}

// maxSharing is how many instances may share the SAG limit: the 8 workers
// the distributed benchmark measured, and the two operators' functions.
const maxSharing = 10

// deadLetterProblems: a work item EventBridge cannot hand to the function
// (after its push retries) goes to a dead-letter queue, not nowhere. The
// keys and the ARN form come from FC's API 2023-03-30 structs RunOptions
// (deadLetterQueue) and DeadLetterQueue (Arn), EventBridge's SDK example of
// RunOptions.DeadLetterQueue.Arn, acs:mns:cn-hangzhou:<account>:/queues/<name>
// (aliyun eventbridge-20200401), and devsapp/fc3 __tests__/complete-props.yaml.
// fc3's schema does not look inside triggerConfig, so only this test does.
func deadLetterProblems(d deployment) []string {
	var problems []string
	for i, tr := range d.fn.Triggers {
		if tr.TriggerType != "eventbridge" {
			continue
		}
		ro := tr.Config.RunOptions
		where := d.triggerAt(i)
		if ro.DeadLetterQueue == nil || ro.DeadLetterQueue.Arn == "" {
			problems = append(problems, fmt.Sprintf("%s: no runOptions.deadLetterQueue.Arn: a work item that cannot be delivered is dropped", where))
			continue
		}
		arn := ro.DeadLetterQueue.Arn
		if err := checkMNSArn(arn, d.fn.Region, false); err != nil {
			problems = append(problems, fmt.Sprintf("%s: deadLetterQueue: %v", where, err))
		} else if !strings.Contains(arn, ":/queues/") {
			problems = append(problems, fmt.Sprintf("%s: deadLetterQueue %q is not a queue (acs:mns:<region>:<account>:/queues/<name>)", where, arn))
		} else if queue := arn[strings.LastIndex(arn, "/")+1:]; queue == d.fn.EnvironmentVariables["WORK_QUEUE"] {
			problems = append(problems, fmt.Sprintf("%s: deadLetterQueue is WORK_QUEUE itself: an item that cannot be delivered would come round for ever", where))
		}
		// EventBridge uses the dead-letter queue only when it tolerates
		// errors; with NONE a failing item stops the stream instead.
		if ro.ErrorsTolerance != "ALL" {
			problems = append(problems, fmt.Sprintf("%s: errorsTolerance %q: with a dead-letter queue it is ALL (NONE stops the stream at the first item it cannot deliver)", where, ro.ErrorsTolerance))
		}
	}
	return problems
}

// Public endpoints, on HTTPS, in the function's region. The function
// reaches SAG's OpenAPI over the internet anyway (internetAccess), so MNS
// and Tablestore go the same way: one route, TLS on every call, no VPC to
// configure. An MNS "-internal" endpoint (plain HTTP) or a Tablestore VPC
// endpoint would mix two.
var (
	deployMNSEndpoint    = regexp.MustCompile(`^https://([0-9]+)\.mns\.([a-z0-9-]+)\.aliyuncs\.com/?$`)
	deployLedgerEndpoint = regexp.MustCompile(`^https://([a-z][a-z0-9-]*)\.([a-z0-9-]+)\.ots\.aliyuncs\.com/?$`)
)

func endpointProblems(d deployment) []string {
	var problems []string
	for _, f := range d.functions() {
		if f.props.InternetAccess == nil || !*f.props.InternetAccess {
			problems = append(problems, fmt.Sprintf("resource %s: internetAccess is not true: SAG, MNS and Tablestore are reached on their public endpoints", f.name))
		}
	}
	env := d.fn.EnvironmentVariables
	mns := deployMNSEndpoint.FindStringSubmatch(env["MNS_ENDPOINT"])
	switch {
	case mns == nil:
		problems = append(problems, fmt.Sprintf("MNS_ENDPOINT %q is not the public HTTPS endpoint https://<account>.mns.<region>.aliyuncs.com", env["MNS_ENDPOINT"]))
	case mns[1] != deployTestAccount || mns[2] != d.fn.Region:
		problems = append(problems, fmt.Sprintf("MNS_ENDPOINT %q: want ${config('AccountID')} and the function's region %s", env["MNS_ENDPOINT"], d.fn.Region))
	}
	ots := deployLedgerEndpoint.FindStringSubmatch(env["LEDGER_ENDPOINT"])
	switch {
	case ots == nil || strings.HasSuffix(ots[2], "-internal") || strings.Contains(env["LEDGER_ENDPOINT"], ".vpc."):
		problems = append(problems, fmt.Sprintf("LEDGER_ENDPOINT %q is not the public HTTPS endpoint https://<instance>.<region>.ots.aliyuncs.com", env["LEDGER_ENDPOINT"]))
	case ots[1] != env["LEDGER_INSTANCE"] || ots[2] != d.fn.Region:
		problems = append(problems, fmt.Sprintf("LEDGER_ENDPOINT %q: want LEDGER_INSTANCE %q in the function's region %s", env["LEDGER_ENDPOINT"], env["LEDGER_INSTANCE"], d.fn.Region))
	}
	return problems
}

// The production settings of s.yaml, each a check of its own (below, each
// is shown to catch the mistake it is for).
var deployChecks = map[string]func(deployment) []string{
	"component":   componentProblems,
	"alias":       aliasProblems,
	"rate":        rateProblems,
	"dead-letter": deadLetterProblems,
	"endpoints":   endpointProblems,
}

func TestDeployProductionSettings(t *testing.T) {
	d := loadDeployment(t)
	for _, name := range slices.Sorted(maps.Keys(deployChecks)) {
		for _, p := range deployChecks[name](d) {
			t.Errorf("%s: %s", deploySYAML, p)
		}
	}
}

// Each check fails on the mistake it is for: s.yaml as it is, changed in
// one place.
func TestDeployProductionChecksCatchMistakes(t *testing.T) {
	for _, c := range []struct {
		check, mistake string
		change         func(d *deployment)
	}{
		{"component", "fc3 unpinned", func(d *deployment) { r := d.spec.Resources[d.name]; r.Component = "fc3"; d.spec.Resources[d.name] = r }},
		{"component", "two releases", func(d *deployment) {
			r := d.spec.Resources[d.queryName]
			r.Component = "fc3@0.1.21"
			d.spec.Resources[d.queryName] = r
		}},
		{"alias", "a trigger on LATEST", func(d *deployment) { d.fn.Triggers[0].Qualifier = "LATEST" }},
		{"alias", "asynchronous settings for LATEST", func(d *deployment) { d.fn.AsyncInvokeConfig.Qualifier = "" }},
		{"alias", "the alias LATEST", func(d *deployment) { d.spec.Vars["alias"] = "LATEST" }},
		{"rate", "no cap on the workers", func(d *deployment) { d.fn.ConcurrencyConfig = nil }},
		{"rate", "no cap on the control function", func(d *deployment) { d.control.ConcurrencyConfig = nil }},
		{"rate", "a cap of 0", func(d *deployment) { d.query.ConcurrencyConfig.ReservedConcurrency = 0 }},
		{"rate", "one worker too many", func(d *deployment) { d.fn.ConcurrencyConfig.ReservedConcurrency++ }},
		{"rate", "API_QPS above the limit", func(d *deployment) { d.fn.EnvironmentVariables["API_QPS"] = "120" }},
		{"rate", "no limit", func(d *deployment) { delete(d.spec.Vars, "sagRateLimit") }},
		{"dead-letter", "none", func(d *deployment) { last(d.fn.Triggers).Config.RunOptions.DeadLetterQueue = nil }},
		{"dead-letter", "a topic", func(d *deployment) {
			last(d.fn.Triggers).Config.RunOptions.DeadLetterQueue.Arn = "acs:mns:" + d.fn.Region + ":" + deployTestAccount + ":/topics/dead"
		}},
		{"dead-letter", "a destination ARN", func(d *deployment) { last(d.fn.Triggers).Config.RunOptions.DeadLetterQueue.Arn += "/messages" }},
		{"dead-letter", "the work queue", func(d *deployment) {
			last(d.fn.Triggers).Config.RunOptions.DeadLetterQueue.Arn = "acs:mns:" + d.fn.Region + ":" + deployTestAccount + ":/queues/" + d.fn.EnvironmentVariables["WORK_QUEUE"]
		}},
		{"dead-letter", "errors not tolerated", func(d *deployment) { last(d.fn.Triggers).Config.RunOptions.ErrorsTolerance = "NONE" }},
		{"endpoints", "MNS internal", func(d *deployment) {
			d.fn.EnvironmentVariables["MNS_ENDPOINT"] = "http://" + deployTestAccount + ".mns." + d.fn.Region + "-internal.aliyuncs.com"
		}},
		{"endpoints", "Tablestore over VPC", func(d *deployment) {
			d.fn.EnvironmentVariables["LEDGER_ENDPOINT"] = "https://sag-upgrade." + d.fn.Region + ".vpc.tablestore.aliyuncs.com"
		}},
		{"endpoints", "Tablestore internal", func(d *deployment) {
			d.fn.EnvironmentVariables["LEDGER_ENDPOINT"] = "https://sag-upgrade." + d.fn.Region + "-internal.ots.aliyuncs.com"
		}},
		{"endpoints", "no internet", func(d *deployment) { no := false; d.query.InternetAccess = &no }},
	} {
		d := loadDeployment(t)
		if p := deployChecks[c.check](d); len(p) != 0 {
			t.Fatalf("%s: s.yaml itself: %v", c.check, p)
		}
		c.change(&d)
		if p := deployChecks[c.check](d); len(p) == 0 {
			t.Errorf("%s check misses %s", c.check, c.mistake)
		}
	}
}

func last[T any](s []T) *T { return &s[len(s)-1] }

const deployReleaseScript = "deploy/release.sh"

// runRelease runs deploy/release.sh with args against a stand-in `s` that
// records its arguments, one call a line, and returns them.
func runRelease(t *testing.T, args ...string) ([]string, error) {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(bin, "calls")
	stub := "#!/bin/sh\necho \"$*\" >> " + strconv.Quote(log) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "s"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{repoFile(deployReleaseScript)}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(calls)), "\n"), nil
}

// releaseProblems checks the `s` calls of a release against s.yaml: the
// alias it moves is the one the triggers and the asynchronous settings
// name; a version is published after LATEST is deployed and before the
// alias moves to it; on the first deployment the alias exists before the
// full deploy creates the triggers and writes the alias's asynchronous
// settings (FC refuses both for a qualifier that does not exist).
func releaseProblems(alias string, first bool, calls []string) []string {
	index := func(pred func(string) bool) int { return slices.IndexFunc(calls, pred) }
	fullDeploy := func(c string) bool { return c == "deploy -y" || c == "deploy --assume-yes" }
	fnDeploy := func(c string) bool { return strings.HasPrefix(c, "deploy --function") }
	publish := func(c string) bool { return strings.HasPrefix(c, "version publish") }
	move := func(c string) bool { return strings.HasPrefix(c, "alias publish ") }
	var problems []string
	m, p := index(move), index(publish)
	if m < 0 || p < 0 {
		return []string{fmt.Sprintf("calls %q: no `s version publish` and `s alias publish`", calls)}
	}
	if want := fmt.Sprintf("alias publish --alias-name %s --version-id latest", alias); calls[m] != want {
		problems = append(problems, fmt.Sprintf("moves the alias with %q, want %q (vars.alias)", calls[m], want))
	}
	if p > m {
		problems = append(problems, "moves the alias before it publishes the version")
	}
	if first {
		f, d := index(fnDeploy), index(fullDeploy)
		if f < 0 || f > p {
			problems = append(problems, "first deployment: no `s deploy --function` before the version is published")
		}
		if d >= 0 && d < m {
			problems = append(problems, "first deployment: `s deploy -y` (triggers on the alias) comes before the alias exists")
		}
		if d < 0 {
			problems = append(problems, "first deployment: no `s deploy -y` after the alias: no triggers, no asynchronous settings")
		}
	} else if d := index(fullDeploy); d < 0 || d > p {
		problems = append(problems, "release: no `s deploy -y` before the version is published: the version would hold the old code")
	}
	return problems
}

func TestDeployRelease(t *testing.T) {
	d := loadDeployment(t)
	for _, first := range []bool{true, false} {
		var args []string
		if first {
			args = []string{"--first"}
		}
		calls, err := runRelease(t, args...)
		if err != nil {
			t.Fatalf("%s %v: %v", deployReleaseScript, args, err)
		}
		for _, p := range releaseProblems(d.spec.Vars["alias"], first, calls) {
			t.Errorf("%s %v: %s", deployReleaseScript, args, p)
		}
	}
	if _, err := runRelease(t, "--frist"); err == nil {
		t.Errorf("%s --frist: ran; want a usage error", deployReleaseScript)
	}
}

// The order releaseProblems requires, shown on calls that break it.
func TestReleaseProblems(t *testing.T) {
	const (
		fn      = "deploy --function -y"
		full    = "deploy -y"
		publish = "version publish --description x"
		move    = "alias publish --alias-name live --version-id latest"
	)
	for _, c := range []struct {
		first bool
		calls []string
		bad   bool
	}{
		{true, []string{fn, publish, move, full}, false},
		{true, []string{fn, publish, move}, true},         // no triggers
		{true, []string{full, publish, move, full}, true}, // triggers before the alias
		{true, []string{fn, move, publish, full}, true},   // alias before its version
		{false, []string{full, publish, move}, false},
		{false, []string{publish, full, move}, true}, // the version holds the old code
		{false, []string{full, publish}, true},       // the alias never moves
		{false, []string{full, publish, "alias publish --alias-name prod --version-id latest"}, true},
	} {
		if p := releaseProblems("live", c.first, c.calls); (len(p) > 0) != c.bad {
			t.Errorf("first %v, calls %q: problems %q", c.first, c.calls, p)
		}
	}
}

// invokeProblems: every `s … invoke` of a runbook names a qualifier. By
// default `s invoke` calls LATEST, whatever was deployed last, not what the
// triggers run; LATEST is for a dry run of the next release only.
func invokeProblems(doc, alias string) []string {
	var problems []string
	for _, call := range regexp.MustCompile(`\bs (?:[a-z0-9-]+ )?invoke\b[^\n`+"`"+`]*`).FindAllString(doc, -1) {
		q := regexp.MustCompile(`--qualifier ([A-Za-z0-9_-]+)`).FindStringSubmatch(call)
		switch {
		case q == nil:
			problems = append(problems, fmt.Sprintf("%s: no --qualifier: it invokes LATEST, not the alias %s the triggers run", call, alias))
		case q[1] == alias:
		case q[1] == "LATEST" && strings.Contains(call, `"dryRun":true`):
		default:
			problems = append(problems, fmt.Sprintf("%s: --qualifier %s; want %s (or LATEST for a dry run of the next release)", call, q[1], alias))
		}
	}
	return problems
}

// The runbooks: README.md's sections on deploying and running by hand, and
// deploy/README.md, which must also create the dead-letter queue s.yaml names.
func TestDeployRunbooks(t *testing.T) {
	d := loadDeployment(t)
	alias := d.spec.Vars["alias"]
	read := func(name string) string {
		b, err := os.ReadFile(repoFile(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme := read("README.md")
	from, to := strings.Index(readme, "\n## Deploy\n"), strings.Index(readme, "\n## The request\n")
	if from < 0 || to < from {
		t.Fatalf("README.md: no sections \"## Deploy\" … \"## The request\" (this test reads the runbook between them)")
	}
	runbooks := map[string]string{"README.md": readme[from:to], "deploy/README.md": read("deploy/README.md")}
	for name, doc := range runbooks {
		if !strings.Contains(doc, "invoke --qualifier "+alias) {
			t.Errorf("%s: no `s … invoke --qualifier %s` found: has the runbook moved?", name, alias)
		}
		for _, p := range invokeProblems(doc, alias) {
			t.Errorf("%s: %s", name, p)
		}
	}
	dlq := d.spec.Vars["deadLetterQueue"]
	if !regexp.MustCompile(`CreateQueue [^\n]*--QueueName ` + regexp.QuoteMeta(dlq) + `\b`).MatchString(runbooks["deploy/README.md"]) {
		t.Errorf("deploy/README.md: no `aliyun mns-open CreateQueue … --QueueName %s`: the work-queue trigger's dead-letter queue must exist before it", dlq)
	}
}

func TestInvokeProblems(t *testing.T) {
	for call, bad := range map[string]bool{
		`s sag-upgrade invoke --qualifier live -e '{}'`:                false,
		`s sag-upgrade invoke --qualifier LATEST -e '{"dryRun":true}'`: false,
		"`s sag-upgrade-control invoke -e '{\"kind\":\"stop\"}'`":      true,
		`s invoke -e '{}' --invocation-type Async`:                     true,
		`s sag-upgrade invoke --qualifier LATEST -e '{}'`:              true,
		`s sag-upgrade invoke --qualifier prod -e '{"dryRun":true}'`:   true,
	} {
		if p := invokeProblems(call, "live"); (len(p) > 0) != bad {
			t.Errorf("%s: problems %q", call, p)
		}
	}
}
