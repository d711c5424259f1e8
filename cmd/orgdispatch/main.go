// Command orgdispatch runs the orgdispatch job dispatcher and its tools. It only
// wires components together; every decision lives in the packages.
//
// Each subcommand lives in its own file (cmd_<name>.go) and registers itself
// with register from an init function.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/orgdispatch/orgdispatch/internal/termtext"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// run parses args (without the command name) and runs until done or ctx is
	// cancelled (SIGINT, SIGTERM).
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("orgdispatch: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage reports bad command-line input; main exits with status 2.
var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintln(w, "orgdispatch: a per-org isolated job dispatcher for the Genesys Cloud Platform API")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: orgdispatch <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'orgdispatch <command> -h' for a command's flags,")
	fmt.Fprintln(w, "'orgdispatch help env' for the ORGDISPATCH_* environment variables.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[0] == "help" {
		return help(args[1], stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "orgdispatch: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		// An error may quote a remote answer (the API's, a platform's).
		fmt.Fprintf(stderr, "orgdispatch %s: %s\n", c.name, termtext.Lines(err.Error()))
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}
