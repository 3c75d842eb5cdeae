package cloudsim_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcapi"
	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/fcsim"
)

// echo is a function that answers its payload.
type echo struct{}

func (echo) Invoke(_ context.Context, payload []byte, _ fcsim.InvokeOptions) (fcsim.Result, error) {
	return fcsim.Result{Body: append([]byte("echo:"), payload...)}, nil
}

// The cloud's one address also serves FC's InvokeFunction and STS's
// GetCallerIdentity to their official SDKs, each signature checked against
// the cloud's keyring.
func TestOneAddressServesFCAndSTS(t *testing.T) {
	c := start(t)
	if err := c.FC.Register(fcapi.Function{Name: "sag-upgrade-query", Target: echo{}}); err != nil {
		t.Fatal(err)
	}
	key := c.Keyring.AddUserKey(c.Fleet.AccountID, "oncall")
	host := strings.TrimPrefix(c.URL, "http://")

	client, err := fc.NewClient(&openapiutil.Config{AccessKeyId: tea.String(key.AccessKeyID), AccessKeySecret: tea.String(key.AccessKeySecret),
		Endpoint: tea.String(host), Protocol: tea.String("http"), ReadTimeout: tea.Int(10_000)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.InvokeFunction(tea.String("sag-upgrade-query"), &fc.InvokeFunctionRequest{Body: bytes.NewReader([]byte(`{"kind":"status"}`))})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `echo:{"kind":"status"}` {
		t.Fatalf("InvokeFunction answered %q", body)
	}

	stsClient, err := sts.NewClientWithOptions("cn-shanghai", sdk.NewConfig(), credentials.NewStaticAKCredentialsProvider(key.AccessKeyID, key.AccessKeySecret))
	if err != nil {
		t.Fatal(err)
	}
	stsClient.Domain = host
	req := sts.CreateGetCallerIdentityRequest()
	req.Scheme = "http"
	id, err := stsClient.GetCallerIdentity(req)
	if err != nil {
		t.Fatal(err)
	}
	if id.AccountId != c.Fleet.AccountID || id.Arn != "acs:ram::"+c.Fleet.AccountID+":user/oncall" {
		t.Fatalf("GetCallerIdentity: %+v", id)
	}
	// Neither reached SAG.
	if n := len(c.SAG.Calls()); n != 0 {
		t.Fatalf("%d SAG calls", n)
	}
	if n := len(c.STS.Calls()); n != 1 {
		t.Fatalf("%d STS calls", n)
	}
	if calls := c.FC.Calls(); len(calls) != 1 || calls[0].Status != 200 || calls[0].AccessKeyID != key.AccessKeyID {
		t.Fatalf("FC calls %+v", calls)
	}
}
