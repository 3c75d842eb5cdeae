// Package smartag implements handler.SAG with the official
// alibaba-cloud-sdk-go (services/smartag): HTTPS by default, the SDK's own
// retries off (the handler retries by error class), one SDK client per
// goroutine (a client is not safe for concurrent use), every request timed
// out by the caller's deadline (the SDK takes no context), and every error
// scrubbed of credentials before it leaves.
package smartag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/smartag"

	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Options configure the adapter.
type Options struct {
	// Endpoint overrides the regional endpoint for every region, as a URL
	// (SAG_ENDPOINT, e.g. http://127.0.0.1:8081). Empty: the SDK's regional
	// endpoint smartag.<region>.aliyuncs.com over HTTPS.
	Endpoint    string
	Credentials handler.Credentials
	// Timeout caps one call (default 10 s, the SDK's read timeout); the
	// context's deadline shortens it.
	Timeout   time.Duration
	UserAgent string
}

// API is a handler.SAG. It is safe for concurrent use.
type API struct {
	opts   Options
	scheme string
	domain string

	mu         sync.Mutex
	idle       map[string][]*smartag.Client // by region
	transports []*http.Transport            // one per client made
	scrub      *strings.Replacer
}

// idleConnTimeout closes a kept-alive connection nobody used for this long.
// The SDK's own transport keeps idle connections for ever, so every client of
// an adapter replaced after a credential change would hold its connections.
const idleConnTimeout = 30 * time.Second

var _ handler.SAG = (*API)(nil)

// newClient serialises smartag.NewClientWithOptions across every API.
var newClient sync.Mutex

// New returns the adapter.
func New(opts Options) (*API, error) {
	if opts.Credentials.AccessKeyID == "" || opts.Credentials.AccessKeySecret == "" {
		return nil, errors.New("smartag: no credentials")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	a := &API{opts: opts, scheme: "https", idle: map[string][]*smartag.Client{}}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("smartag: endpoint %q is not an http(s) URL", opts.Endpoint)
		}
		a.scheme, a.domain = u.Scheme, u.Host
	}
	// Errors quote request URLs and signing strings; none may carry the
	// secret or the token, raw or URL-encoded.
	var pairs []string
	for _, s := range []string{opts.Credentials.AccessKeySecret, opts.Credentials.SecurityToken} {
		if s != "" {
			pairs = append(pairs, s, "[redacted]", url.QueryEscape(s), "[redacted]", url.QueryEscape(url.QueryEscape(s)), "[redacted]")
		}
	}
	a.scrub = strings.NewReplacer(pairs...)
	return a, nil
}

// client takes an idle client of the region or makes one.
func (a *API) client(region string) (*smartag.Client, error) {
	a.mu.Lock()
	if n := len(a.idle[region]); n > 0 {
		c := a.idle[region][n-1]
		a.idle[region] = a.idle[region][:n-1]
		a.mu.Unlock()
		return c, nil
	}
	a.mu.Unlock()

	cfg := sdk.NewConfig()
	cfg.Scheme = strings.ToUpper(a.scheme)
	cfg.AutoRetry = false
	cfg.MaxRetryTime = 0
	cfg.UserAgent = a.opts.UserAgent
	// The client's own transport (the SDK sets its dialer on every call, so
	// it is never shared between clients), closable by Close.
	tr := &http.Transport{IdleConnTimeout: idleConnTimeout}
	cfg.HttpTransport = tr
	var cred *credentials.StaticSTSCredentialsProvider
	var c *smartag.Client
	var err error
	// The SDK fills a package-level endpoint map on first use without a
	// lock: clients are made one at a time.
	newClient.Lock()
	defer newClient.Unlock()
	if a.opts.Credentials.SecurityToken != "" {
		cred = credentials.NewStaticSTSCredentialsProvider(a.opts.Credentials.AccessKeyID, a.opts.Credentials.AccessKeySecret, a.opts.Credentials.SecurityToken)
		c, err = smartag.NewClientWithOptions(region, cfg, cred)
	} else {
		c, err = smartag.NewClientWithOptions(region, cfg,
			credentials.NewStaticAKCredentialsProvider(a.opts.Credentials.AccessKeyID, a.opts.Credentials.AccessKeySecret))
	}
	if err != nil {
		return nil, fmt.Errorf("smartag: client for %s: %s", region, a.scrub.Replace(err.Error()))
	}
	c.Domain = a.domain
	a.mu.Lock()
	a.transports = append(a.transports, tr)
	a.mu.Unlock()
	return c, nil
}

