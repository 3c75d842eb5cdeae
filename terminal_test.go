//go:build linux

package main_test

// -simulate on a terminal: a pseudo-terminal stands in for the operator's,
// so the command finds a terminal as it would.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// openTerminal opens a pseudo-terminal 200 columns wide: tty is the
// terminal a command writes to, and master reads what it wrote.
func openTerminal(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	if tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 200}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	return master, tty
}

// onTerminal runs the command with its stderr on a terminal, and its stdout
// too when stdout is nil, and returns every byte the terminal received. The
// environment has none of the function's variables but env.
func onTerminal(t *testing.T, stdout io.Writer, env []string, args ...string) string {
	t.Helper()
	master, tty := openTerminal(t)
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = stdout, tty
	if stdout == nil {
		cmd.Stdout = tty
	}
	var received bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&received, master) // ends with EIO once no one holds the terminal
		close(copied)
	}()
	err := cmd.Run()
	tty.Close()
	<-copied
	if err != nil {
		t.Fatalf("%v on a terminal: %v\n%s", args, err, screen(received.String()))
	}
	return received.String()
}

var controlSequence = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// screen is what a terminal shows of the bytes it received: of a line
// redrawn after a carriage return its last state, without colours or
// trailing blanks.
func screen(received string) string {
	received = strings.ReplaceAll(received, "\r\n", "\n") // the terminal's own newline translation
	lines := strings.Split(received, "\n")
	for i, line := range lines {
		line = line[strings.LastIndex(line, "\r")+1:]
		lines[i] = strings.TrimRight(controlSequence.ReplaceAllString(line, ""), " \t")
	}
	return strings.Join(lines, "\n")
}

// The README's first command, as the operator runs it: on a terminal, a
// line of progress by region and the summary, no log's info line, and no
// JSON; piped (| jq), the report on stdout; -report FILE, the report there.
func TestSimulateOnATerminal(t *testing.T) {
	t.Run("piped", func(t *testing.T) {
		var stdout bytes.Buffer
		received := onTerminal(t, &stdout, nil, "-simulate")
		var report events.Report
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || report.Counts.Scanned != 198 {
			t.Fatalf("stdout is not the report: %v (%d scanned)", err, report.Counts.Scanned)
		}
		// The demo fleet has 99 of its gateways in each region (one more
		// in each belongs to another account); the line is redrawn as the
		// run goes and shows both regions done before it is cleared.
		shown := screen(received)
		if n := strings.Count(received, "\rdirect run, gateways done: cn-shanghai "); n < 3 {
			t.Errorf("the progress line was drawn %d times:\n%s", n, shown)
		}
		if done := "\rdirect run, gateways done: cn-shanghai 99/99, ap-southeast-1 99/99\x1b[K\r\x1b[K"; !strings.Contains(received, done) {
			t.Errorf("the terminal did not show %q before the summary; it ends:\n%q", done, received[max(0, len(received)-1500):])
		}
		for _, want := range []string{"OUTCOME    COUNT", "up_to_date 40", "The run report is on stdout."} {
			if !strings.Contains(shown, want) {
				t.Errorf("the terminal shows no %q:\n%s", want, shown)
			}
		}
		if strings.Contains(shown, " INF ") || strings.Contains(shown, "→ 2.3.1: requested") {
			t.Errorf("the terminal shows the log's info lines:\n%s", shown)
		}
	})
	t.Run("stdout a terminal too", func(t *testing.T) {
		shown := screen(onTerminal(t, nil, nil, "-simulate"))
		if strings.Contains(shown, `"runId"`) || strings.Contains(shown, "{") {
			t.Errorf("the report's JSON is on the terminal:\n%s", shown)
		}
		if !strings.Contains(shown, "The run report is not printed on a terminal: pipe stdout (| jq .) or give -report FILE.") {
			t.Errorf("the terminal does not say where the report is:\n%s", shown)
		}
	})
	t.Run("-report FILE", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "report.json")
		shown := screen(onTerminal(t, nil, nil, "-simulate", "-nights", "1", "-report", file))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var reports []events.Report
		if err := json.Unmarshal(b, &reports); err != nil || len(reports) < 2 || reports[0].Trigger != events.TriggerTimer {
			t.Fatalf("%s holds %d reports, %v", file, len(reports), err)
		}
		if want := "The reports of every run (a JSON array) are in " + file + "."; !strings.Contains(shown, want) || strings.Contains(shown, "{") {
			t.Errorf("want %q and no JSON on the terminal:\n%s", want, shown)
		}
	})
	t.Run("LOG_LEVEL set", func(t *testing.T) {
		shown := screen(onTerminal(t, io.Discard, []string{"LOG_LEVEL=info"}, "-simulate"))
		if !strings.Contains(shown, "→ 2.3.1: requested") {
			t.Errorf("LOG_LEVEL=info on a terminal shows no decision line:\n%s", shown)
		}
	})
}
