package handler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// configVar is one row of the configuration table: an environment variable,
// its default, the values it takes, what it means, and how it is read.
// README's configuration table states the same (config_test.go checks it
// both ways), and the deploy checks take their names from here.
type configVar struct {
	name string
	// def is read when the variable is unset or blank; "" reads "", which
	// every row with no default accepts.
	def string
	// defDoc is README's default where def does not say it ("the
	// function's region"); otherwise README's default is def, or "empty".
	defDoc string
	// values is what README's row says the variable takes ("1 to 256"), in
	// the words of read's errors where they say it.
	values string
	// meaning is how README's row begins.
	meaning string

	// read parses a value into s. An error says why without the name
	// (ConfigFromEnv adds it); an errors.Join is several problems.
	read func(s *settings, value string) error
	// check reports a value of c outside the row's range (Config.check),
	// and field is the Config field it checks; nil without a range.
	check func(c *Config) error
	field func(c *Config) any
}

// configVars is the configuration table, read in this order: a row may rely
// on the rows above it (MAINTENANCE_WINDOW on MAINTENANCE_TZ).
var configVars = []configVar{
	{name: "SAG_REGIONS", defDoc: "the function's region", meaning: "regions to sweep, comma-separated", read: readRegions},
	urlVar("SAG_ENDPOINT", func(w *Wiring) *string { return &w.SAGEndpoint },
		"override the SAG endpoint for every region", "`https://smartag.<region>.aliyuncs.com`"),
	{name: "VERSION_TYPES", def: defaultVersionTypes, values: "`Device`, `Dpi` or `Device,Dpi`",
		meaning: "version types to upgrade", read: readVersionTypes},
	{name: "RELEASE_CHANNEL", def: "release", values: "`release`, or `beta`", meaning: "releases to install", read: readChannel},
	boolVar("DRY_RUN", func(c *Config) *bool { return &c.DryRun }, "`true`: every run only plans"),
	{name: "MAINTENANCE_TZ", def: DefaultTimeZone, meaning: "IANA time zone of the window", read: readTimeZone},
	{name: "MAINTENANCE_WINDOW", meaning: "daily window `HH:MM-HH:MM`", read: readWindow},
	{name: "MAINTENANCE_WINDOWS", values: "`region=HH:MM-HH:MM@Zone;…`",
		meaning: "regions' own windows, each in its own time zone", read: readWindows},
	// Longer than a day never fits a daily window.
	durationVar("UPGRADE_TIME", DefaultUpgradeTime, time.Second, aDay, func(c *Config) *time.Duration { return &c.UpgradeTime },
		"how long a firmware upgrade keeps a device down"),
	durationVar("MIN_RELEASE_AGE", 0, 0, maxDuration, func(c *Config) *time.Duration { return &c.MinReleaseAge },
		"a release must be this old to be installed"),
	{name: "HOLD_VERSIONS", meaning: "versions never to install, comma-separated", read: readHoldVersions},
	intVar("MAX_CONCURRENCY", DefaultMaxConcurrency, 1, 256, func(c *Config) *int { return &c.MaxConcurrency },
		"gateways handled at once in each step"),
	{name: "API_QPS", def: strconv.FormatFloat(DefaultAPIQPS, 'f', -1, 64), values: fmt.Sprintf("%v to %v", minAPIQPS, maxAPIQPS),
		meaning: "the most SAG API calls per second of each action toward each region", read: readQPS,
		check: func(c *Config) error { return rangeError(c.APIQPS, checkQPS(c.APIQPS)) },
		field: func(c *Config) any { return &c.APIQPS }},
	intVar("MAX_UPGRADES_PER_RUN", DefaultMaxUpgradesPerRun, 1, 1_000_000, func(c *Config) *int { return &c.MaxUpgradesPerRun },
		"upgrades requested per run"),
	// 0: no cap; the rollout waves still bound a night.
	intVar("MAX_UPGRADES_PER_NIGHT", 0, 0, 1_000_000, func(c *Config) *int { return &c.MaxUpgradesPerNight },
		"upgrades a night, across every batch and instance"),
	// 0 derives the margin from each invocation's budget.
	withDefDoc(durationVar("DEADLINE_MARGIN", 0, 0, time.Hour, func(c *Config) *time.Duration { return &c.DeadlineMargin },
		"time kept free before the deadline"), "a fifth of the time budget, 0.5–30 s"),
	urlVar("MNS_ENDPOINT", func(w *Wiring) *string { return &w.MNSEndpoint },
		"MNS endpoint", ""),
	stringVar("OUTCOME_TOPIC", func(w *Wiring) *string { return &w.OutcomeTopic }, "topic for outcome events"),
	{name: "PUBLISH_OUTCOMES", def: PublishAll, values: "`all` or `changes`",
		meaning: "which outcomes are published", read: readPublishOutcomes},
	stringVar("WORK_QUEUE", func(w *Wiring) *string { return &w.WorkQueue }, "queue for fan-out and continuations"),
	urlVar("LEDGER_ENDPOINT", func(w *Wiring) *string { return &w.LedgerEndpoint }, "the ledger's Tablestore endpoint", ""),
	stringVar("LEDGER_INSTANCE", func(w *Wiring) *string { return &w.LedgerInstance }, "the ledger's Tablestore instance"),
	stringVar("LEDGER_TABLE", func(w *Wiring) *string { return &w.LedgerTable }, "the ledger's table"),
	// A dead run's claim holds its gateway for the whole lease.
	durationVar("LEDGER_LEASE", DefaultLedgerLease, time.Second, 30*aDay, func(c *Config) *time.Duration { return &c.LedgerLease },
		"how long a claim holds a gateway"),
	durationVar("VERIFY_TIMEOUT", DefaultVerifyTimeout, time.Second, 7*aDay, func(c *Config) *time.Duration { return &c.VerifyTimeout },
		"how long after `UPGRADE_TIME` a device may take to report the target"),
	intVar("MAX_ATTEMPTS", DefaultMaxAttempts, 1, 100, func(c *Config) *int { return &c.MaxAttempts },
		"failed or unverified upgrades in a row before the penalty box"),
	durationVar("PENALTY_COOLDOWN", DefaultPenaltyCooldown, 0, maxDuration, func(c *Config) *time.Duration { return &c.PenaltyCooldown },
		"how long the penalty box holds a gateway back"),
	intVar("ROLLOUT_CANARY", DefaultRolloutCanary, 1, 1_000_000, func(c *Config) *int { return &c.RolloutCanary },
		"gateways in a rollout's canary"),
	{name: "ROLLOUT_WAVES", def: DefaultRolloutWaves, values: fmt.Sprintf("1 to %d growing shares", maxRolloutWaves),
		meaning: "the waves after the canary", read: readWaves,
		check: func(c *Config) error { return rangeError(c.RolloutWaves, checkWaves(c.RolloutWaves)) },
		field: func(c *Config) any { return &c.RolloutWaves }},
	durationVar("ROLLOUT_SOAK", DefaultRolloutSoak, 0, maxDuration, func(c *Config) *time.Duration { return &c.RolloutSoak },
		"how long a verified wave runs before the next starts"),
	intVar("ROLLOUT_MIN_SAMPLE", DefaultRolloutMinSample, 1, 1_000_000, func(c *Config) *int { return &c.RolloutMinSample },
		"finished upgrades before the breaker may open"),
	{name: "ROLLOUT_MAX_FAILURE", def: strconv.FormatFloat(DefaultRolloutMaxFailure*100, 'f', -1, 64) + "%",
		values: "0% up to, not including, 100%", meaning: "share of failed and unverified upgrades that opens the breaker", read: readMaxFailure,
		check: func(c *Config) error { return rangeError(c.RolloutMaxFailure, checkMaxFailure(c.RolloutMaxFailure)) },
		field: func(c *Config) any { return &c.RolloutMaxFailure }},
	{name: "ROLLOUT_APPROVAL", def: ApprovalAuto, values: "`auto` or `manual`",
		meaning: "whether a soaked, healthy wave starts by itself", read: readApproval},
	boolVar("KILL_SWITCH", func(c *Config) *bool { return &c.KillSwitch }, "`true`: no update call at all"),
	boolVar("CONTROL_ENDPOINT", func(c *Config) *bool { return &c.ControlEndpoint }, "`true` only on the operators' function"),
	boolVar("QUERY_ENDPOINT", func(c *Config) *bool { return &c.QueryEndpoint }, "`true` only on the look-only function (status, history, plan)"),
	intVar("FANOUT_THRESHOLD", DefaultFanoutThreshold, 1, 1_000_000, func(c *Config) *int { return &c.FanoutThreshold },
		"a full sweep of more eligible gateways fans out"),
	// A batch is a sweep request naming its gateways.
	intVar("BATCH_SIZE", DefaultBatchSize, 1, events.MaxGatewayIDs, func(c *Config) *int { return &c.BatchSize },
		"gateways per work-queue batch"),
	{name: "LOG_LEVEL", def: zerolog.InfoLevel.String(), values: "`" + strings.Join(levelNames(), "`, `") + "`",
		meaning: "how much is logged", read: readLogLevel,
		check: func(c *Config) error {
			if !slices.Contains(logLevels, c.LogLevel) {
				return fmt.Errorf("%v is not one of %s", c.LogLevel, strings.Join(levelNames(), ", "))
			}
			return nil
		}},
}

