// Package cloudsim is the simulated cloud: the SAG OpenAPI (sagsim), MNS
// (mnssim) and, for the compiled function, the FC runtime API (fcsim), with
// one credential store and one controllable clock. Tests, benchmarks and
// `go run . -simulate` all run on it.
//
// Start serves SAG and MNS on one loopback address: MNS paths (/queues/…,
// /topics/…) go to the MNS emulator, everything else to SAG, so one URL is
// both SAG_ENDPOINT and MNS_ENDPOINT.
//
// The same URL serves FC 3.0's InvokeFunction OpenAPI (fcapi: paths under
// /2023-03-30/, its V3 signature checked against the same keyring), which
// routes each invocation to a registered function, normally an
// fcsim.Runtime, for callers on the official FC SDK; and STS's
// GetCallerIdentity (stssim: an RPC call of STS's version), so such a caller
// can learn its account and identity. sagctl pointed at the URL talks to
// both.
package cloudsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/auth"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/clock"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcapi"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fleet"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/otssim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/sagsim"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/stssim"
)

// Names of the MNS resources every simulated cloud has.
const (
	OutcomeTopic   = "sag-outcomes"       // OUTCOME_TOPIC
	LedgerInstance = "sag-upgrade"        // LEDGER_INSTANCE
	LedgerTable    = "sag_upgrade_ledger" // LEDGER_TABLE
	RequestsTopic  = "sag-requests"       // requests from other systems (the function's MNS topic trigger)
	WorkQueue      = "sag-work"           // WORK_QUEUE (the function's EventBridge queue trigger)
	Region         = "cn-shanghai"        // the simulated function's own region
)

// Endpoints are the environment variables that point the function at the
// simulated cloud; they always take the cloud's values.
var Endpoints = map[string]bool{"SAG_ENDPOINT": true, "MNS_ENDPOINT": true, "OUTCOME_TOPIC": true, "WORK_QUEUE": true,
	"LEDGER_ENDPOINT": true, "LEDGER_INSTANCE": true, "LEDGER_TABLE": true}

// Options shape a simulated cloud.
type Options struct {
	Fleet *fleet.Fleet
	// Addr to listen on; default 127.0.0.1:0 (any free port).
	Addr string
	// SAG configures the SAG emulator (latency, QPS limits, faults, upgrade
	// time); its Keyring and Clock are the cloud's.
	SAG sagsim.Options
	// OTS configures the Tablestore emulator likewise.
	OTS otssim.Options
}

// Cloud is a running simulated cloud.
type Cloud struct {
	Fleet   *fleet.Fleet
	Keyring *auth.Keyring
	Clock   *clock.Sim
	SAG     *sagsim.Server
	MNS     *mnssim.Server
	OTS     *otssim.Server
	// FC serves InvokeFunction for the functions registered with it (of the
	// fleet's account, in Region).
	FC *fcapi.Server
	// STS answers GetCallerIdentity.
	STS *stssim.Server
	// URL serves SAG, MNS, Tablestore, FC and STS, e.g. http://127.0.0.1:40123.
	URL string

	srv *http.Server
	ln  net.Listener
}

// Start builds the cloud from a fleet and serves it.
func Start(o Options) (*Cloud, error) {
	if o.Fleet == nil {
		return nil, fmt.Errorf("cloudsim: no fleet")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	c := &Cloud{Fleet: o.Fleet, Keyring: auth.NewKeyring(nil), Clock: clock.NewSim(o.Fleet.Start)}
	sagOpts := o.SAG
	sagOpts.Keyring, sagOpts.Clock = c.Keyring, c.Clock
	c.SAG = sagsim.New(o.Fleet, sagOpts)
	c.MNS = mnssim.New(mnssim.Options{Keyring: c.Keyring, Clock: c.Clock, AccountID: o.Fleet.AccountID, Region: Region})
	otsOpts := o.OTS
	otsOpts.Keyring, otsOpts.Clock, otsOpts.Instance = c.Keyring, c.Clock, LedgerInstance
	c.OTS = otssim.New(otsOpts)
	c.FC = fcapi.New(fcapi.Options{Keyring: c.Keyring, AccountID: o.Fleet.AccountID, Region: Region})
	c.STS = stssim.New(stssim.Options{Keyring: c.Keyring})
	// The ledger table, as scripts/ledgertable creates it in a real instance.
	ledger := otssim.Table{Name: LedgerTable, PrimaryKey: []otssim.KeyColumn{{Name: "pk", Type: otssim.KeyString}, {Name: "sk", Type: otssim.KeyString}}}
	for _, err := range []error{
		c.OTS.CreateTable(ledger),
		c.MNS.CreateTopic(OutcomeTopic),
		c.MNS.CreateTopic(RequestsTopic),
		c.MNS.CreateQueue(WorkQueue, mnssim.QueueOptions{}),
	} {
		if err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	c.ln = ln
	c.URL = "http://" + ln.Addr().String()
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(ln)
	return c, nil
}

// ServeHTTP routes by path: SAG's and STS's RPC calls go to "/" (told apart
// by their Version), MNS's to /queues/… and /topics/…, FC's to
// /2023-03-30/…, Tablestore's to /<Action>.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && stssim.IsSTS(r):
		c.STS.ServeHTTP(w, r)
	case r.URL.Path == "/":
		c.SAG.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, "/queues") || strings.HasPrefix(r.URL.Path, "/topics"):
		c.MNS.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, "/"+fcapi.APIVersion+"/"):
		c.FC.ServeHTTP(w, r)
	default:
		c.OTS.ServeHTTP(w, r)
	}
}

