package main

import (
	"flag"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// The defaults are the names s.yaml deploys the function's logs under.
func TestDefaultsAreSYamlNames(t *testing.T) {
	b, err := os.ReadFile("../../s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Vars map[string]string `yaml:"vars"`
	}
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	tg, _ := flags(flag.NewFlagSet("observability", flag.ContinueOnError))
	for flagName, c := range map[string][2]string{
		"region": {tg.Region, s.Vars["region"]}, "project": {tg.Project, s.Vars["logProject"]}, "logstore": {tg.Logstore, s.Vars["logStore"]},
	} {
		if c[0] == "" || c[0] != c[1] {
			t.Errorf("-%s defaults to %q, s.yaml says %q", flagName, c[0], c[1])
		}
	}
}