// EnvNames are the environment variables ConfigFromEnv reads, in the
// table's order: the only ones a deployment may set.
func EnvNames() []string {
	names := make([]string, len(configVars))
	for i, v := range configVars {
		names[i] = v.name
	}
	return names
}

// defaultDoc is README's default of the row.
func (v configVar) defaultDoc() string {
	switch {
	case v.defDoc != "":
		return v.defDoc
	case v.def != "":
		return "`" + v.def + "`"
	}
	return "empty"
}

func withDefDoc(v configVar, doc string) configVar {
	v.defDoc = doc
	return v
}

// rangeError says which value of a Config is out of range, for check.
func rangeError(value any, err error) error {
	if err != nil {
		return fmt.Errorf("%v %w", value, err)
	}
	return nil
}

func intVar(name string, def, lo, hi int, field func(*Config) *int, meaning string) configVar {
	bounds := fmt.Sprintf("%d to %d", lo, hi)
	inRange := func(n int) error {
		if n < lo || n > hi {
			return fmt.Errorf("is not a whole number from %s", bounds)
		}
		return nil
	}
	return configVar{name: name, def: strconv.Itoa(def), values: bounds, meaning: meaning,
		read: func(s *settings, value string) error {
			n, err := strconv.Atoi(value)
			if err == nil {
				err = inRange(n)
			} else {
				err = fmt.Errorf("is not a whole number from %s", bounds)
			}
			*field(&s.cfg) = n
			return valueError(value, err)
		},
		check: func(c *Config) error { return rangeError(*field(c), inRange(*field(c))) },
		field: func(c *Config) any { return field(c) },
	}
}

