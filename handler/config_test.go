package handler

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sag-upgrade/sag-upgrade/events"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(nil), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions) != 1 || c.Regions[0] != "cn-shanghai" || len(c.VersionTypes) != 1 || c.VersionTypes[0] != upgrade.VersionDevice ||
		c.Channel != "release" || c.DryRun || !c.Window.Always() || c.MaxConcurrency != DefaultMaxConcurrency ||
		c.APIQPS != DefaultAPIQPS || c.MaxUpgradesPerRun != DefaultMaxUpgradesPerRun || c.UpgradeTime != DefaultUpgradeTime {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, w, err := ReadEnv(env(map[string]string{
		"SAG_REGIONS": "cn-shanghai, ap-southeast-1", "VERSION_TYPES": "Device,Dpi", "RELEASE_CHANNEL": "beta",
		"DRY_RUN": "true", "MAINTENANCE_WINDOW": "01:00-05:00", "MAINTENANCE_TZ": "Europe/Berlin",
		"MAX_CONCURRENCY": "4", "API_QPS": "2.5", "MAX_UPGRADES_PER_RUN": "20", "HOLD_VERSIONS": "2.3.1,2.3.1",
		"MIN_RELEASE_AGE": "3d", "MNS_ENDPOINT": "http://127.0.0.1:9", "OUTCOME_TOPIC": "sag-outcomes", "LOG_LEVEL": "DEBUG",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions) != 2 || len(c.VersionTypes) != 2 || c.Channel != "beta" || !c.DryRun ||
		c.Window.String() != "01:00-05:00 Europe/Berlin" || c.MaxConcurrency != 4 || c.APIQPS != 2.5 ||
		c.MaxUpgradesPerRun != 20 || len(c.HoldVersions) != 1 || c.MinReleaseAge != 72*time.Hour ||
		w.OutcomeTopic != "sag-outcomes" || c.LogLevel.String() != "debug" {
		t.Fatalf("config: %+v, wiring %+v", c, w)
	}
}

// Endpoints and names go to the Wiring, each from its variable.
func TestReadEnvWiring(t *testing.T) {
	_, w, err := ReadEnv(env(map[string]string{
		"SAG_ENDPOINT": "http://127.0.0.1:1", "MNS_ENDPOINT": "http://127.0.0.1:2", "OUTCOME_TOPIC": "topic", "WORK_QUEUE": "queue",
		"LEDGER_ENDPOINT": "http://127.0.0.1:3", "LEDGER_INSTANCE": "instance", "LEDGER_TABLE": "table",
	}), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	want := Wiring{SAGEndpoint: "http://127.0.0.1:1", MNSEndpoint: "http://127.0.0.1:2", OutcomeTopic: "topic", WorkQueue: "queue",
		LedgerEndpoint: "http://127.0.0.1:3", LedgerInstance: "instance", LedgerTable: "table"}
	if w != want || !w.Ledger() {
		t.Errorf("wiring %+v, want %+v", w, want)
	}
	if _, w, _ := ReadEnv(env(nil), "cn-shanghai"); w != (Wiring{}) || w.Ledger() {
		t.Errorf("unset: wiring %+v", w)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := map[string]string{
		"SAG_REGIONS":          "cn-beijing",
		"VERSION_TYPES":        "device",
		"RELEASE_CHANNEL":      "stable",
		"DRY_RUN":              "yes please",
		"MAINTENANCE_WINDOW":   "1am-5am",
		"MAX_CONCURRENCY":      "0",
		"API_QPS":              "-1",
		"MAX_UPGRADES_PER_RUN": "many",
		"HOLD_VERSIONS":        "v2",
		"MIN_RELEASE_AGE":      "a week",
		"SAG_ENDPOINT":         "127.0.0.1:8081",
		"LOG_LEVEL":            "loud",
	}
	for name, value := range cases {
		_, err := ConfigFromEnv(env(map[string]string{name: value}), "cn-shanghai")
		if err == nil || !strings.Contains(err.Error(), name+": ") || !strings.Contains(err.Error(), value) {
			t.Errorf("%s=%q: err = %v, want it to name the variable and the value", name, value, err)
		}
	}
	_, err := ConfigFromEnv(env(map[string]string{"OUTCOME_TOPIC": "t"}), "cn-shanghai")
	if err == nil || !strings.Contains(err.Error(), "MNS_ENDPOINT") {
		t.Errorf("OUTCOME_TOPIC without MNS_ENDPOINT: err = %v", err)
	}
	_, err = ConfigFromEnv(env(map[string]string{"MAINTENANCE_WINDOW": "01:00-05:00", "MAINTENANCE_TZ": "Shanghai"}), "cn-shanghai")
	if err == nil || !strings.Contains(err.Error(), "MAINTENANCE_TZ") {
		t.Errorf("a bad time zone: err = %v", err)
	}
	if _, err := ConfigFromEnv(env(nil), ""); err == nil || !strings.Contains(err.Error(), "SAG_REGIONS") {
		t.Errorf("no region at all: err = %v", err)
	}
}

// A claim is settled by verification up to UPGRADE_TIME + VERIFY_TIMEOUT
// after its call; a shorter lease would let a second run call again.
func TestConfigLeaseCoversUpgradeAndVerification(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		fail bool
	}{
		{map[string]string{}, false}, // defaults: 30m = 10m + 20m
		{map[string]string{"LEDGER_LEASE": "29m"}, true},
		{map[string]string{"VERIFY_TIMEOUT": "21m"}, true},
		{map[string]string{"UPGRADE_TIME": "15m", "VERIFY_TIMEOUT": "15m", "LEDGER_LEASE": "30m"}, false},
		{map[string]string{"UPGRADE_TIME": "15m", "VERIFY_TIMEOUT": "15m", "LEDGER_LEASE": "29m"}, true},
	} {
		c, err := ConfigFromEnv(env(tc.env), "cn-shanghai")
		if !tc.fail {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		// The error names both variables and the values at fault.
		for _, want := range []string{"LEDGER_LEASE: ", c.LedgerLease.String(), "UPGRADE_TIME " + c.UpgradeTime.String(), "VERIFY_TIMEOUT " + c.VerifyTimeout.String()} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: err = %v, want it to contain %q", tc.env, err, want)
			}
		}
	}
}

// A value that is not a finite number in its documented range, or a duration
// beyond it (or beyond what time.Duration holds), is an error naming the
// variable and the value: never a silently disabled safety net.
func TestConfigRejectsNonFiniteAndOutOfRangeValues(t *testing.T) {
	cases := []struct{ name, value string }{
		// NaN compares false with every bound: the breaker never opened.
		{"ROLLOUT_MAX_FAILURE", "NaN"},
		{"ROLLOUT_MAX_FAILURE", "NaN%"},
		{"ROLLOUT_MAX_FAILURE", "-Inf%"},
		{"ROLLOUT_MAX_FAILURE", "100%"},
		{"ROLLOUT_WAVES", "NaN,100%"},
		{"ROLLOUT_WAVES", "5%,NaN,100%"},
		{"ROLLOUT_WAVES", "5%,Inf%"},
		{"ROLLOUT_WAVES", "1%,2%,3%,4%,5%,6%,7%,8%,9%,10%,11%,12%,13%,14%,15%,16%,17%,18%,19%,20%,100%"},
		{"API_QPS", "NaN"},
		{"API_QPS", "Inf"},
		{"API_QPS", "+Inf"},
		{"API_QPS", "1e309"},
		{"API_QPS", "0.001"},
		{"API_QPS", "1001"},
		// Whole days overflowed time.Duration: 213504d became 25m26s.
		{"PENALTY_COOLDOWN", "213504d"},
		{"LEDGER_LEASE", "213505d"},
		{"MIN_RELEASE_AGE", "9223372036854775807d"},
		{"PENALTY_COOLDOWN", "366d"},
		{"MIN_RELEASE_AGE", "8761h"},
		{"ROLLOUT_SOAK", "366d"},
		{"LEDGER_LEASE", "31d"},
		{"VERIFY_TIMEOUT", "8d"},
		{"VERIFY_TIMEOUT", "0"},
		{"UPGRADE_TIME", "25h"},
		{"UPGRADE_TIME", "0s"},
		{"DEADLINE_MARGIN", "61m"},
		{"ROLLOUT_SOAK", "-1h"},
		// A batch is a request naming its gateways: at most events.MaxGatewayIDs.
		{"BATCH_SIZE", "1001"},
		{"MAX_CONCURRENCY", "257"},
		{"MAX_UPGRADES_PER_RUN", "1000001"},
		{"MAX_ATTEMPTS", "101"},
		{"ROLLOUT_CANARY", "1000001"},
		{"ROLLOUT_MIN_SAMPLE", "1000001"},
		{"FANOUT_THRESHOLD", "1000001"},
		{"FANOUT_THRESHOLD", "99999999999999999999"},
		// A zone is checked even with no window, and a level is one of the five.
		{"MAINTENANCE_TZ", "Mars/Olympus"},
		{"LOG_LEVEL", "disabled"},
		{"LOG_LEVEL", "-100"},
	}
	for _, tc := range cases {
		_, err := ConfigFromEnv(env(map[string]string{tc.name: tc.value}), "cn-shanghai")
		if err == nil || !strings.Contains(err.Error(), tc.name+": ") || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.value)) {
			t.Errorf("%s=%q: err = %v, want it to name the variable and the value", tc.name, tc.value, err)
		}
	}
}

