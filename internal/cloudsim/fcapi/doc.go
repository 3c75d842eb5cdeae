// Package fcapi emulates Function Compute 3.0's OpenAPI operation
// InvokeFunction (2023-03-30), as the official Go SDK
// github.com/alibabacloud-go/fc-20230330/v4 calls it, so that a caller built
// on that SDK (cmd/sagctl) runs end to end against the simulated cloud:
// SDK → fcapi → fcsim → the real function binary.
//
// What it checks, as the service does (/work/shared/reference/fc3-openapi.md):
// the ACS3-HMAC-SHA256 ("V3") signature rebuilt from the listed signed
// headers, x-acs-content-sha256 against the body, x-acs-date within 15
// minutes, a nonce used once, the access key and STS token in the cloud's
// auth.Keyring, and the account and region in a Host of the form
// <account-id>.<region>.fc.aliyuncs.com (a loopback endpoint names neither
// and passes). What it answers: the function's response body with
// X-Fc-Request-Id; a function error as 200 with X-Fc-Error-Type
// (UnhandledInvocationError) and the runtime's error JSON; X-Fc-Log-Result
// (the last 4 KB of the log, base64) for x-fc-log-type Tail; Async as 202
// without a body; X-Fc-Code-Checksum when the function has one; API errors as
// {"Code","Message","RequestId"} with FC's documented codes and statuses.
//
// Use:
//
//	srv := fcapi.New(fcapi.Options{Keyring: keys, AccountID: account, Region: "cn-shanghai"})
//	srv.Register(fcapi.Function{Name: "sag-upgrade", Target: rt})                                  // rt: *fcsim.Runtime
//	srv.Register(fcapi.Function{Name: "sag-upgrade", Qualifier: "prod", VersionID: "3", Target: rt3})
//	l, _ := srv.Listen("127.0.0.1:0")
//	defer l.Close()
//	client, _ := fc.NewClient(&openapiutil.Config{AccessKeyId: …, AccessKeySecret: …, SecurityToken: …,
//		Endpoint: tea.String(l.Endpoint), Protocol: tea.String("http")})
//
// To send the production Host instead (and so exercise the account check),
// set Endpoint to "<account-id>.<region>.fc.aliyuncs.com" and HttpProxy to
// l.URL: the SDK then sends the request through the emulator as a proxy.
//
// Unverified (reference §5; each place is marked "unverified" in the code):
// the codes and statuses for a stale date, a reused nonce, a missing, expired
// or mismatched STS token, an unsigned x-acs-* header, a body that does not
// match its hash, a foreign account, an unknown alias or version, and a
// runtime that cannot run at all; the status of a timed-out or crashed
// function (200 like any function error); that X-Fc-Log-Result is base64;
// the Content-Type of a function's response; the payload limits (FC 2.0's 32
// MB sync, 128 KB async); the rules for qualifier and async task id syntax;
// the order of the checks. Not emulated: other FC operations, HTTP triggers,
// x-fc-async-task-id semantics beyond its syntax (it is recorded, not
// deduplicated), throttling (429), provisioned or on-demand concurrency.
package fcapi