func durationVar(name string, def, lo, hi time.Duration, field func(*Config) *time.Duration, meaning string) configVar {
	bounds := formatDuration(lo) + " to " + formatDuration(hi)
	inRange := func(d time.Duration) error {
		if d < lo || d > hi {
			return fmt.Errorf("is not a duration from %s", bounds)
		}
		return nil
	}
	return configVar{name: name, def: formatDuration(def), values: bounds, meaning: meaning,
		read: func(s *settings, value string) error {
			d, err := parseDuration(value)
			if err == nil || errors.Is(err, errTooLong) {
				err = inRange(d)
			} else {
				err = fmt.Errorf("is not a duration such as 90s, 10m, 72h or 3d (from %s)", bounds)
			}
			*field(&s.cfg) = d
			return valueError(value, err)
		},
		check: func(c *Config) error { return rangeError(*field(c), inRange(*field(c))) },
		field: func(c *Config) any { return field(c) },
	}
}

func boolVar(name string, field func(*Config) *bool, meaning string) configVar {
	return configVar{name: name, def: strconv.FormatBool(false), meaning: meaning,
		read: func(s *settings, value string) error {
			b, err := strconv.ParseBool(value)
			*field(&s.cfg) = b
			if err != nil {
				return fmt.Errorf("%q is not true or false", value)
			}
			return nil
		}}
}