// The ends of every documented range are accepted.
func TestConfigAcceptsTheEndsOfEachRange(t *testing.T) {
	for _, vars := range []map[string]string{
		{"API_QPS": "0.01", "MAX_CONCURRENCY": "1", "MAX_UPGRADES_PER_RUN": "1", "MAX_ATTEMPTS": "1", "ROLLOUT_CANARY": "1",
			"ROLLOUT_MIN_SAMPLE": "1", "FANOUT_THRESHOLD": "1", "BATCH_SIZE": "1", "ROLLOUT_MAX_FAILURE": "0%", "ROLLOUT_WAVES": "100%",
			"UPGRADE_TIME": "1s", "VERIFY_TIMEOUT": "1s", "LEDGER_LEASE": "2s", "MIN_RELEASE_AGE": "0", "PENALTY_COOLDOWN": "0d",
			"ROLLOUT_SOAK": "0s", "DEADLINE_MARGIN": "0"},
		{"API_QPS": "1000", "MAX_CONCURRENCY": "256", "MAX_UPGRADES_PER_RUN": "1000000", "MAX_ATTEMPTS": "100", "ROLLOUT_CANARY": "1000000",
			"ROLLOUT_MIN_SAMPLE": "1000000", "FANOUT_THRESHOLD": "1000000", "BATCH_SIZE": "1000", "ROLLOUT_MAX_FAILURE": "99.9%",
			"ROLLOUT_WAVES": "1%,2%,3%,4%,5%,6%,7%,8%,9%,10%,11%,12%,13%,14%,15%,16%,17%,18%,19%,100%",
			"UPGRADE_TIME":  "24h", "VERIFY_TIMEOUT": "7d", "LEDGER_LEASE": "30d", "MIN_RELEASE_AGE": "365d", "PENALTY_COOLDOWN": "8760h",
			"ROLLOUT_SOAK": "365d", "DEADLINE_MARGIN": "1h"},
	} {
		c, err := ConfigFromEnv(env(vars), "cn-shanghai")
		if err != nil {
			t.Errorf("%v: %v", vars, err)
			continue
		}
		if err := c.check(); err != nil {
			t.Errorf("%v: check: %v", vars, err)
		}
	}
	if c, _ := ConfigFromEnv(env(map[string]string{"MIN_RELEASE_AGE": "365d", "BATCH_SIZE": "1000"}), "cn-shanghai"); c.MinReleaseAge != 365*24*time.Hour || c.BatchSize != events.MaxGatewayIDs {
		t.Errorf("365d = %v, BATCH_SIZE 1000 = %d", c.MinReleaseAge, c.BatchSize)
	}
}

