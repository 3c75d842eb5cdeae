package handler

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// configNames are the variables ConfigFromEnv reads, as it reads them: a
// variable added later is fuzzed without a change here.
func configNames(tb testing.TB) []string {
	var names []string
	ConfigFromEnv(func(name string) string {
		names = append(names, name)
		return ""
	}, "cn-shanghai")
	if len(names) < 30 {
		tb.Fatalf("ConfigFromEnv read only %v", names)
	}
	return names
}

// Values as operators write them, and the ones that once got through.
var configSeeds = map[string][]string{
	"SAG_REGIONS":            {"cn-shanghai", "cn-shanghai, ap-southeast-1", "cn-beijing"},
	"SAG_ENDPOINT":           {"http://127.0.0.1:8081", "https://smartag.cn-shanghai.aliyuncs.com"},
	"VERSION_TYPES":          {"Device", "Device,Dpi", "device"},
	"RELEASE_CHANNEL":        {"release", "beta"},
	"DRY_RUN":                {"true", "false", "1"},
	"KILL_SWITCH":            {"true"},
	"MAINTENANCE_WINDOW":     {"01:00-05:00", "23:00-03:00", "1am-5am", "00:00-23:59"},
	"MAINTENANCE_TZ":         {"Asia/Shanghai", "Europe/Berlin", "UTC", "Local"},
	"UPGRADE_TIME":           {"10m", "1s", "24h", "0"},
	"MIN_RELEASE_AGE":        {"7d", "72h", "365d", "9223372036854775807d"},
	"DEADLINE_MARGIN":        {"30s", "1h", "500ms"},
	"MAX_CONCURRENCY":        {"8", "256", "0"},
	"API_QPS":                {"10", "2.5", "0.01", "1000", "NaN", "+Inf", "1e309", "0x1p-2"},
	"MAX_UPGRADES_PER_RUN":   {"500", "1000000"},
	"HOLD_VERSIONS":          {"2.3.1", "2.3.1,2.3.1.1", "v2"},
	"MNS_ENDPOINT":           {"http://1234567890123456.mns.cn-shanghai-internal.aliyuncs.com"},
	"OUTCOME_TOPIC":          {"sag-outcomes"},
	"WORK_QUEUE":             {"sag-work"},
	"LOG_LEVEL":              {"info", "DEBUG", "disabled", "-1"},
	"LEDGER_ENDPOINT":        {"https://sag.cn-shanghai.ots.aliyuncs.com"},
	"LEDGER_INSTANCE":        {"sag-upgrade"},
	"LEDGER_TABLE":           {"ledger"},
	"LEDGER_LEASE":           {"30m", "2s", "30d", "213505d"},
	"VERIFY_TIMEOUT":         {"20m", "7d"},
	"MAX_ATTEMPTS":           {"3", "100"},
	"PENALTY_COOLDOWN":       {"7d", "213504d", "-1d"},
	"ROLLOUT_CANARY":         {"2", "1000000"},
	"ROLLOUT_WAVES":          {"5%,25%,100%", "100%", "NaN,100%", "0.05,0.25,1", "5%,5%,100%"},
	"ROLLOUT_SOAK":           {"12h", "0s"},
	"ROLLOUT_MIN_SAMPLE":     {"2"},
	"ROLLOUT_MAX_FAILURE":    {"20%", "0.2", "NaN%", "99.9%", "-0%"},
	"FANOUT_THRESHOLD":       {"1000"},
	"BATCH_SIZE":             {"50", "1000", "1001"},
	"MAX_UPGRADES_PER_NIGHT": {"0", "500", "-1", "1e3"},
	"ROLLOUT_APPROVAL":       {"auto", "manual", "Manual"},
	"PUBLISH_OUTCOMES":       {"all", "changes", "none"},
	"QUERY_ENDPOINT":         {"true", "false"},
	"MAINTENANCE_WINDOWS": {"cn-shanghai=01:00-05:00@Asia/Shanghai;eu-central-1=02:00-04:00@Europe/Berlin",
		"cn-shanghai=01:00-05:00", "xx=01:00-05:00@UTC", "cn-shanghai=01:00-01:00@UTC;", "cn-shanghai=1:00-5:00@Asia/Shanghai;cn-shanghai=02:00-03:00@UTC"},
}

// Any variable, any value (two at once): ConfigFromEnv returns an error that
// names a variable it was given, or a configuration whose every number is
// finite and inside its documented range.
func FuzzConfigFromEnv(f *testing.F) {
	names := configNames(f)
	index := func(name string) uint8 {
		for i, n := range names {
			if n == name {
				return uint8(i)
			}
		}
		f.Fatalf("%s is not read by ConfigFromEnv", name)
		return 0
	}
	for name, values := range configSeeds {
		for _, v := range values {
			f.Add(index(name), v, index("LEDGER_LEASE"), "30m")
		}
	}
	f.Add(index("UPGRADE_TIME"), "24h", index("LEDGER_LEASE"), "25h")
	f.Add(index("MAINTENANCE_WINDOW"), "01:00-05:00", index("MAINTENANCE_TZ"), "America/New_York")
	f.Add(index("OUTCOME_TOPIC"), "t", index("MNS_ENDPOINT"), "http://127.0.0.1:9")

	f.Fuzz(func(t *testing.T, i uint8, v string, j uint8, w string) {
		vars := map[string]string{names[int(i)%len(names)]: v, names[int(j)%len(names)]: w}
		c, err := ConfigFromEnv(env(vars), "cn-shanghai")
		if err != nil {
			for name := range vars {
				if strings.Contains(err.Error(), name) {
					return
				}
			}
			t.Fatalf("%q: the error names none of the variables: %v", vars, err)
		}
		if err := c.check(); err != nil {
			t.Fatalf("%q was accepted, out of range:\n%v", vars, err)
		}
		saneNumbers(t, c)
		if _, err := json.Marshal(c); err != nil { // the "run started" line logs it
			t.Fatalf("%q: the configuration does not marshal: %v", vars, err)
		}
	})
}

// saneNumbers checks every number of c without the table's checks: floats
// finite, shares within 0..1, and every int or duration field one that has a
// documented range (so a new numeric variable cannot skip the checks).
func saneNumbers(t *testing.T, c Config) {
	t.Helper()
	ranged := map[any]bool{}
	for _, v := range configVars {
		if v.check != nil && v.field != nil {
			ranged[v.field(&c)] = true
		}
	}
	rv := reflect.ValueOf(&c).Elem()
	for i := range rv.NumField() {
		f, name := rv.Field(i), rv.Type().Field(i).Name
		switch {
		case f.Type() == reflect.TypeFor[time.Duration]():
			if d := time.Duration(f.Int()); !ranged[f.Addr().Interface()] || d < 0 || d > maxDuration {
				t.Fatalf("Config.%s = %v: negative, over a year, or without a documented range", name, d)
			}
		case f.Kind() == reflect.Int:
			if !ranged[f.Addr().Interface()] || f.Int() < 0 {
				t.Fatalf("Config.%s = %d: negative, or without a documented range", name, f.Int())
			}
		case f.Kind() == reflect.Float64:
			if x := f.Float(); math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				t.Fatalf("Config.%s = %v", name, x)
			}
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Float64:
			for k := range f.Len() {
				if x := f.Index(k).Float(); !(x > 0 && x <= 1) {
					t.Fatalf("Config.%s[%d] = %v, not a share", name, k, x)
				}
			}
		}
	}
}
