// Command sagctl is the operator's tool for sag-upgrade: it shows how the
// fleet's upgrades stand and steers them by calling the deployed function
// through Function Compute 3.0's InvokeFunction, with the request and report
// types the function itself uses (events, handler/upgrade).
//
//	sagctl status                                 rollouts, kill switch, last runs, fleet versions
//	sagctl history sag-0ovhf732a9j                one gateway's ledger records and audit trail
//	sagctl plan                                   what tonight's sweep would do, and why
//	sagctl run sag-0ovhf732a9j sag-1xvz9         upgrade named gateways now
//	sagctl stop | resume                          the fleet-wide kill switch
//	sagctl pause | unpause | reset --target 2.3.1 one rollout
//	sagctl approve --target 2.3.1 --model sag-1000 --wave 2
//
// Queries go to the look-only function (sag-upgrade-query), everything else
// to the operators' function (sag-upgrade-control); RAM decides who may
// invoke which. Each subcommand's file holds its flags, its request and its
// table; client.go calls the function.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sag-upgrade/sag-upgrade/events"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1 // the function rejected the request, failed, or reported failures
	exitUsage       = 2 // the command line is wrong
	exitUnreachable = 3 // the function could not be called
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// command is one subcommand.
type command struct {
	name     string
	args     string // the positional arguments, for the usage line
	summary  string
	about    string // what it does, for --help
	examples []string
	query    bool // served by the query function; otherwise by the control function
	// flags adds the subcommand's own flags and returns what builds its
	// request from the positional arguments once they are parsed.
	flags func(fs *flag.FlagSet) func(args []string) (events.Request, error)
	// show prints the report as a table; it returns a problem the report
	// shows (exit 1), or nil.
	show func(w io.Writer, r events.Report) error
}

// commands in the order --help lists them.
var commands = []*command{statusCmd, historyCmd, planCmd, runCmd, stopCmd, resumeCmd, pauseCmd, unpauseCmd, approveCmd, resetCmd}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const exitCodes = `Exit status:
  0  the function answered and reported no failure
  1  the function rejected the request, could not carry it out, or reported
     failed or rejected gateways
  2  the command line is wrong (nothing was sent)
  3  the function could not be called: no credentials, account or region,
     the network, or FC refused the call (permission, no such function)
`

// usage is sagctl's own help.
func usage(w io.Writer) {
	fmt.Fprint(w, `sagctl shows and steers sag-upgrade's rollouts by calling the deployed
function through Function Compute 3.0's InvokeFunction.

Usage: sagctl <command> [flags] [arguments]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Queries (status, history, plan) go to the look-only function, the others to
the operators' function. "sagctl <command> --help" shows a command's flags
and examples.

`+connectionHelp+"\n"+exitCodes)
}

// run is sagctl: it returns the exit status. getenv is the environment.
func run(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && lookup(args[1]) != nil {
			lookup(args[1]).usage(stdout)
			return exitOK
		}
		usage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "sagctl: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr, getenv)
}

func (c *command) newFlagSet() (*flag.FlagSet, *options, func([]string) (events.Request, error)) {
	fs := flag.NewFlagSet("sagctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &options{}
	o.register(fs)
	build := c.flags(fs)
	return fs, o, build
}

// usage prints the subcommand's help: its own flags apart from those of
// every command.
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("sagctl "+c.name+" [flags] "+c.args), c.about)
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	own := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(own)
	n := 0
	own.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		own.SetOutput(w)
		own.PrintDefaults()
	}
	common := flag.NewFlagSet(c.name, flag.ContinueOnError)
	(&options{}).register(common)
	fmt.Fprintln(w, "\nFlags of every command (\"sagctl --help\" says where the function is and who calls it):")
	common.SetOutput(w)
	common.PrintDefaults()
	fmt.Fprint(w, "\n"+exitCodes)
}

// run parses the subcommand's command line, sends its request and shows
// the answer.
func (c *command) run(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	fs, o, build := c.newFlagSet()
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", c.name, err)
		fmt.Fprintf(stderr, "Run \"sagctl %s --help\" for its flags and examples.\n", c.name)
		return exitUsage
	}
	req, err := build(positional)
	if err == nil {
		req, err = o.stamp(req, getenv)
	}
	if err == nil {
		// The function's own rules: a request it would reject for its
		// shape is a usage error here, and nothing is sent.
		err = req.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "sagctl %s: %v\n", c.name, err)
		fmt.Fprintf(stderr, "Run \"sagctl %s --help\" for its flags and examples.\n", c.name)
		return exitUsage
	}
	return o.call(c, req, stdout, stderr, getenv)
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("history sag-1 --json"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// list is a comma-separated flag value.
func list(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