// Close closes the idle connections of every client the adapter made; calls
// under way finish, and later calls open new connections.
func (a *API) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tr := range a.transports {
		tr.CloseIdleConnections()
	}
}

func (a *API) release(region string, c *smartag.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.idle[region] = append(a.idle[region], c)
}

// do sends one request on a client of its own.
func (a *API) do(ctx context.Context, region, action string, req requests.AcsRequest, resp responses.AcsResponse,
	send func(*smartag.Client) error) error {
	timeout := a.opts.Timeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return &handler.APIError{Action: action, NoAnswer: true, NotSent: true, Message: "no time left for the call"}
	}
	req.SetScheme(a.scheme)
	req.SetReadTimeout(timeout)
	req.SetConnectTimeout(min(timeout, 5*time.Second))
	c, err := a.client(region)
	if err != nil {
		return err
	}
	err = send(c)
	a.release(region, c)
	if err != nil {
		return a.apiError(action, err)
	}
	return nil
}

// apiError turns what the SDK returned into a scrubbed *handler.APIError.
func (a *API) apiError(action string, err error) *handler.APIError {
	e := &handler.APIError{Action: action}
	var se *sdkerrors.ServerError
	var ce *sdkerrors.ClientError
	switch {
	case errors.As(err, &se):
		e.Code, e.Status, e.RequestID = se.ErrorCode(), se.HttpStatus(), se.RequestId()
		e.Message = se.Message()
		if e.Code == "SignatureDoesNotMatch" || e.Code == "IncompleteSignature" {
			// The message quotes the whole string to sign, token included.
			e.Message, _, _ = strings.Cut(e.Message, "server string to sign is:")
		}
		if e.Code == "" && e.Status >= 500 {
			e.Message = "a non-JSON answer from a proxy or gateway" // e.g. an HTML 502 page
		}
	case errors.As(err, &ce):
		e.Code, e.Message = ce.ErrorCode(), ce.Message()
		if e.Code == "SDK.TimeoutError" {
			e.NoAnswer = true
		}
	default:
		// A transport error: the SDK passes net/url errors through.
		e.NoAnswer = true
		e.Message = err.Error()
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			e.NotSent = true
		}
	}
	e.Message = a.scrub.Replace(truncate(strings.TrimSpace(e.Message), 300))
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ListGateways implements handler.SAG.
func (a *API) ListGateways(ctx context.Context, region string, f handler.ListFilter, page int) ([]handler.Gateway, int, error) {
	req := smartag.CreateDescribeSmartAccessGatewaysRequest()
	req.RegionId = region
	req.PageSize = requests.NewInteger(handler.PageSize)
	req.PageNumber = requests.NewInteger(page)
	if len(f.IDs) > 0 {
		ids := f.IDs
		req.SmartAGIds = &ids
	}
	req.HardwareType = f.Model
	if f.Below != "" {
		req.SoftwareVersion, req.VersionComparator = f.Below, "less"
	}
	resp := smartag.CreateDescribeSmartAccessGatewaysResponse()
	err := a.do(ctx, region, req.GetActionName(), req, resp, func(c *smartag.Client) error {
		var err error
		resp, err = c.DescribeSmartAccessGateways(req)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]handler.Gateway, 0, len(resp.SmartAccessGateways.SmartAccessGateway))
	for _, s := range resp.SmartAccessGateways.SmartAccessGateway {
		g := handler.Gateway{
			ID: s.SmartAGId, Region: region, Name: s.Name, Status: s.Status, Model: s.HardwareVersion,
			SoftwareVersion: s.SoftwareVersion, BackupSoftwareVersion: s.BackupSoftwareVersion, CcnID: s.AssociatedCcnId,
		}
		for _, sn := range strings.Split(s.SerialNumber, ",") {
			if sn = strings.TrimSpace(sn); sn != "" {
				g.SerialNumbers = append(g.SerialNumbers, sn)
			}
		}
		if s.EndTime > 0 {
			g.EndTime = time.UnixMilli(s.EndTime)
		}
		out = append(out, g)
	}
	return out, resp.TotalCount, nil
}

