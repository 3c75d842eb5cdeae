package handler

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Config is the function's configuration, read from its environment. It holds
// no secret, so it can be logged whole.
type Config struct {
	Regions           []string              `json:"regions"`
	VersionTypes      []upgrade.VersionType `json:"versionTypes"`
	Channel           string                `json:"releaseChannel"`
	DryRun            bool                  `json:"dryRun"`
	Window            Window                `json:"maintenanceWindow"`
	UpgradeTime       time.Duration         `json:"upgradeTime"`
	MaxConcurrency    int                   `json:"maxConcurrency"`
	APIQPS            float64               `json:"apiQps"`
	MaxUpgradesPerRun int                   `json:"maxUpgradesPerRun"`
	HoldVersions      []string              `json:"holdVersions,omitempty"`
	MinReleaseAge     time.Duration         `json:"minReleaseAge"`
	DeadlineMargin    time.Duration         `json:"deadlineMargin"` // 0: derived from each invocation's time budget
	LogLevel          zerolog.Level         `json:"logLevel"`

	// LedgerLease protects a claim: no other run calls for the gateway
	// before it ends. It must cover UpgradeTime + VerifyTimeout (checked
	// here) and outlive the function's timeout (which FC does not tell the
	// configuration: a run warns when its own time budget is longer).
	LedgerLease time.Duration `json:"ledgerLease"`
	// VerifyTimeout is how long after UpgradeTime a device may take to
	// report the target before it is unverified.
	VerifyTimeout time.Duration `json:"verifyTimeout"`
	// MaxAttempts consecutive failed or unverified upgrades put a gateway in
	// the penalty box for PenaltyCooldown.
	MaxAttempts     int           `json:"maxAttempts"`
	PenaltyCooldown time.Duration `json:"penaltyCooldown"`

	// Rollouts (need the ledger): a canary of RolloutCanary gateways, then
	// waves up to each share of RolloutWaves, each starting when the
	// previous one is verified and has soaked RolloutSoak; the breaker opens
	// when more than RolloutMaxFailure of at least RolloutMinSample finished
	// upgrades failed or stayed unverified.
	RolloutCanary     int           `json:"rolloutCanary"`
	RolloutWaves      []float64     `json:"rolloutWaves"`
	RolloutSoak       time.Duration `json:"rolloutSoak"`
	RolloutMinSample  int           `json:"rolloutMinSample"`
	RolloutMaxFailure float64       `json:"rolloutMaxFailure"`
	// RolloutApproval is "auto" (a healthy wave starts after its soak) or
	// "manual" (it also waits for an operator's approve).
	RolloutApproval string `json:"rolloutApproval"`
	// MaxUpgradesPerNight caps the upgrades of a night across every batch
	// and instance, taken in the ledger; 0: no cap.
	MaxUpgradesPerNight int `json:"maxUpgradesPerNight"`
	// Windows are the regions' own maintenance windows
	// (MAINTENANCE_WINDOWS); the others have Window.
	Windows map[string]Window `json:"maintenanceWindows,omitempty"`
	// TimeZone is MAINTENANCE_TZ: the default window's, and the night's
	// (MaxUpgradesPerNight counts from noon to noon in it).
	TimeZone string `json:"maintenanceTz"`
	// KillSwitch stops every update call (and the ledger's switch, set by a
	// stop request, stops runs already under way).
	KillSwitch bool `json:"killSwitch"`
	// ControlEndpoint marks the operators' function: deployed with no
	// trigger, it alone serves control requests and force (authority.go).
	ControlEndpoint bool `json:"controlEndpoint"`
	// PublishOutcomes is "all" (an event per gateway and version type) or
	// "changes" (none for a gateway that is simply up to date).
	PublishOutcomes string `json:"publishOutcomes"`
	// QueryEndpoint marks the look-only function: deployed with no
	// trigger, it answers status, history and plan, and nothing else.
	QueryEndpoint bool `json:"queryEndpoint"`

	// A full sweep of more eligible gateways than FanoutThreshold, with a
	// work queue, fans out: it sends them in batches of BatchSize for
	// workers to sweep.
	FanoutThreshold int `json:"fanoutThreshold"`
	BatchSize       int `json:"batchSize"`
}

