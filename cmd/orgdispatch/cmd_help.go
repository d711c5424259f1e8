package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/orgdispatch/orgdispatch/internal/config"
)

// help answers `orgdispatch help <topic>`: "env" prints the environment
// variable reference; a command name prints that command's help.
func help(topic string, stdout, stderr io.Writer) int {
	if topic == "env" {
		if err := config.Usage(stdout); err != nil {
			fmt.Fprintf(stderr, "orgdispatch help: %v\n", err)
			return 1
		}
		return 0
	}
	c, ok := commands[topic]
	if !ok {
		fmt.Fprintf(stderr, "orgdispatch help: no help topic %q (try 'env' or a command name)\n", topic)
		return 2
	}
	// A command's -h prints its usage to stderr; here it was asked for. The
	// context is already cancelled, so a command that ignored -h would stop
	// at once instead of running.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.run(ctx, []string{"-h"}, stdout, stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "orgdispatch help: %v\n", err)
		return 1
	}
	return 0
}

// usageErr turns a flag parsing error into errUsage (exit status 2); -h
// stays flag.ErrHelp (exit status 0).
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}