// check is the invariant ConfigFromEnv's result meets: it finds a value out
// of range in a Config made by hand, naming the variable.
func TestConfigCheckNamesTheVariable(t *testing.T) {
	good, err := ConfigFromEnv(env(nil), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if err := good.check(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, spoil := range map[string]func(*Config){
		"API_QPS":             func(c *Config) { c.APIQPS = math.NaN() },
		"ROLLOUT_MAX_FAILURE": func(c *Config) { c.RolloutMaxFailure = math.NaN() },
		"ROLLOUT_WAVES":       func(c *Config) { c.RolloutWaves = []float64{math.NaN(), 1} },
		"BATCH_SIZE":          func(c *Config) { c.BatchSize = events.MaxGatewayIDs + 1 },
		"PENALTY_COOLDOWN":    func(c *Config) { c.PenaltyCooldown = -time.Nanosecond },
		"LEDGER_LEASE":        func(c *Config) { c.LedgerLease = c.UpgradeTime },
		"MAX_CONCURRENCY":     func(c *Config) { c.MaxConcurrency = 0 },
	} {
		c := good
		c.RolloutWaves = slices.Clone(good.RolloutWaves)
		spoil(&c)
		if err := c.check(); err == nil || !strings.Contains(err.Error(), name+": ") {
			t.Errorf("%s spoilt: check = %v", name, err)
		}
	}
}

// README's configuration table and the table ConfigFromEnv reads say the
// same: one README row per variable and no other, each with the variable's
// default, beginning with its meaning and stating the values it takes (the
// range of each number as the code checks it).
func TestREADMEStatesEachVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no section ## Configuration")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string][]string{} // name → meaning, default
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		name, ok := strings.CutPrefix(strings.TrimSpace(cells[0]), "`")
		name, ok2 := strings.CutSuffix(name, "`")
		switch {
		case len(cells) != 3 || !ok || !ok2 || strings.Contains(name, "`"):
			t.Errorf("README: a configuration row is not | `NAME` | meaning | default |: %s", line)
		case documented[name] != nil:
			t.Errorf("README has two rows for %s", name)
		default:
			documented[name] = []string{strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])}
		}
	}
	for _, v := range configVars {
		doc := documented[v.name]
		delete(documented, v.name)
		switch {
		case doc == nil:
			t.Errorf("README has no row for %s", v.name)
			continue
		case !strings.HasPrefix(doc[0], v.meaning):
			t.Errorf("README's row of %s does not begin with its meaning %q: %s", v.name, v.meaning, doc[0])
		case !strings.Contains(doc[0], v.values):
			t.Errorf("README's row of %s does not say %q: %s", v.name, v.values, doc[0])
		}
		if doc[1] != v.defaultDoc() {
			t.Errorf("README's default of %s is %s, the table's %s", v.name, doc[1], v.defaultDoc())
		}
	}
	for name := range documented {
		t.Errorf("README documents %s, which ConfigFromEnv does not read", name)
	}
}

