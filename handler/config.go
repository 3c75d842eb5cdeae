package handler

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Config is the function's configuration, read from its environment. It holds
// no secret, so it can be logged whole.
type Config struct {
	Regions           []string             `json:"regions"`
	SAGEndpoint       string               `json:"sagEndpoint,omitempty"`
	VersionTypes      []events.VersionType `json:"versionTypes"`
	Channel           string               `json:"releaseChannel"`
	DryRun            bool                 `json:"dryRun"`
	Window            Window               `json:"maintenanceWindow"`
	UpgradeTime       time.Duration        `json:"upgradeTime"`
	MaxConcurrency    int                  `json:"maxConcurrency"`
	APIQPS            float64              `json:"apiQps"`
	MaxUpgradesPerRun int                  `json:"maxUpgradesPerRun"`
	HoldVersions      []string             `json:"holdVersions,omitempty"`
	MinReleaseAge     time.Duration        `json:"minReleaseAge"`
	DeadlineMargin    time.Duration        `json:"deadlineMargin"` // 0: derived from each invocation's time budget
	MNSEndpoint       string               `json:"mnsEndpoint,omitempty"`
	OutcomeTopic      string               `json:"outcomeTopic,omitempty"`
	WorkQueue         string               `json:"workQueue,omitempty"`
	LogLevel          zerolog.Level        `json:"logLevel"`

	// The ledger (Tablestore): all three set, or none.
	LedgerEndpoint string `json:"ledgerEndpoint,omitempty"`
	LedgerInstance string `json:"ledgerInstance,omitempty"`
	LedgerTable    string `json:"ledgerTable,omitempty"`
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
	// KillSwitch stops every update call (and the ledger's switch, set by a
	// stop request, stops runs already under way).
	KillSwitch bool `json:"killSwitch"`
	// ControlEndpoint marks the operators' function: deployed with no
	// trigger, it alone serves control requests and force (authority.go).
	ControlEndpoint bool `json:"controlEndpoint"`

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

// Ledger reports whether the ledger is configured.
func (c Config) Ledger() bool { return c.LedgerTable != "" }

// Defaults of the rollout limits. The SAG API publishes no rate limit, so the
// function stays at a modest rate unless told otherwise.
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

// ConfigFromEnv reads the configuration. getenv is os.Getenv in production;
// functionRegion (FC_REGION) is the default for SAG_REGIONS. Every error names
// the variable at fault.
func ConfigFromEnv(getenv func(string) string, functionRegion string) (Config, error) {
	c := Config{
		Channel:           "release",
		UpgradeTime:       DefaultUpgradeTime,
		MaxConcurrency:    DefaultMaxConcurrency,
		APIQPS:            DefaultAPIQPS,
		MaxUpgradesPerRun: DefaultMaxUpgradesPerRun,
		LogLevel:          zerolog.InfoLevel,
		LedgerLease:       DefaultLedgerLease,
		VerifyTimeout:     DefaultVerifyTimeout,
		MaxAttempts:       DefaultMaxAttempts,
		PenaltyCooldown:   DefaultPenaltyCooldown,
		RolloutCanary:     DefaultRolloutCanary,
		RolloutSoak:       DefaultRolloutSoak,
		RolloutMinSample:  DefaultRolloutMinSample,
		RolloutMaxFailure: DefaultRolloutMaxFailure,
		FanoutThreshold:   DefaultFanoutThreshold,
		BatchSize:         DefaultBatchSize,
	}
	var errs []string
	fail := func(name, format string, args ...any) {
		errs = append(errs, name+": "+fmt.Sprintf(format, args...))
	}
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }

	regions := list(env("SAG_REGIONS"))
	if len(regions) == 0 && functionRegion != "" {
		regions = []string{functionRegion}
	}
	if len(regions) == 0 {
		fail("SAG_REGIONS", "not set, and the function's region is unknown")
	}
	for _, r := range regions {
		if !events.KnownRegion(r) {
			fail("SAG_REGIONS", "%q is not a Smart Access Gateway region (known: %s)", r, strings.Join(events.SAGRegions(), ", "))
		}
	}
	c.Regions = dedupe(regions)

	if e := env("SAG_ENDPOINT"); e != "" {
		if err := checkURL(e); err != nil {
			fail("SAG_ENDPOINT", "%v", err)
		}
		c.SAGEndpoint = e
	}

	c.VersionTypes = []events.VersionType{events.VersionDevice}
	if v := list(env("VERSION_TYPES")); len(v) > 0 {
		c.VersionTypes = nil
		for _, t := range dedupe(v) {
			vt := events.VersionType(t)
			if !vt.Known() {
				fail("VERSION_TYPES", "%q is not Device or Dpi", t)
			}
			c.VersionTypes = append(c.VersionTypes, vt)
		}
	}

	switch ch := env("RELEASE_CHANNEL"); ch {
	case "", "release":
	case "beta":
		c.Channel = "beta"
	default:
		fail("RELEASE_CHANNEL", "%q is not release or beta", ch)
	}

	boolean := func(name string, dst *bool) {
		if v := env(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				fail(name, "%q is not true or false", v)
			}
			*dst = b
		}
	}
	boolean("DRY_RUN", &c.DryRun)
	boolean("KILL_SWITCH", &c.KillSwitch)
	boolean("CONTROL_ENDPOINT", &c.ControlEndpoint)

	tz := env("MAINTENANCE_TZ")
	if tz == "" {
		tz = DefaultTimeZone
	}
	w, err := ParseWindow(env("MAINTENANCE_WINDOW"), tz)
	if err != nil {
		fail("MAINTENANCE_WINDOW", "%v", err)
	}
	c.Window = w

	duration := func(name string, dst *time.Duration) {
		if v := env(name); v != "" {
			d, err := parseDuration(v)
			if err != nil || d < 0 {
				fail(name, "%q is not a duration such as 90s, 10m, 72h or 3d", v)
			}
			*dst = d
		}
	}
	duration("UPGRADE_TIME", &c.UpgradeTime)
	duration("MIN_RELEASE_AGE", &c.MinReleaseAge)
	duration("DEADLINE_MARGIN", &c.DeadlineMargin)
	duration("LEDGER_LEASE", &c.LedgerLease)
	duration("VERIFY_TIMEOUT", &c.VerifyTimeout)
	duration("PENALTY_COOLDOWN", &c.PenaltyCooldown)
	duration("ROLLOUT_SOAK", &c.RolloutSoak)

	positive := func(name string, dst *int) {
		if v := env(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				fail(name, "%q is not a whole number of at least 1", v)
			}
			*dst = n
		}
	}
	positive("MAX_CONCURRENCY", &c.MaxConcurrency)
	positive("MAX_UPGRADES_PER_RUN", &c.MaxUpgradesPerRun)
	positive("MAX_ATTEMPTS", &c.MaxAttempts)
	positive("ROLLOUT_CANARY", &c.RolloutCanary)
	positive("FANOUT_THRESHOLD", &c.FanoutThreshold)
	positive("BATCH_SIZE", &c.BatchSize)
	positive("ROLLOUT_MIN_SAMPLE", &c.RolloutMinSample)
	waves := env("ROLLOUT_WAVES")
	if waves == "" {
		waves = DefaultRolloutWaves
	}
	for _, w := range list(waves) {
		f, err := percent(w)
		if err != nil || f <= 0 || f > 1 || (len(c.RolloutWaves) > 0 && f <= c.RolloutWaves[len(c.RolloutWaves)-1]) {
			fail("ROLLOUT_WAVES", "%q is not a list of growing shares such as 5%%,25%%,100%%", waves)
			break
		}
		c.RolloutWaves = append(c.RolloutWaves, f)
	}
	if n := len(c.RolloutWaves); n > 0 && c.RolloutWaves[n-1] != 1 {
		fail("ROLLOUT_WAVES", "%q does not end at 100%%: the rollout would never finish", waves)
	}
	if v := env("ROLLOUT_MAX_FAILURE"); v != "" {
		f, err := percent(v)
		if err != nil || f < 0 || f >= 1 {
			fail("ROLLOUT_MAX_FAILURE", "%q is not a share such as 20%% (0%% to 99%%)", v)
		}
		c.RolloutMaxFailure = f
	}
	if v := env("API_QPS"); v != "" {
		q, err := strconv.ParseFloat(v, 64)
		if err != nil || q <= 0 {
			fail("API_QPS", "%q is not a positive number", v)
		}
		c.APIQPS = q
	}

	for _, v := range dedupe(list(env("HOLD_VERSIONS"))) {
		if !validVersion(v) {
			fail("HOLD_VERSIONS", "%q is not a dotted version such as 2.3.1", v)
		}
		c.HoldVersions = append(c.HoldVersions, v)
	}

	c.MNSEndpoint = env("MNS_ENDPOINT")
	c.OutcomeTopic = env("OUTCOME_TOPIC")
	c.WorkQueue = env("WORK_QUEUE")
	if c.MNSEndpoint != "" {
		if err := checkURL(c.MNSEndpoint); err != nil {
			fail("MNS_ENDPOINT", "%v", err)
		}
	} else if c.OutcomeTopic != "" || c.WorkQueue != "" {
		fail("MNS_ENDPOINT", "not set, but OUTCOME_TOPIC or WORK_QUEUE is")
	}

	c.LedgerEndpoint, c.LedgerInstance, c.LedgerTable = env("LEDGER_ENDPOINT"), env("LEDGER_INSTANCE"), env("LEDGER_TABLE")
	if set := boolInt(c.LedgerEndpoint != "") + boolInt(c.LedgerInstance != "") + boolInt(c.LedgerTable != ""); set != 0 && set != 3 {
		fail("LEDGER_ENDPOINT", "LEDGER_ENDPOINT, LEDGER_INSTANCE and LEDGER_TABLE go together: set all three or none")
	}
	if c.LedgerEndpoint != "" {
		if err := checkURL(c.LedgerEndpoint); err != nil {
			fail("LEDGER_ENDPOINT", "%v", err)
		}
	}
	// A claim is only settled by verification, up to UPGRADE_TIME +
	// VERIFY_TIMEOUT after its call: a shorter lease could let another run
	// claim the gateway and call again while the first upgrade is unverified.
	if c.LedgerLease < c.UpgradeTime+c.VerifyTimeout {
		fail("LEDGER_LEASE", "%v is shorter than UPGRADE_TIME %v + VERIFY_TIMEOUT %v: a claim must outlive the upgrade and its verification",
			c.LedgerLease, c.UpgradeTime, c.VerifyTimeout)
	}

	if v := env("LOG_LEVEL"); v != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(v))
		if err != nil || l == zerolog.NoLevel {
			fail("LOG_LEVEL", "%q is not one of trace, debug, info, warn, error", v)
		}
		c.LogLevel = l
	}

	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
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

// parseDuration accepts Go durations and whole days ("3d"), since release ages
// are naturally counted in days.
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