// MarshalJSON gives the configuration as the "run started" line logs it,
// durations as Go duration strings ("10m0s"): nanoseconds are unreadable.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // the fields, without this method
	return json.Marshal(struct {
		plain
		// Same names as the embedded fields: these, less deep, win.
		UpgradeTime     string `json:"upgradeTime"`
		MinReleaseAge   string `json:"minReleaseAge"`
		DeadlineMargin  string `json:"deadlineMargin"`
		LedgerLease     string `json:"ledgerLease"`
		VerifyTimeout   string `json:"verifyTimeout"`
		PenaltyCooldown string `json:"penaltyCooldown"`
		RolloutSoak     string `json:"rolloutSoak"`
	}{plain(c), c.UpgradeTime.String(), c.MinReleaseAge.String(), c.DeadlineMargin.String(),
		c.LedgerLease.String(), c.VerifyTimeout.String(), c.PenaltyCooldown.String(), c.RolloutSoak.String()})
}

// WindowOf is the maintenance window of a region: its own, or the default.
func (c Config) WindowOf(region string) Window {
	if w, ok := c.Windows[region]; ok {
		return w
	}
	return c.Window
}

// Manual reports whether a rollout's waves wait for an operator's approval.
func (c Config) Manual() bool { return c.RolloutApproval == ApprovalManual }

// PUBLISH_OUTCOMES's values.
const (
	PublishAll     = "all"
	PublishChanges = "changes"
)

// ROLLOUT_APPROVAL's values.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
)

// Wiring is where the function's ports lead: the endpoints of the services
// and the names of its topic, queue and table. The same table reads it as
// Config, so its variables are checked and documented alike; main builds the
// clients of Cloud from it, and no run reads it (a run sees only Cloud).
type Wiring struct {
	SAGEndpoint  string // "": each region's endpoint
	MNSEndpoint  string
	OutcomeTopic string // "": no outcome events
	WorkQueue    string // "": no fan-out, continuations or verify requests
	// The ledger (Tablestore): all three set, or none.
	LedgerEndpoint, LedgerInstance, LedgerTable string
}

// Ledger reports whether the ledger is configured.
func (w Wiring) Ledger() bool { return w.LedgerTable != "" }

// Defaults of the rollout limits. The SAG API publishes no rate limit, so the
// function stays at a modest rate unless told otherwise. The table
// (config_vars.go) reads these as the variables' defaults.
const (
	DefaultMaxConcurrency    = 8
	DefaultAPIQPS            = 10
	DefaultMaxUpgradesPerRun = 500
	DefaultUpgradeTime       = 10 * time.Minute
	DefaultTimeZone          = "Asia/Shanghai"
	DefaultLedgerLease       = 30 * time.Minute
	DefaultVerifyTimeout     = 20 * time.Minute
	DefaultMaxAttempts       = 3
	DefaultPenaltyCooldown   = 7 * 24 * time.Hour
	DefaultRolloutCanary     = 2
	DefaultRolloutWaves      = "5%,25%,100%"
	DefaultRolloutSoak       = 12 * time.Hour
	DefaultRolloutMinSample  = 2
	DefaultRolloutMaxFailure = 0.2
	DefaultFanoutThreshold   = 1000
	DefaultBatchSize         = 50
)

// ConfigFromEnv reads the function's configuration; see ReadEnv.
func ConfigFromEnv(getenv func(string) string, functionRegion string) (Config, error) {
	c, _, err := ReadEnv(getenv, functionRegion)
	return c, err
}