// The defaults the table reads are the Default constants the code and tests
// use.
func TestConfigDefaultsAreTheConstants(t *testing.T) {
	c, err := ConfigFromEnv(env(nil), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][2]any{
		"UPGRADE_TIME":         {c.UpgradeTime, DefaultUpgradeTime},
		"LEDGER_LEASE":         {c.LedgerLease, DefaultLedgerLease},
		"VERIFY_TIMEOUT":       {c.VerifyTimeout, DefaultVerifyTimeout},
		"PENALTY_COOLDOWN":     {c.PenaltyCooldown, DefaultPenaltyCooldown},
		"ROLLOUT_SOAK":         {c.RolloutSoak, DefaultRolloutSoak},
		"MIN_RELEASE_AGE":      {c.MinReleaseAge, time.Duration(0)},
		"DEADLINE_MARGIN":      {c.DeadlineMargin, time.Duration(0)},
		"MAX_CONCURRENCY":      {c.MaxConcurrency, DefaultMaxConcurrency},
		"MAX_UPGRADES_PER_RUN": {c.MaxUpgradesPerRun, DefaultMaxUpgradesPerRun},
		"MAX_ATTEMPTS":         {c.MaxAttempts, DefaultMaxAttempts},
		"ROLLOUT_CANARY":       {c.RolloutCanary, DefaultRolloutCanary},
		"ROLLOUT_MIN_SAMPLE":   {c.RolloutMinSample, DefaultRolloutMinSample},
		"FANOUT_THRESHOLD":     {c.FanoutThreshold, DefaultFanoutThreshold},
		"BATCH_SIZE":           {c.BatchSize, DefaultBatchSize},
		"API_QPS":              {c.APIQPS, float64(DefaultAPIQPS)},
		"ROLLOUT_MAX_FAILURE":  {c.RolloutMaxFailure, DefaultRolloutMaxFailure},
		"ROLLOUT_WAVES":        {fmt.Sprint(c.RolloutWaves), fmt.Sprint([]float64{0.05, 0.25, 1})},
		"LOG_LEVEL":            {c.LogLevel, zerolog.InfoLevel},
		"RELEASE_CHANNEL":      {c.Channel, "release"},
		"VERSION_TYPES":        {fmt.Sprint(c.VersionTypes), fmt.Sprint([]upgrade.VersionType{upgrade.VersionDevice})},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: unset reads %v, want %v", name, got[0], got[1])
		}
	}
}
