package main

// Calling the function: where it is (region, account, endpoint), who calls
// (credentials, operator), and InvokeFunction with the official FC 3.0 SDK.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkauth "github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	sdkcredentials "github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/aliyun/credentials-go/credentials/providers"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Defaults of the deployment (s.yaml).
const (
	defaultQueryFunction   = "sag-upgrade-query"
	defaultControlFunction = "sag-upgrade-control"
	// defaultQualifier is the alias the triggers run (s.yaml, moved by
	// deploy/release.sh): operators steer and look at the code the nightly
	// job runs, and a rollback moves them with it.
	defaultQualifier = "live"
	// functionTimeout is the functions' timeout in s.yaml (900 s): the
	// read timeout waits a minute longer, so a run that uses all of it
	// still answers.
	functionTimeout = 15 * time.Minute
	defaultTimeout  = functionTimeout + time.Minute
)

const connectionHelp = `Where the function is and who calls it:
  region       --region, else ALIBABA_CLOUD_REGION_ID, else the CLI profile's region_id
  account      --account-id, else ALIBABA_CLOUD_ACCOUNT_ID, else the caller's
               own (STS GetCallerIdentity); the endpoint is
               <account-id>.<region>.fc.aliyuncs.com
  endpoint     --endpoint or SAGCTL_ENDPOINT (a URL such as http://127.0.0.1:8081,
               what "go run . -simulate -serve" prints) replaces it, and STS's;
               SAGCTL_STS_ENDPOINT replaces STS's alone (default sts.aliyuncs.com)
  credentials  ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and
               ALIBABA_CLOUD_SECURITY_TOKEN; else the aliyun CLI profile
               (--profile or ALIBABA_CLOUD_PROFILE, else the current one, in
               ALIBABA_CLOUD_CONFIG_FILE or ~/.aliyun/config.json); else the
               rest of credentials-go's default chain (OIDC,
               ~/.alibabacloud/credentials, the ECS RAM role)
  operator     --operator, else SAGCTL_OPERATOR, else the caller's ARN, else
               user@host: sent with every request for the audit trail
               (ActionTrail records who really invoked the function)
  functions    --query-function / SAGCTL_QUERY_FUNCTION (default sag-upgrade-query),
               --control-function / SAGCTL_CONTROL_FUNCTION (default sag-upgrade-control),
               at --qualifier / SAGCTL_QUALIFIER (default live, the alias the
               triggers run and deploy/release.sh moves; LATEST: the last deploy)
`

