package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

func init() {
	register(command{
		name:    "pause",
		summary: "pause a tenant cluster-wide for a while",
		run:     runPause,
	})
	register(command{
		name:    "resume",
		summary: "end a tenant's pause now",
		run:     runResume,
	})
}

const pauseHelp = `Usage: orgdispatch pause <tenant> --for DURATION [--reason TEXT]

Pauses the tenant on every worker replica at once (its JetStream consumer is
paused): queued jobs wait, jobs already delivered are handed back. The pause
ends by itself after DURATION (at most 24h), or with 'orgdispatch resume'.
` + apiEnvHelp + `
Flags:
`

const resumeHelp = `Usage: orgdispatch resume <tenant> [--reason TEXT]

Ends the tenant's pause at once, whoever set it (an operator, or a worker
after a 429). The reason goes to the audit trail.
` + apiEnvHelp + `
Flags:
`

func runPause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pause", pauseHelp, stderr)
	d := fs.Duration("for", 0, "how long to pause, e.g. 90s, 5m, 1h (required)")
	reason := fs.String("reason", "", "why, shown by status and the dashboard")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one tenant, got %q", errUsage, pos)
	}
	if *d <= 0 {
		return fmt.Errorf("%w: --for DURATION is required and must be positive", errUsage)
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	ts, err := c.Pause(ctx, pos[0], *d, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "paused %s until %s (%s): %s\n", esc(ts.ID), ts.PausedUntil.UTC().Format(time.RFC3339), *d, esc(ts.PauseReason))
	return nil
}

func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resume", resumeHelp, stderr)
	reason := fs.String("reason", "", "why, for the audit trail")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one tenant, got %q", errUsage, pos)
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	ts, err := c.ResumeWithReason(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resumed %s (%s, %d jobs waiting)\n", esc(ts.ID), esc(ts.State), ts.Backlog)
	return nil
}
