// Command observability creates or updates the observability kit
// (deploy/observability: the logstore's index and retention, saved searches,
// alert rules, a dashboard) in the function's SLS project, with the
// credentials of the environment:
//
//	ALIBABA_CLOUD_ACCESS_KEY_ID=… ALIBABA_CLOUD_ACCESS_KEY_SECRET=… \
//	go run ./scripts/observability -region cn-shanghai -project sag-upgrade-logs -logstore sag-upgrade -action-policy sag-upgrade-oncall
//
// It can run again after any change to the kit. deploy/README.md says what to
// create first (the project, the logstore, the alert action policy).
package main

import (
	"flag"
	"fmt"
	"os"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sls "github.com/alibabacloud-go/sls-20201230/v6/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/sag-upgrade/sag-upgrade/deploy/observability"
)

// flags defines the command's flags; their defaults are s.yaml's names
// (main_test.go checks).
func flags(fs *flag.FlagSet) (t *observability.Target, endpoint *string) {
	t = &observability.Target{}
	fs.StringVar(&t.Region, "region", "cn-shanghai", "the function's region (s.yaml vars.region)")
	fs.StringVar(&t.Project, "project", "sag-upgrade-logs", "the log project (s.yaml vars.logProject)")
	fs.StringVar(&t.Logstore, "logstore", "sag-upgrade", "the logstore (s.yaml vars.logStore)")
	fs.StringVar(&t.ActionPolicy, "action-policy", "sag-upgrade-oncall", "the SLS alert action policy that notifies people")
	endpoint = fs.String("endpoint", "", "SLS endpoint (default <region>.log.aliyuncs.com)")
	return t, endpoint
}

func main() {
	t, endpoint := flags(flag.CommandLine)
	flag.Parse()
	if *endpoint == "" {
		*endpoint = t.Region + ".log.aliyuncs.com"
	}
	cfg := &openapi.Config{
		AccessKeyId:     tea.String(os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID")),
		AccessKeySecret: tea.String(os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")),
		Endpoint:        endpoint,
		RegionId:        tea.String(t.Region),
	}
	if token := os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"); token != "" {
		cfg.SecurityToken = tea.String(token)
	}
	if *cfg.AccessKeyId == "" || *cfg.AccessKeySecret == "" {
		fmt.Fprintln(os.Stderr, "observability: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET")
		os.Exit(2)
	}
	c, err := sls.NewClient(cfg)
	if err == nil {
		var kit observability.Kit
		if kit, err = observability.Load(); err == nil {
			var done []string
			done, err = observability.Apply(c, kit, *t)
			for _, d := range done {
				fmt.Println(d)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}