// ReadEnv reads every variable of the table: the function's Config, and the
// Wiring main connects it with. getenv is os.Getenv in production;
// functionRegion (FC_REGION) is the default for SAG_REGIONS. Every error
// names the variable at fault.
func ReadEnv(getenv func(string) string, functionRegion string) (Config, Wiring, error) {
	s := settings{region: functionRegion}
	var problems []string
	for _, v := range configVars {
		value := strings.TrimSpace(getenv(v.name))
		if value == "" {
			value = v.def
		}
		for _, err := range unjoin(v.read(&s, value)) {
			problems = append(problems, v.name+": "+err.Error())
		}
	}
	for _, r := range configRules {
		if err := r.check(s); err != nil {
			problems = append(problems, r.name+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return s.cfg, s.wiring, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return s.cfg, s.wiring, nil
}

// settings is what the table's rows read into, in the table's order.
type settings struct {
	cfg    Config
	wiring Wiring
	region string // the function's region: SAG_REGIONS's default
	tz     string // MAINTENANCE_TZ once it loads ("": it did not)
}

// configRules are the rules between variables, each reported under the
// variable named first.
var configRules = []struct {
	name  string
	check func(settings) error
}{
	{"MNS_ENDPOINT", func(s settings) error {
		if s.wiring.MNSEndpoint == "" && (s.wiring.OutcomeTopic != "" || s.wiring.WorkQueue != "") {
			return errors.New("not set, but OUTCOME_TOPIC or WORK_QUEUE is")
		}
		return nil
	}},
	{"LEDGER_ENDPOINT", func(s settings) error {
		set := 0
		for _, v := range []string{s.wiring.LedgerEndpoint, s.wiring.LedgerInstance, s.wiring.LedgerTable} {
			if v != "" {
				set++
			}
		}
		if set != 0 && set != 3 {
			return errors.New("LEDGER_ENDPOINT, LEDGER_INSTANCE and LEDGER_TABLE go together: set all three or none")
		}
		return nil
	}},
	{"LEDGER_LEASE", func(s settings) error { return checkLease(s.cfg) }},
	{"MAX_UPGRADES_PER_NIGHT", func(s settings) error {
		if s.cfg.MaxUpgradesPerNight > 0 && !s.wiring.Ledger() {
			return errors.New("set, but the ledger is not (LEDGER_ENDPOINT, LEDGER_INSTANCE, LEDGER_TABLE): a night's count is kept there, across batches and instances")
		}
		return nil
	}},
	{"QUERY_ENDPOINT", func(s settings) error {
		if s.cfg.QueryEndpoint && s.cfg.ControlEndpoint {
			return errors.New("true, and so is CONTROL_ENDPOINT: a function is the look-only one or the operators', not both")
		}
		return nil
	}},
}

// unjoin splits the errors.Join of a row that found several problems (one
// per region, version type or held version), each reported on its own.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// check reports every value of c outside its documented range, naming the
// variable: the invariant of whatever ConfigFromEnv accepts.
func (c Config) check() error {
	var errs []error
	for _, v := range configVars {
		if v.check == nil {
			continue
		}
		if err := v.check(&c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
	}
	for _, r := range configRules {
		if err := r.check(settings{cfg: c}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
		}
	}
	return errors.Join(errs...)
}

// checkLease: a claim is only settled by verification, up to UPGRADE_TIME +
// VERIFY_TIMEOUT after its call; a shorter lease could let another run claim
// the gateway and call again while the first upgrade is unverified.
func checkLease(c Config) error {
	if c.LedgerLease < c.UpgradeTime+c.VerifyTimeout {
		return fmt.Errorf("%v is shorter than UPGRADE_TIME %v + VERIFY_TIMEOUT %v: a claim must outlive the upgrade and its verification",
			c.LedgerLease, c.UpgradeTime, c.VerifyTimeout)
	}
	return nil
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL such as https://host or http://127.0.0.1:8081", s)
	}
	return nil
}

// percent parses "25%" (or "0.25") as 0.25.
func percent(s string) (float64, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		return f / 100, err
	}
	return strconv.ParseFloat(s, 64)
}

var errTooLong = errors.New("more days than a duration holds")

// parseDuration accepts Go durations and whole days ("3d"), since release ages
// are naturally counted in days. A count of days that time.Duration cannot
// hold is an error, not a wrapped-around duration.
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return 0, err
		}
		if n > math.MaxInt64/int64(aDay) {
			return math.MaxInt64, errTooLong
		}
		if n < math.MinInt64/int64(aDay) {
			return math.MinInt64, errTooLong
		}
		return time.Duration(n) * aDay, nil
	}
	return time.ParseDuration(s)
}
