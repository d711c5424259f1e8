package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func init() {
	register(command{
		name:    "audit",
		summary: "list the audit trail: who paused, resumed, replayed, deleted, reloaded, was refused",
		run:     runAudit,
	})
}

const auditHelp = `Usage: orgdispatch audit [--tenant T] [--limit N] [--after SEQ] [--json]

Prints the audit trail: every pause, resume, dead-letter replay and delete
(who: the API token's name), every tenant added, changed or removed by a
tenants-file reload (who: the replica), and refused API requests. Without
--after, the latest records, newest first; with --after SEQ, those after it,
oldest first. Records are kept for ORGDISPATCH_AUDIT_MAX_AGE, at most
ORGDISPATCH_AUDIT_MAX_MSGS of them.
` + apiEnvHelp + `
Flags:
`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", auditHelp, stderr)
	tenant := fs.String("tenant", "", "only this tenant's records")
	limit := fs.Int("limit", 50, "at most this many (1-500)")
	after := fs.Uint64("after", 0, "records after this sequence, oldest first")
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
	page, err := c.Audit(ctx, *tenant, *limit, *after)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, page)
	}
	printAudit(stdout, page.Records)
	if *after > 0 && len(page.Records) == *limit {
		fmt.Fprintf(stdout, "more may follow: orgdispatch audit --after %d\n", page.NextAfter)
	}
	return nil
}

// printAudit prints records as a table; every field from the server is
// escaped for the terminal.
func printAudit(w io.Writer, recs []dispatcher.AuditRecord) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no audit records")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tWHO\tACTION\tTENANT\tWHY\tDETAIL")
	for _, r := range recs {
		tenant, why := r.Tenant, r.Reason
		if tenant == "" {
			tenant = "-"
		}
		if why == "" {
			why = "-"
		}
		var detail []string
		for _, k := range slices.Sorted(maps.Keys(r.Detail)) {
			detail = append(detail, k+"="+r.Detail[k])
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), esc(r.Actor), esc(r.Action),
			esc(tenant), clip(why, 60), clip(strings.Join(detail, " "), 100))
	}
	_ = tw.Flush()
}
