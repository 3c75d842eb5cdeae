package handler

import (
	"strings"
	"testing"
	"time"

	"github.com/sag-upgrade/sag-upgrade/events"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(nil), "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions) != 1 || c.Regions[0] != "cn-shanghai" || len(c.VersionTypes) != 1 || c.VersionTypes[0] != events.VersionDevice ||
		c.Channel != "release" || c.DryRun || !c.Window.Always() || c.MaxConcurrency != DefaultMaxConcurrency ||
		c.APIQPS != DefaultAPIQPS || c.MaxUpgradesPerRun != DefaultMaxUpgradesPerRun || c.UpgradeTime != DefaultUpgradeTime {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{
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
		c.OutcomeTopic != "sag-outcomes" || c.LogLevel.String() != "debug" {
		t.Fatalf("config: %+v", c)
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