// stringVar and urlVar read the Wiring: only main uses names and endpoints.
func stringVar(name string, field func(*Wiring) *string, meaning string) configVar {
	return configVar{name: name, meaning: meaning, read: func(s *settings, value string) error {
		*field(&s.wiring) = value
		return nil
	}}
}

func urlVar(name string, field func(*Wiring) *string, meaning, defDoc string) configVar {
	return configVar{name: name, defDoc: defDoc, values: "an http(s) URL", meaning: meaning,
		read: func(s *settings, value string) error {
			*field(&s.wiring) = value
			if value == "" {
				return nil
			}
			return checkURL(value)
		}}
}

// valueError quotes the value before what is wrong with it.
func valueError(value string, err error) error {
	if err != nil {
		return fmt.Errorf("%q %w", value, err)
	}
	return nil
}

func readRegions(s *settings, value string) error {
	regions := list(value)
	if len(regions) == 0 && s.region != "" {
		regions = []string{s.region}
	}
	if len(regions) == 0 {
		return errors.New("not set, and the function's region is unknown")
	}
	var errs []error
	for _, r := range regions {
		if !upgrade.KnownRegion(r) {
			errs = append(errs, fmt.Errorf("%q is not a Smart Access Gateway region (known: %s)", r, strings.Join(upgrade.SAGRegions(), ", ")))
		}
	}
	s.cfg.Regions = dedupe(regions)
	return errors.Join(errs...)
}

const defaultVersionTypes = string(upgrade.VersionDevice)

func readVersionTypes(s *settings, value string) error {
	types := list(value)
	if len(types) == 0 { // "," as unset
		types = list(defaultVersionTypes)
	}
	var errs []error
	for _, t := range dedupe(types) {
		vt := upgrade.VersionType(t)
		if !vt.Known() {
			errs = append(errs, fmt.Errorf("%q is not Device or Dpi", t))
		}
		s.cfg.VersionTypes = append(s.cfg.VersionTypes, vt)
	}
	return errors.Join(errs...)
}

func readChannel(s *settings, value string) error {
	if value != "release" && value != "beta" {
		return fmt.Errorf("%q is not release or beta", value)
	}
	s.cfg.Channel = value
	return nil
}

// readTimeZone checks the zone even without a window: a typo must not wait
// for the day someone sets one.
func readTimeZone(s *settings, value string) error {
	if _, err := loadZone(value); err != nil {
		return fmt.Errorf("%q is not an IANA time zone such as Asia/Shanghai", value)
	}
	s.tz, s.cfg.TimeZone = value, value
	return nil
}

// readWindow reads the window in MAINTENANCE_TZ, read above it.
func readWindow(s *settings, value string) error {
	if s.tz == "" {
		return nil // MAINTENANCE_TZ said what is wrong
	}
	w, err := ParseWindow(value, s.tz)
	if err != nil {
		return err
	}
	s.cfg.Window = w
	return nil
}