// Close stops serving.
func (c *Cloud) Close() error { return c.srv.Close() }

// Credentials issues STS credentials of the fleet's account, as FC hands a
// function its role's credentials.
func (c *Cloud) Credentials(ttl time.Duration) auth.Credential {
	return c.Keyring.IssueSTS(c.Fleet.AccountID, ttl)
}

// Env is the function's environment for this cloud: every region of the
// fleet, and the endpoints and names of its MNS resources.
func (c *Cloud) Env() []string {
	return []string{
		"SAG_REGIONS=" + strings.Join(c.Fleet.Regions, ","),
		"SAG_ENDPOINT=" + c.URL,
		"MNS_ENDPOINT=" + c.URL,
		"OUTCOME_TOPIC=" + OutcomeTopic,
		"WORK_QUEUE=" + WorkQueue,
		"LEDGER_ENDPOINT=" + c.URL,
		"LEDGER_INSTANCE=" + LedgerInstance,
		"LEDGER_TABLE=" + LedgerTable,
	}
}

// QueueBatch emulates the EventBridge MNS queue trigger: it takes up to max
// messages off a queue and returns the payload FC would hand the function, a
// JSON array of CloudEvents with base64-decoded bodies (IsBase64Decode), or
// nil when the queue is empty.
func (c *Cloud) QueueBatch(queue string, max int) []byte {
	msgs := c.MNS.Take(queue, max)
	if len(msgs) == 0 {
		return nil
	}
	type data struct {
		RequestID   string `json:"requestId"`
		MessageID   string `json:"messageId"`
		MessageBody string `json:"messageBody"`
	}
	type cloudEvent struct {
		ID              string `json:"id"`
		Source          string `json:"source"`
		SpecVersion     string `json:"specversion"`
		Type            string `json:"type"`
		DataContentType string `json:"datacontenttype"`
		Subject         string `json:"subject"`
		Time            string `json:"time"`
		AccountID       string `json:"aliyunaccountid"`
		PublishTime     string `json:"aliyunpublishtime"`
		EventBus        string `json:"aliyuneventbusname"`
		RegionID        string `json:"aliyunregionid"`
		Data            data   `json:"data"`
	}
	batch := make([]cloudEvent, 0, len(msgs))
	for i, m := range msgs {
		body := m.Body
		if b, err := base64.StdEncoding.DecodeString(body); err == nil {
			body = string(b)
		}
		batch = append(batch, cloudEvent{
			ID: fmt.Sprintf("%s-%d", m.MessageID, i), Source: "MNS-sag-upgrade-work", SpecVersion: "1.0",
			Type: "mns:Queue:SendMessage", DataContentType: "application/json; charset=utf-8",
			Subject: "acs:mns:" + Region + ":" + c.Fleet.AccountID + ":queues/" + queue,
			Time:    m.EnqueueTime.UTC().Format(time.RFC3339Nano), AccountID: c.Fleet.AccountID,
			PublishTime: c.Clock.Now().UTC().Format(time.RFC3339Nano), EventBus: "MNS-sag-upgrade-work", RegionID: Region,
			Data: data{RequestID: m.MessageID, MessageID: m.MessageID, MessageBody: body},
		})
	}
	b, _ := json.Marshal(batch)
	return b
}