// options are the flags every subcommand takes.
type options struct {
	json            bool
	region          string
	accountID       string
	endpoint        string
	profile         string
	qualifier       string
	timeout         time.Duration
	operator        string
	correlationID   string
	queryFunction   string
	controlFunction string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the function's answer as JSON, as it returned it")
	fs.StringVar(&o.region, "region", "", "the function's `region` (default ALIBABA_CLOUD_REGION_ID or the CLI profile's)")
	fs.StringVar(&o.accountID, "account-id", "", "the function's `account` (default ALIBABA_CLOUD_ACCOUNT_ID or the caller's)")
	fs.StringVar(&o.endpoint, "endpoint", "", "FC endpoint `URL` instead of the account's (default SAGCTL_ENDPOINT)")
	fs.StringVar(&o.profile, "profile", "", "aliyun CLI profile `name` (default ALIBABA_CLOUD_PROFILE or the current one)")
	fs.StringVar(&o.qualifier, "qualifier", "", "the functions' version or `alias` to invoke, e.g. live, the alias deploy/release.sh moves (default SAGCTL_QUALIFIER or live)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "how long to wait for the answer (the functions' timeout is 15m)")
	fs.StringVar(&o.operator, "operator", "", "who asks, for the audit trail (default SAGCTL_OPERATOR, the caller's ARN or user@host)")
	fs.StringVar(&o.correlationID, "correlation-id", "", "correlation `id` for the events and the audit trail, e.g. a ticket (default sagctl-<random>)")
	fs.StringVar(&o.queryFunction, "query-function", "", "the look-only function's `name` (default SAGCTL_QUERY_FUNCTION or sag-upgrade-query)")
	fs.StringVar(&o.controlFunction, "control-function", "", "the operators' function's `name` (default SAGCTL_CONTROL_FUNCTION or sag-upgrade-control)")
}

// stamp gives the request what every request carries: a correlation id and,
// when named, the operator (else call finds it).
func (o *options) stamp(req events.Request, getenv func(string) (string, bool)) (events.Request, error) {
	req.CorrelationID = o.correlationID
	if req.CorrelationID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		req.CorrelationID = "sagctl-" + hex.EncodeToString(b)
	}
	req.Operator = firstOf(o.operator, env(getenv, "SAGCTL_OPERATOR"))
	return req, nil
}

func env(getenv func(string) (string, bool), name string) string {
	v, _ := getenv(name)
	return strings.TrimSpace(v)
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageError is a problem with the command line or its environment that
// stops sagctl before it calls anything (exit 2).
type usageError struct{ error }

// conn is how to reach the function.
type conn struct {
	region             string
	scheme             string // https, or http for an emulator
	host               string // FC's endpoint, host[:port]
	override           bool   // host came from --endpoint / SAGCTL_ENDPOINT
	stsScheme, stsHost string // where GetCallerIdentity goes
	cred               credentials.Credential
	secrets            *strings.Replacer // scrubs the secret and token from what is printed
	timeout            time.Duration
	http               *http.Client

	identity *sts.GetCallerIdentityResponse // once asked
	idErr    error
}

// connect works out the region, the credentials and the endpoint.
func (o *options) connect(getenv func(string) (string, bool)) (*conn, error) {
	c := &conn{scheme: "https", timeout: o.timeout, secrets: strings.NewReplacer()}
	if c.timeout <= 0 {
		return nil, usageError{errors.New("--timeout must be positive")}
	}
	profile, file, err := cliProfile(getenv, o.profile)
	if err != nil {
		return nil, err
	}
	c.region = firstOf(o.region, env(getenv, "ALIBABA_CLOUD_REGION_ID"))
	if c.region == "" && profile != nil {
		c.region = profile.RegionID
	}
	if ep := firstOf(o.endpoint, env(getenv, "SAGCTL_ENDPOINT")); ep != "" {
		if c.scheme, c.host, err = parseEndpoint(ep); err != nil {
			return nil, usageError{err}
		}
		c.override = true
	} else if c.region == "" {
		return nil, usageError{errors.New("no region: give --region, set ALIBABA_CLOUD_REGION_ID, or set region_id in the aliyun CLI profile")}
	}
	c.stsScheme, c.stsHost = "https", "sts.aliyuncs.com"
	if c.override {
		c.stsScheme, c.stsHost = c.scheme, c.host
	}
	if ep := env(getenv, "SAGCTL_STS_ENDPOINT"); ep != "" {
		if c.stsScheme, c.stsHost, err = parseEndpoint(ep); err != nil {
			return nil, usageError{fmt.Errorf("SAGCTL_STS_ENDPOINT: %v", err)}
		}
	}
	// The SDK's shared client writes its timeout on every call (a race);
	// this one is sagctl's own. Proxies as the environment says.
	c.http = &http.Client{Timeout: c.timeout, Transport: &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	if c.cred, err = credential(getenv, profile, file); err != nil {
		return nil, err
	}
	m, err := c.cred.GetCredential()
	if err != nil {
		return nil, fmt.Errorf("no credentials: %v", err)
	}
	var pairs []string
	for _, s := range []*string{m.AccessKeySecret, m.SecurityToken} {
		if v := tea.StringValue(s); v != "" {
			pairs = append(pairs, v, "[redacted]", url.QueryEscape(v), "[redacted]")
		}
	}
	c.secrets = strings.NewReplacer(pairs...)
	if !c.override {
		account := firstOf(o.accountID, env(getenv, "ALIBABA_CLOUD_ACCOUNT_ID"))
		if account == "" {
			id, err := c.callerIdentity()
			if err != nil {
				return nil, fmt.Errorf("cannot tell the account id (give --account-id or set ALIBABA_CLOUD_ACCOUNT_ID): GetCallerIdentity: %v", err)
			}
			account = id.AccountId
		}
		c.host = account + "." + c.region + ".fc.aliyuncs.com"
	}
	return c, nil
}

// parseEndpoint reads --endpoint: a URL, or a bare host[:port] (HTTPS).
func parseEndpoint(s string) (scheme, host string, err error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", "", fmt.Errorf("endpoint %q: want a URL such as https://1234.cn-shanghai.fc.aliyuncs.com or http://127.0.0.1:8081", s)
	}
	return u.Scheme, u.Host, nil
}

// profileEntry is what sagctl reads of an aliyun CLI profile itself: its
// region, and the StsToken mode credentials-go does not take.
type profileEntry struct {
	Name            string `json:"name"`
	Mode            string `json:"mode"`
	AccessKeyID     string `json:"access_key_id"`
	AccessKeySecret string `json:"access_key_secret"`
	StsToken        string `json:"sts_token"`
	RegionID        string `json:"region_id"`
}

// cliProfile reads the aliyun CLI's profile: nil when there is no
// configuration file (or it is disabled). A file that does not parse is an
// error that quotes none of it (credentials-go's would quote the secrets).
func cliProfile(getenv func(string) (string, bool), name string) (*profileEntry, string, error) {
	if strings.EqualFold(env(getenv, "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"), "true") {
		return nil, "", nil
	}
	file := env(getenv, "ALIBABA_CLOUD_CONFIG_FILE")
	if file == "" {
		home := env(getenv, "HOME")
		if home == "" {
			return nil, "", nil
		}
		file = filepath.Join(home, ".aliyun", "config.json")
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var cfg struct {
		Current  string         `json:"current"`
		Profiles []profileEntry `json:"profiles"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, "", fmt.Errorf("%s is not JSON (at byte %d)", file, syntax.Offset)
		}
		return nil, "", fmt.Errorf("%s is not an aliyun CLI configuration", file)
	}
	name = firstOf(name, env(getenv, "ALIBABA_CLOUD_PROFILE"), cfg.Current)
	for i := range cfg.Profiles {
		if cfg.Profiles[i].Name == name {
			return &cfg.Profiles[i], file, nil
		}
	}
	return nil, "", fmt.Errorf("%s has no profile %q", file, name)
}

// credential is the chain operators use: the environment, then the aliyun
// CLI profile, then credentials-go's default chain for the rest.
func credential(getenv func(string) (string, bool), p *profileEntry, file string) (credentials.Credential, error) {
	static := func(source, id, secret, token string) (credentials.Credential, error) {
		var prov providers.CredentialsProvider
		var err error
		if token != "" {
			prov, err = providers.NewStaticSTSCredentialsProviderBuilder().WithAccessKeyId(id).WithAccessKeySecret(secret).WithSecurityToken(token).Build()
		} else {
			prov, err = providers.NewStaticAKCredentialsProviderBuilder().WithAccessKeyId(id).WithAccessKeySecret(secret).Build()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", source, err)
		}
		return credentials.FromCredentialsProvider(source, prov), nil
	}
	if id := env(getenv, "ALIBABA_CLOUD_ACCESS_KEY_ID"); id != "" {
		secret := env(getenv, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
		if secret == "" {
			return nil, errors.New("ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not")
		}
		return static("env", id, secret, env(getenv, "ALIBABA_CLOUD_SECURITY_TOKEN"))
	}
	if p != nil {
		if strings.EqualFold(p.Mode, "StsToken") {
			return static("cli_profile/"+p.Name, p.AccessKeyID, p.AccessKeySecret, p.StsToken)
		}
		prov, err := providers.NewCLIProfileCredentialsProviderBuilder().WithProfileFile(file).WithProfileName(p.Name).Build()
		if err != nil {
			return nil, err
		}
		return credentials.FromCredentialsProvider("cli_profile", prov), nil
	}
	return credentials.NewCredential(nil)
}

// callerIdentity asks STS who the credentials are, once. With an endpoint
// override STS is asked there too (the simulated cloud serves both), unless
// SAGCTL_STS_ENDPOINT says where.
func (c *conn) callerIdentity() (*sts.GetCallerIdentityResponse, error) {
	if c.identity != nil || c.idErr != nil {
		return c.identity, c.idErr
	}
	c.identity, c.idErr = c.askSTS()
	if c.idErr != nil {
		c.idErr = errors.New(c.scrub(c.idErr.Error()))
	}
	return c.identity, c.idErr
}

func (c *conn) askSTS() (*sts.GetCallerIdentityResponse, error) {
	m, err := c.cred.GetCredential()
	if err != nil {
		return nil, err
	}
	cfg := sdk.NewConfig()
	cfg.Scheme = strings.ToUpper(c.stsScheme)
	cfg.AutoRetry = false
	cfg.MaxRetryTime = 0
	cfg.Timeout = 30 * time.Second
	cfg.HttpTransport = &http.Transport{Proxy: http.ProxyFromEnvironment}
	var prov sdkauth.Credential = sdkcredentials.NewStaticAKCredentialsProvider(tea.StringValue(m.AccessKeyId), tea.StringValue(m.AccessKeySecret))
	if token := tea.StringValue(m.SecurityToken); token != "" {
		prov = sdkcredentials.NewStaticSTSCredentialsProvider(tea.StringValue(m.AccessKeyId), tea.StringValue(m.AccessKeySecret), token)
	}
	client, err := sts.NewClientWithOptions(firstOf(c.region, "cn-hangzhou"), cfg, prov)
	if err != nil {
		return nil, err
	}
	client.Domain = c.stsHost
	req := sts.CreateGetCallerIdentityRequest()
	req.Scheme = c.stsScheme
	return client.GetCallerIdentity(req)
}

// operator is who the request says asks, when no flag or variable named
// one: the caller's ARN, else user@host.
func (c *conn) operator() string {
	if id, err := c.callerIdentity(); err == nil && id.Arn != "" {
		return cutRunes(id.Arn, events.MaxCorrelationIDLen)
	}
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return cutRunes(name+"@"+firstOf(host, "localhost"), events.MaxCorrelationIDLen)
}

func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func (c *conn) scrub(s string) string { return c.secrets.Replace(s) }

// doer hands the SDK's requests to sagctl's own http.Client.
type doer struct{ c *http.Client }

func (d doer) Call(r *http.Request, _ *http.Transport) (*http.Response, error) { return d.c.Do(r) }

// answer is what InvokeFunction returned.
type answer struct {
	body      []byte
	errorType string // X-Fc-Error-Type: the function failed
	requestID string
}

// invoke calls the function synchronously with payload.
func (c *conn) invoke(ctx context.Context, function, qualifier string, payload []byte) (answer, error) {
	client, err := fc.NewClient(&openapiutil.Config{
		Credential: c.cred, Endpoint: tea.String(c.host), Protocol: tea.String(c.scheme),
		RegionId: tea.String(c.region), UserAgent: tea.String("sagctl"), HttpClient: doer{c.http},
	})
	if err != nil {
		return answer{}, err
	}
	resp, err := client.InvokeFunctionWithContext(ctx, tea.String(function),
		&fc.InvokeFunctionRequest{Qualifier: tea.String(qualifier), Body: bytes.NewReader(payload)},
		&fc.InvokeFunctionHeaders{XFcInvocationType: tea.String("Sync")}, &dara.RuntimeOptions{})
	if err != nil {
		return answer{}, c.explain(err)
	}
	a := answer{errorType: tea.StringValue(resp.Headers["x-fc-error-type"]), requestID: tea.StringValue(resp.Headers["x-fc-request-id"])}
	if resp.Body != nil {
		if a.body, err = io.ReadAll(resp.Body); err != nil {
			return answer{}, c.explain(err)
		}
	}
	return a, nil
}

// explain turns the SDK's error into a sentence with what can be done.
func (c *conn) explain(err error) error {
	var sdkErr *tea.SDKError
	var ne net.Error
	switch {
	case errors.As(err, &sdkErr):
		msg := fmt.Sprintf("%s (HTTP %d): %s", tea.StringValue(sdkErr.Code), tea.IntValue(sdkErr.StatusCode), tea.StringValue(sdkErr.Message))
		return errors.New(c.scrub(msg))
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no answer within %s (--timeout): the function may still be running", c.timeout)
	}
	return errors.New(c.scrub(err.Error()))
}

// functionError is the body FC answers for a failed invocation.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// failure says in words what a function error type means.
func failure(errorType string) string {
	switch errorType {
	case "RejectedRequest":
		return "rejected the request"
	case "ControlFailed":
		return "could not carry out the request"
	case "ServicesUnreachable":
		return "could not reach the services it needs"
	case "ConfigurationError":
		return "is misconfigured"
	}
	return "failed"
}

// call sends req to the subcommand's function and shows the answer.
func (o *options) call(cmd *command, req events.Request, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if debug := env(getenv, "DEBUG"); debug != "" {
		for part := range strings.SplitSeq(debug, ",") {
			switch strings.TrimSpace(part) {
			case "sdk", "dara", "tea":
				// The SDKs would print every request with its token.
				fmt.Fprintf(stderr, "sagctl: DEBUG=%s would print requests with their credentials; unset it\n", debug)
				return exitUsage
			}
		}
	}
	c, err := o.connect(getenv)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", cmd.name, ue.error)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", cmd.name, err)
		return exitUnreachable
	}
	if req.Operator == "" {
		req.Operator = c.operator()
	}
	function := firstOf(o.controlFunction, env(getenv, "SAGCTL_CONTROL_FUNCTION"), defaultControlFunction)
	if cmd.query {
		function = firstOf(o.queryFunction, env(getenv, "SAGCTL_QUERY_FUNCTION"), defaultQueryFunction)
	}
	payload, err := json.Marshal(req)
	if err != nil {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", cmd.name, err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	qualifier := firstOf(o.qualifier, env(getenv, "SAGCTL_QUALIFIER"), defaultQualifier)
	a, err := c.invoke(ctx, function, qualifier, payload)
	if err != nil {
		fmt.Fprintf(stderr, "sagctl %s: calling %s (%s) at %s: %v\n", cmd.name, function, qualifier, c.host, err)
		return exitUnreachable
	}
	if o.json {
		printJSON(stdout, a.body)
	}
	if a.errorType != "" {
		var fe functionError
		_ = json.Unmarshal(a.body, &fe)
		fmt.Fprintf(stderr, "sagctl %s: %s %s", cmd.name, function, failure(fe.ErrorType))
		if fe.ErrorType != "" {
			fmt.Fprintf(stderr, " (%s)", fe.ErrorType)
		}
		fmt.Fprintf(stderr, ": %s\n", c.scrub(firstOf(fe.ErrorMessage, string(a.body))))
		fmt.Fprintf(stderr, "FC request id %s\n", a.requestID)
		return exitFailed
	}
	var report events.Report
	if err := json.Unmarshal(a.body, &report); err != nil {
		fmt.Fprintf(stderr, "sagctl %s: %s answered something that is not a report (%v); FC request id %s\n", cmd.name, function, err, a.requestID)
		return exitFailed
	}
	var problem error
	if o.json {
		problem = cmd.show(io.Discard, report)
	} else {
		problem = cmd.show(stdout, report)
	}
	if problem == nil {
		problem = failures(report)
	}
	if problem != nil {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", cmd.name, problem)
		return exitFailed
	}
	return exitOK
}

// printJSON prints the function's answer indented, byte for byte as it
// came otherwise.
func printJSON(w io.Writer, body []byte) {
	var b bytes.Buffer
	if json.Indent(&b, body, "", "  ") != nil {
		w.Write(body)
		fmt.Fprintln(w)
		return
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

// failures is the exit-1 problem of a report that counts failed or
// rejected gateways.
func failures(r events.Report) error {
	if r.Counts.Failed == 0 && r.Counts.Rejected == 0 {
		return nil
	}
	return fmt.Errorf("the run reports %d failed and %d rejected (run %s)", r.Counts.Failed, r.Counts.Rejected, r.RunID)
}
