package handler

import (
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
	UpgradeTime       time.Duration        `json:"-"`
	MaxConcurrency    int                  `json:"maxConcurrency"`
	APIQPS            float64              `json:"apiQps"`
	MaxUpgradesPerRun int                  `json:"maxUpgradesPerRun"`
	HoldVersions      []string             `json:"holdVersions,omitempty"`
	MinReleaseAge     time.Duration        `json:"-"`
	DeadlineMargin    time.Duration        `json:"-"` // 0: derived from each invocation's time budget
	MNSEndpoint       string               `json:"mnsEndpoint,omitempty"`
	OutcomeTopic      string               `json:"outcomeTopic,omitempty"`
	WorkQueue         string               `json:"workQueue,omitempty"`
	LogLevel          zerolog.Level        `json:"logLevel"`

	// The ledger (Tablestore): all three set, or none.
	LedgerEndpoint string `json:"ledgerEndpoint,omitempty"`
	LedgerInstance string `json:"ledgerInstance,omitempty"`
	LedgerTable    string `json:"ledgerTable,omitempty"`
	// LedgerLease protects a claim: no other run calls for the gateway
	// before it ends. It must outlive the function's timeout.
	LedgerLease time.Duration `json:"-"`
	// VerifyTimeout is how long after UpgradeTime a device may take to
	// report the target before it is unverified.
	VerifyTimeout time.Duration `json:"-"`
	// MaxAttempts consecutive failed or unverified upgrades put a gateway in
	// the penalty box for PenaltyCooldown.
	MaxAttempts     int           `json:"maxAttempts"`
	PenaltyCooldown time.Duration `json:"-"`
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
	if c.LedgerLease < c.UpgradeTime {
		fail("LEDGER_LEASE", "%v is shorter than UPGRADE_TIME %v: a claim must outlive the upgrade", c.LedgerLease, c.UpgradeTime)
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