// readWindows reads MAINTENANCE_WINDOWS: region=HH:MM-HH:MM@Zone, ";" apart.
func readWindows(s *settings, value string) error {
	var errs []error
	for _, part := range strings.Split(value, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		region, rest, ok1 := strings.Cut(part, "=")
		spec, zone, ok2 := strings.Cut(rest, "@")
		region, spec, zone = strings.TrimSpace(region), strings.TrimSpace(spec), strings.TrimSpace(zone)
		switch {
		case !ok1 || !ok2 || spec == "" || zone == "":
			errs = append(errs, fmt.Errorf("%q is not region=HH:MM-HH:MM@Zone, such as cn-shanghai=01:00-05:00@Asia/Shanghai", part))
			continue
		case !upgrade.KnownRegion(region):
			errs = append(errs, fmt.Errorf("%q is not a Smart Access Gateway region", region))
			continue
		case s.cfg.Windows[region] != Window{}:
			errs = append(errs, fmt.Errorf("%s has two windows", region))
			continue
		}
		if _, err := loadZone(zone); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an IANA time zone such as Europe/Berlin", region, zone))
			continue
		}
		w, err := ParseWindow(spec, zone)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", region, err))
			continue
		}
		if w.Always() {
			errs = append(errs, fmt.Errorf("%s: a window is needed", region))
			continue
		}
		if s.cfg.Windows == nil {
			s.cfg.Windows = map[string]Window{}
		}
		s.cfg.Windows[region] = w
	}
	return errors.Join(errs...)
}

func readPublishOutcomes(s *settings, value string) error {
	if value != PublishAll && value != PublishChanges {
		return fmt.Errorf("%q is not all or changes", value)
	}
	s.cfg.PublishOutcomes = value
	return nil
}

func readApproval(s *settings, value string) error {
	if value != ApprovalAuto && value != ApprovalManual {
		return fmt.Errorf("%q is not auto or manual", value)
	}
	s.cfg.RolloutApproval = value
	return nil
}

func readHoldVersions(s *settings, value string) error {
	var errs []error
	for _, v := range dedupe(list(value)) {
		if !validVersion(v) {
			errs = append(errs, fmt.Errorf("%q is not a dotted version such as 2.3.1", v))
		}
		s.cfg.HoldVersions = append(s.cfg.HoldVersions, v)
	}
	return errors.Join(errs...)
}

// A share or rate that does not parse is NaN, in no range: the range check
// says what it must be.

func readQPS(s *settings, value string) error {
	q, err := strconv.ParseFloat(value, 64)
	if err != nil {
		q = math.NaN()
	}
	s.cfg.APIQPS = q
	return valueError(value, checkQPS(q))
}

func readMaxFailure(s *settings, value string) error {
	f, err := percent(value)
	if err != nil {
		f = math.NaN()
	}
	s.cfg.RolloutMaxFailure = f
	return valueError(value, checkMaxFailure(f))
}

func readWaves(s *settings, value string) error {
	var waves []float64
	for _, w := range list(value) {
		f, err := percent(w)
		if err != nil {
			f = math.NaN()
		}
		waves = append(waves, f)
	}
	s.cfg.RolloutWaves = waves
	return valueError(value, checkWaves(waves))
}

// readLogLevel takes only the five names: zerolog.ParseLevel also takes
// numbers and "disabled", which would log everything or nothing.
func readLogLevel(s *settings, value string) error {
	l, err := zerolog.ParseLevel(strings.ToLower(value))
	s.cfg.LogLevel = l
	if err != nil || !slices.Contains(logLevels, l) {
		return fmt.Errorf("%q is not one of %s", value, strings.Join(levelNames(), ", "))
	}
	return nil
}

var logLevels = []zerolog.Level{zerolog.TraceLevel, zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel}

func levelNames() []string {
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		names[i] = l.String()
	}
	return names
}

const aDay = 24 * time.Hour

// maxDuration bounds every duration variable: a year is beyond any sensible
// setting, and far inside what time.Duration holds (292 years), so sums such
// as UPGRADE_TIME + VERIFY_TIMEOUT cannot overflow either.
const maxDuration = 365 * aDay

// formatDuration writes durations as they are configured: whole days as
// days ("365d"), no trailing zero units ("10m").
func formatDuration(d time.Duration) string {
	if d > aDay && d%aDay == 0 {
		return fmt.Sprintf("%dd", d/aDay)
	}
	if d == 0 {
		return "0"
	}
	// Only whole zero units: "10m0s" is 10m, not 1.
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
