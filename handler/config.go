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

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Config is the function's configuration, read from its environment. It holds
// no secret, so it can be logged whole.
type Config struct {
	Regions           []string              `json:"regions"`
	SAGEndpoint       string                `json:"sagEndpoint,omitempty"`
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
	MNSEndpoint       string                `json:"mnsEndpoint,omitempty"`
	OutcomeTopic      string                `json:"outcomeTopic,omitempty"`
	WorkQueue         string                `json:"workQueue,omitempty"`
	LogLevel          zerolog.Level         `json:"logLevel"`

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
		if !upgrade.KnownRegion(r) {
			fail("SAG_REGIONS", "%q is not a Smart Access Gateway region (known: %s)", r, strings.Join(upgrade.SAGRegions(), ", "))
		}
	}
	c.Regions = dedupe(regions)

	if e := env("SAG_ENDPOINT"); e != "" {
		if err := checkURL(e); err != nil {
			fail("SAG_ENDPOINT", "%v", err)
		}
		c.SAGEndpoint = e
	}

	c.VersionTypes = []upgrade.VersionType{upgrade.VersionDevice}
	if v := list(env("VERSION_TYPES")); len(v) > 0 {
		c.VersionTypes = nil
		for _, t := range dedupe(v) {
			vt := upgrade.VersionType(t)
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
	// The zone is checked even without a window: a typo must not wait for
	// the day someone sets one.
	if _, err := loadZone(tz); err != nil {
		fail("MAINTENANCE_TZ", "%q is not an IANA time zone such as Asia/Shanghai", tz)
	} else if w, err := ParseWindow(env("MAINTENANCE_WINDOW"), tz); err != nil {
		fail("MAINTENANCE_WINDOW", "%v", err)
	} else {
		c.Window = w
	}

	for _, v := range durationVars {
		if s := env(v.name); s != "" {
			d, err := parseDuration(s)
			if err == nil || errors.Is(err, errTooLong) {
				err = v.check(d)
			} else {
				err = fmt.Errorf("is not a duration such as 90s, 10m, 72h or 3d (from %s)", v.bounds())
			}
			if err != nil {
				fail(v.name, "%q %v", s, err)
			}
			*v.field(&c) = d
		}
	}
	for _, v := range intVars {
		if s := env(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err == nil {
				err = v.check(n)
			} else {
				err = fmt.Errorf("is not a whole number from %s", v.bounds())
			}
			if err != nil {
				fail(v.name, "%q %v", s, err)
			}
			*v.field(&c) = n
		}
	}

	waves := env("ROLLOUT_WAVES")
	if waves == "" {
		waves = DefaultRolloutWaves
	}
	for _, w := range list(waves) {
		f, err := percent(w)
		if err != nil {
			f = math.NaN()
		}
		c.RolloutWaves = append(c.RolloutWaves, f)
	}
	if err := checkWaves(c.RolloutWaves); err != nil {
		fail("ROLLOUT_WAVES", "%q %v", waves, err)
	}
	if v := env("ROLLOUT_MAX_FAILURE"); v != "" {
		f, err := percent(v)
		if err != nil {
			f = math.NaN() // in no range: the check says what a share must be
		}
		if err := checkMaxFailure(f); err != nil {
			fail("ROLLOUT_MAX_FAILURE", "%q %v", v, err)
		}
		c.RolloutMaxFailure = f
	}
	if v := env("API_QPS"); v != "" {
		q, err := strconv.ParseFloat(v, 64)
		if err != nil {
			q = math.NaN()
		}
		if err := checkQPS(q); err != nil {
			fail("API_QPS", "%q %v", v, err)
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
	if err := checkLease(c); err != nil {
		fail("LEDGER_LEASE", "%v", err)
	}

	if v := env("LOG_LEVEL"); v != "" {
		// ParseLevel also takes numbers and "disabled", which would log
		// everything or nothing: only the five names.
		l, err := zerolog.ParseLevel(strings.ToLower(v))
		if err != nil || !slices.Contains(logLevels, l) {
			fail("LOG_LEVEL", "%q is not one of trace, debug, info, warn, error", v)
		}
		c.LogLevel = l
	}

	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

const aDay = 24 * time.Hour

// maxDuration bounds every duration variable: a year is beyond any sensible
// setting, and far inside what time.Duration holds (292 years), so sums such
// as UPGRADE_TIME + VERIFY_TIMEOUT cannot overflow either.
const maxDuration = 365 * aDay

// The documented range of every number of the configuration (README's
// configuration table states the same, TestREADMEStatesEachRange checks it).
// ConfigFromEnv rejects a value outside it; check asserts the same rules of a
// Config, so they are stated once.
type intVar struct {
	name     string
	min, max int
	field    func(*Config) *int
}

var intVars = []intVar{
	{"MAX_CONCURRENCY", 1, 256, func(c *Config) *int { return &c.MaxConcurrency }},
	{"MAX_UPGRADES_PER_RUN", 1, 1_000_000, func(c *Config) *int { return &c.MaxUpgradesPerRun }},
	{"MAX_ATTEMPTS", 1, 100, func(c *Config) *int { return &c.MaxAttempts }},
	{"ROLLOUT_CANARY", 1, 1_000_000, func(c *Config) *int { return &c.RolloutCanary }},
	{"ROLLOUT_MIN_SAMPLE", 1, 1_000_000, func(c *Config) *int { return &c.RolloutMinSample }},
	{"FANOUT_THRESHOLD", 1, 1_000_000, func(c *Config) *int { return &c.FanoutThreshold }},
	// A batch is a sweep request naming its gateways.
	{"BATCH_SIZE", 1, events.MaxGatewayIDs, func(c *Config) *int { return &c.BatchSize }},
}

func (v intVar) bounds() string { return fmt.Sprintf("%d to %d", v.min, v.max) }

func (v intVar) check(n int) error {
	if n < v.min || n > v.max {
		return fmt.Errorf("is not a whole number from %s", v.bounds())
	}
	return nil
}

type durationVar struct {
	name     string
	min, max time.Duration
	field    func(*Config) *time.Duration
}

var durationVars = []durationVar{
	// Longer than a day never fits a daily window.
	{"UPGRADE_TIME", time.Second, aDay, func(c *Config) *time.Duration { return &c.UpgradeTime }},
	{"MIN_RELEASE_AGE", 0, maxDuration, func(c *Config) *time.Duration { return &c.MinReleaseAge }},
	// 0 derives the margin from each invocation's budget.
	{"DEADLINE_MARGIN", 0, time.Hour, func(c *Config) *time.Duration { return &c.DeadlineMargin }},
	// A dead run's claim holds its gateway for the whole lease.
	{"LEDGER_LEASE", time.Second, 30 * aDay, func(c *Config) *time.Duration { return &c.LedgerLease }},
	{"VERIFY_TIMEOUT", time.Second, 7 * aDay, func(c *Config) *time.Duration { return &c.VerifyTimeout }},
	{"PENALTY_COOLDOWN", 0, maxDuration, func(c *Config) *time.Duration { return &c.PenaltyCooldown }},
	{"ROLLOUT_SOAK", 0, maxDuration, func(c *Config) *time.Duration { return &c.RolloutSoak }},
}

func (v durationVar) bounds() string {
	return fmt.Sprintf("%s to %s", formatDuration(v.min), formatDuration(v.max))
}

func (v durationVar) check(d time.Duration) error {
	if d < v.min || d > v.max {
		return fmt.Errorf("is not a duration from %s", v.bounds())
	}
	return nil
}

// formatDuration writes whole days as days ("365d"), as they are configured.
func formatDuration(d time.Duration) string {
	if d > aDay && d%aDay == 0 {
		return fmt.Sprintf("%dd", d/aDay)
	}
	if d == 0 {
		return "0"
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// The bounds of API_QPS: below a call a hundred seconds nothing useful
// happens in a run, and the rate limiter's arithmetic stays far from
// overflow; above a thousand a second is no API's real limit.
const (
	minAPIQPS = 0.01
	maxAPIQPS = 1000
	// maxRolloutWaves bounds ROLLOUT_WAVES: each wave soaks and waits for
	// its verification, so more than this would take months.
	maxRolloutWaves = 20
)

// The checks below are written as "in range" tests, so that NaN, which
// compares false with everything, fails them.

func checkQPS(q float64) error {
	if !(q >= minAPIQPS && q <= maxAPIQPS) {
		return fmt.Errorf("is not a number from %v to %v", minAPIQPS, maxAPIQPS)
	}
	return nil
}

func checkMaxFailure(f float64) error {
	if !(f >= 0 && f < 1) {
		return errors.New("is not a share such as 20% (from 0% up to, not including, 100%)")
	}
	return nil
}

func checkWaves(waves []float64) error {
	if len(waves) == 0 || len(waves) > maxRolloutWaves {
		return fmt.Errorf("is not a list of 1 to %d growing shares such as 5%%,25%%,100%%", maxRolloutWaves)
	}
	prev := 0.0
	for _, f := range waves {
		if !(f > prev && f <= 1) {
			return fmt.Errorf("is not a list of 1 to %d growing shares such as 5%%,25%%,100%%", maxRolloutWaves)
		}
		prev = f
	}
	if prev != 1 {
		return errors.New("does not end at 100%: the rollout would never finish")
	}
	return nil
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

var logLevels = []zerolog.Level{zerolog.TraceLevel, zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel}

// check reports every number of c outside its documented range, naming the
// variable: the invariant of whatever ConfigFromEnv accepts.
func (c Config) check() error {
	var errs []error
	bad := func(name string, value any, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v %w", name, value, err))
		}
	}
	for _, v := range intVars {
		bad(v.name, *v.field(&c), v.check(*v.field(&c)))
	}
	for _, v := range durationVars {
		bad(v.name, *v.field(&c), v.check(*v.field(&c)))
	}
	bad("API_QPS", c.APIQPS, checkQPS(c.APIQPS))
	bad("ROLLOUT_MAX_FAILURE", c.RolloutMaxFailure, checkMaxFailure(c.RolloutMaxFailure))
	bad("ROLLOUT_WAVES", c.RolloutWaves, checkWaves(c.RolloutWaves))
	if err := checkLease(c); err != nil {
		errs = append(errs, fmt.Errorf("LEDGER_LEASE: %w", err))
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %v is not one of trace, debug, info, warn, error", c.LogLevel))
	}
	return errors.Join(errs...)
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
