// Package handler is the function: it turns one invocation (a decoded trigger
// payload) into a run that lists the fleet, chooses each gateway's target
// version by policy, decides eligibility, requests the eligible upgrades under
// the rollout limits, and reports every outcome as an event, a log line and an
// entry of the run report.
//
// It talks to the cloud only through the small interfaces of ports.go; the
// adapters in internal/smartag and internal/mns implement them with the
// official SDKs, and main wires them together.
package handler