// Versions implements handler.SAG.
func (a *API) Versions(ctx context.Context, g handler.Gateway, serial string, vt upgrade.VersionType) ([]handler.Release, error) {
	req := smartag.CreateDescribeSmartAccessGatewayVersionsRequest()
	req.RegionId = g.Region
	req.SmartAGId = g.ID
	req.SmartAGSn = serial
	req.VersionType = string(vt)
	resp := smartag.CreateDescribeSmartAccessGatewayVersionsResponse()
	err := a.do(ctx, g.Region, req.GetActionName(), req, resp, func(c *smartag.Client) error {
		var err error
		resp, err = c.DescribeSmartAccessGatewayVersions(req)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []handler.Release
	for _, v := range resp.SmartAGVersions.SmartAGVersion {
		out = append(out, handler.Release{Code: v.VersionCode, Name: v.VersionName, Type: v.Type, Created: time.UnixMilli(v.CreateTime)})
	}
	return out, nil
}

// Devices implements handler.SAG.
func (a *API) Devices(ctx context.Context, g handler.Gateway) (handler.Detail, error) {
	req := smartag.CreateDescribeSmartAccessGatewayAttributeRequest()
	req.RegionId = g.Region
	req.SmartAGId = g.ID
	resp := smartag.CreateDescribeSmartAccessGatewayAttributeResponse()
	err := a.do(ctx, g.Region, req.GetActionName(), req, resp, func(c *smartag.Client) error {
		var err error
		resp, err = c.DescribeSmartAccessGatewayAttribute(req)
		return err
	})
	if err != nil {
		return handler.Detail{}, err
	}
	d := handler.Detail{Status: resp.Status, MasterSN: resp.TrafficMasterSn}
	for _, dev := range resp.Devices.Device {
		d.Devices = append(d.Devices, handler.Device{SerialNumber: dev.SerialNumber, Software: dev.SoftwareVersion, Dpi: dev.DpiSignatureDbVersion})
	}
	return d, nil
}

// Update implements handler.SAG.
func (a *API) Update(ctx context.Context, g handler.Gateway, serial string, vt upgrade.VersionType, version string) (string, error) {
	req := smartag.CreateUpdateSmartAccessGatewayVersionRequest()
	req.RegionId = g.Region
	req.SmartAGId = g.ID
	req.SerialNumber = serial
	req.VersionType = string(vt)
	req.VersionCode = version
	resp := smartag.CreateUpdateSmartAccessGatewayVersionResponse()
	err := a.do(ctx, g.Region, req.GetActionName(), req, resp, func(c *smartag.Client) error {
		var err error
		resp, err = c.UpdateSmartAccessGatewayVersion(req)
		return err
	})
	if err != nil {
		// A 2xx answer the SDK could not decode still means the upgrade
		// started: the call must not be reported as failed and retried.
		var ae *handler.APIError
		if errors.As(err, &ae) && ae.Code == "SDK.JsonUnmarshalError" && resp != nil && resp.BaseResponse != nil && resp.IsSuccess() {
			return http.Header(resp.GetHttpHeaders()).Get("X-Acs-Request-Id"), nil
		}
		return "", err
	}
	return resp.RequestId, nil
}
