package simulation

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// On a terminal, the progress counts each gateway once whatever its version
// types, leaves out a region where the run has nothing, shows the lines at
// the level asked above it (timed in Shanghai, as the rest of the output),
// and is gone when the run finishes.
func TestProgressOnATerminal(t *testing.T) {
	var out bytes.Buffer
	d := newDisplay(&out, true, 0)
	d.show = zerolog.WarnLevel
	d.console.NoColor = true // to read it here
	decision := func(id, vt string) string {
		return `{"level":"info","runId":"run-1","smartAGId":"` + id + `","regionId":"cn-shanghai","versionType":"` + vt + `","outcome":"verified","message":"decision"}`
	}
	for _, line := range []string{
		`{"level":"info","runId":"run-1","trigger":"mns-queue","message":"run started"}`,
		`{"level":"info","runId":"run-1","regions":["cn-shanghai","ap-southeast-1"],"message":"request"}`,
		`{"level":"debug","runId":"run-1","regionId":"cn-shanghai","gateways":2,"message":"listed region"}`,
		`{"level":"debug","runId":"run-1","regionId":"ap-southeast-1","gateways":0,"message":"listed region"}`,
		decision("sag-a", "Device"),
		decision("sag-a", "Dpi"),
		`{"level":"warn","runId":"run-1","time":"2026-11-22T18:00:00.000Z","message":"outcome topic failing"}`,
		decision("sag-b", "Device"),
		decision("sag-b", "Dpi"),
		`{"level":"info","runId":"run-1","message":"run finished"}`,
	} {
		if _, err := d.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	got := out.String()
	for _, want := range []string{
		"\rmns-queue run, gateways done: cn-shanghai 0/?, ap-southeast-1 0/?\x1b[K",
		"\rmns-queue run, gateways done: cn-shanghai 0/2\x1b[K",
		"\r\x1b[K02:00:00.000 WRN outcome topic failing\n\rmns-queue run, gateways done: cn-shanghai 1/2\x1b[K", // in Shanghai
		"\rmns-queue run, gateways done: cn-shanghai 2/2\x1b[K\r\x1b[K",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r\x1b[K") || strings.Contains(got, "3/2") || strings.Contains(got, "4/2") || strings.Contains(got, "INF") {
		t.Errorf("want each gateway counted once, no info line, the line cleared at the end:\n%q", got)
	}
}
