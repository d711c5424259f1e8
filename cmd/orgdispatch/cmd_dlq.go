package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/internal/termtext"
)

func init() {
	register(command{
		name:    "dlq",
		summary: "list, replay or delete dead letters",
		run:     runDLQ,
	})
}

const dlqHelp = `Usage:
  orgdispatch dlq list [--tenant T] [--limit N] [--after SEQ] [--json]
  orgdispatch dlq replay [--reason TEXT] <seq>...
  orgdispatch dlq delete [--reason TEXT] <seq>...

list prints dead letters (oldest first) with why they died; --after pages on
from a sequence. replay publishes each dead letter's original job again (under
a new message id, so it is not taken for a duplicate) and then deletes it;
delete removes it for good. replay and delete exit non-zero if any sequence
failed; --reason goes to the audit trail.
` + apiEnvHelp

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqHelp)
		return fmt.Errorf("%w: want a subcommand: list, replay or delete", errUsage)
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, args[1:], stdout, stderr)
	case "replay", "delete":
		return runDLQEach(ctx, args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, dlqHelp)
		return nil
	}
	fmt.Fprint(stderr, dlqHelp)
	return fmt.Errorf("%w: unknown dlq subcommand %q", errUsage, args[0])
}

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq list", dlqHelp+"\nFlags of list:\n", stderr)
	tenant := fs.String("tenant", "", "only this tenant's dead letters")
	limit := fs.Int("limit", 50, "at most this many (1-500)")
	after := fs.Uint64("after", 0, "start after this sequence")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	page, err := c.DeadLetters(ctx, *tenant, *limit, *after)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTENANT\tOP\tJOB\tCLASS\tHTTP\tATTEMPTS\tDEAD AT\tERROR")
	for _, d := range page.DeadLetters {
		status := "-"
		if d.HTTPStatus != 0 {
			status = strconv.Itoa(d.HTTPStatus)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, esc(d.Tenant), esc(d.Op), esc(d.JobID), esc(d.ErrorClass),
			status, d.Attempts, d.DeadAt.UTC().Format(time.RFC3339), clip(d.Error, 80))
	}
	_ = tw.Flush()
	if len(page.DeadLetters) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
	} else if len(page.DeadLetters) == *limit {
		fmt.Fprintf(stdout, "more may follow: orgdispatch dlq list --after %d\n", page.NextAfter)
	}
	return nil
}

func runDLQEach(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq "+verb, dlqHelp, stderr)
	reason := fs.String("reason", "", "why, for the audit trail")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: dlq %s needs at least one sequence", errUsage, verb)
	}
	seqs := make([]uint64, len(pos))
	for i, p := range pos {
		if seqs[i], err = strconv.ParseUint(p, 10, 64); err != nil || seqs[i] == 0 {
			return fmt.Errorf("%w: %q is not a dead-letter sequence (a positive integer)", errUsage, p)
		}
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	var failed int
	for _, seq := range seqs {
		if err := dlqOne(ctx, c, verb, seq, *reason, stdout); err != nil {
			fmt.Fprintf(stdout, "failed %d: %s\n", seq, termtext.Lines(err.Error()))
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d dead letters not %s", failed, len(seqs), map[string]string{"replay": "replayed", "delete": "deleted"}[verb])
	}
	return nil
}

func dlqOne(ctx context.Context, c *api.Client, verb string, seq uint64, reason string, stdout io.Writer) error {
	if verb == "delete" {
		if err := c.DeleteDeadLetter(ctx, seq, reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d\n", seq)
		return nil
	}
	res, err := c.Replay(ctx, seq, reason)
	if err != nil {
		return err
	}
	dup := ""
	if res.Duplicate {
		dup = " (already replayed before)"
	}
	fmt.Fprintf(stdout, "replayed %d as %s/%s, jobs seq %d%s\n", seq, esc(res.Tenant), esc(res.JobID), res.JobSeq, dup)
	return nil
}
