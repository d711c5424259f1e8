package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/termtext"
)

func init() {
	register(command{
		name:    "status",
		summary: "show tenants: state, pause, backlog, throughput, 429s, last error",
		run:     runStatus,
	})
}

const statusHelp = `Usage: orgdispatch status [--json] [tenant]

Without a tenant, prints a table of every tenant: state, pause (time left),
backlog, jobs in flight, completions per second, 429s and the last error.
With a tenant, prints all of that tenant's figures and why it is paused.
` + apiEnvHelp + `
Flags:
`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusHelp, stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: at most one tenant, got %q", errUsage, pos)
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	now := time.Now()
	if len(pos) == 1 {
		ts, err := c.Tenant(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, ts)
		}
		printTenant(stdout, ts, now)
		return nil
	}
	list, err := c.Tenants(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, list)
	}
	printTenants(stdout, list, now)
	return nil
}

// esc escapes a string from a remote source (the API, NATS, a platform)
// for the terminal; see termtext.Escape.
func esc(s string) string { return termtext.Escape(s) }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pauseLeft describes a pause: "until 15:04:05Z (1m30s left)", or "-".
func pauseLeft(ts dispatcher.TenantStatus, now time.Time) string {
	if !ts.Paused {
		return "-"
	}
	left := max(ts.PausedUntil.Sub(now).Round(time.Second), 0)
	return fmt.Sprintf("until %s (%s left)", ts.PausedUntil.UTC().Format("15:04:05Z"), left)
}

// clip shortens s, text from a remote source, to n runes for a table cell,
// with white space collapsed and control characters escaped.
func clip(s string, n int) string {
	s = termtext.Escape(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func printTenants(w io.Writer, list []dispatcher.TenantStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSTATE\tPAUSED\tBACKLOG\tIN FLIGHT\tDONE/S\t429S\tLAST ERROR")
	var paused int
	var backlog uint64
	for _, ts := range list {
		lastErr := "-"
		if ts.LastError != "" {
			lastErr = clip(ts.LastError, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%s\t%.1f\t%d\t%s\n", esc(ts.ID), esc(ts.State), pauseLeft(ts, now),
			ts.Backlog, ts.InFlight, concurrencyOf(ts), ts.DonePerSec, ts.RateLimited, lastErr)
		if ts.Paused {
			paused++
		}
		backlog += ts.Backlog
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d tenants, %d paused, %d jobs waiting\n", len(list), paused, backlog)
}

func printTenant(w io.Writer, ts dispatcher.TenantStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("tenant", "%s", esc(ts.ID))
	row("state", "%s", esc(ts.State))
	if ts.Paused {
		row("paused", "%s", pauseLeft(ts, now))
		row("pause reason", "%s", esc(ts.PauseReason))
		row("paused by", "%s", esc(ts.PausedBy))
	} else {
		row("paused", "no")
	}
	row("backlog", "%d", ts.Backlog)
	row("in flight", "%d of %s", ts.InFlight, concurrencyOf(ts))
	row("rate limit", "%.2f/s", ts.RatePerSec)
	row("done", "%.2f/s", ts.DonePerSec)
	row("succeeded", "%d", ts.Succeeded)
	row("retried", "%d", ts.Retried)
	row("dead", "%d", ts.Dead)
	row("429s", "%d", ts.RateLimited)
	if ts.LastError != "" {
		row("last error", "%s (%s)", esc(ts.LastError), ts.LastErrorAt.UTC().Format(time.RFC3339))
	} else {
		row("last error", "-")
	}
	row("replicas", "%d", ts.Replicas)
	_ = tw.Flush()
}

// concurrencyOf is how many jobs the live replicas may run at once for the
// tenant (their lanes' concurrency summed), or "-" while no replica runs it.
func concurrencyOf(ts dispatcher.TenantStatus) string {
	if ts.Concurrency == 0 {
		return "-"
	}
	return strconv.Itoa(ts.Concurrency)
}
