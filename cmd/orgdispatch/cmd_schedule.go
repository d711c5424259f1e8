package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	// The IANA zones of cron schedules, whatever the image holds (the
	// embedded nats-server reads them too).
	_ "time/tzdata"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func init() {
	register(command{
		name:    "schedule",
		summary: "add, list, show or cancel a tenant's delayed and recurring jobs",
		run:     runSchedule,
	})
}

const scheduleHelp = `Usage:
  orgdispatch schedule add <tenant> <name> (--at TIME | --in DURATION | --cron EXPR [--tz ZONE])
                           (--op OP --id ID [--params JSON] [--priority CLASS] | --job JSON)
  orgdispatch schedule list <tenant> [--json]
  orgdispatch schedule show <tenant> <name> [--json]
  orgdispatch schedule cancel [--reason TEXT] <tenant> <name>

add stores a schedule that runs a job once at a time (--at, RFC 3339, e.g.
2026-12-07T09:00:00-06:00; or --in, from now, e.g. 90m) or again and again
on a cron expression (--cron, 6 fields: second minute hour day-of-month month
day-of-week, e.g. "0 0 9 * * 1-5" for 09:00 on weekdays; or @daily, @hourly,
...) read in an IANA time zone (--tz, e.g. America/Chicago; default UTC).
Each occurrence of a cron schedule runs as job <id>.<fire time, UTC>, e.g.
start.20261207T150000Z. A name is 1-64 of A-Z a-z 0-9 _ - and is unique per
tenant: cancel a schedule to reuse its name.

list and show print the schedules with their next fire times; cancel removes
one, so that it never fires again (a job it already fired stays queued).
` + apiEnvHelp

func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, scheduleHelp)
		return fmt.Errorf("%w: want a subcommand: add, list, show or cancel", errUsage)
	}
	switch args[0] {
	case "add":
		return runScheduleAdd(ctx, args[1:], stdout, stderr)
	case "list", "show":
		return runScheduleShow(ctx, args[0], args[1:], stdout, stderr)
	case "cancel":
		return runScheduleCancel(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, scheduleHelp)
		return nil
	}
	fmt.Fprint(stderr, scheduleHelp)
	return fmt.Errorf("%w: unknown schedule subcommand %q", errUsage, args[0])
}

func runScheduleAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule add", scheduleHelp+"\nFlags of add:\n", stderr)
	at := fs.String("at", "", "run once at this RFC 3339 time")
	in := fs.Duration("in", 0, "run once this long from now")
	cron := fs.String("cron", "", "run on this 6-field cron expression")
	tz := fs.String("tz", "", "the cron expression's IANA time zone (default UTC)")
	op := fs.String("op", "", "the job's operation, e.g. campaign.start")
	id := fs.String("id", "", "the job's id")
	params := fs.String("params", "", "the job's params, a JSON object")
	priority := fs.String("priority", "", "the job's class: urgent, normal or bulk (default: the op's)")
	jobJSON := fs.String("job", "", "the whole job envelope as JSON (instead of --op, --id, --params, --priority)")
	asJSON := fs.Bool("json", false, "print the schedule as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: schedule add needs <tenant> <name>", errUsage)
	}
	spec := dispatcher.ScheduleSpec{Name: pos[1], Cron: *cron, TimeZone: *tz}
	switch n := btoi(*at != "") + btoi(*in != 0) + btoi(*cron != ""); {
	case n != 1:
		return fmt.Errorf("%w: want one of --at, --in and --cron", errUsage)
	case *at != "":
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("%w: --at %q: want an RFC 3339 time such as 2026-12-07T09:00:00-06:00", errUsage, *at)
		}
		spec.RunAt = &t
	case *in != 0:
		if *in <= 0 {
			return fmt.Errorf("%w: --in %s: want a positive duration", errUsage, *in)
		}
		t := time.Now().Add(*in)
		spec.RunAt = &t
	}
	if *tz != "" && *cron == "" {
		return fmt.Errorf("%w: --tz is for --cron (an --at time names its offset)", errUsage)
	}
	if *jobJSON != "" {
		if *op != "" || *id != "" || *params != "" || *priority != "" {
			return fmt.Errorf("%w: --job or --op/--id/--params/--priority, not both", errUsage)
		}
		if spec.Job, err = dispatcher.DecodeJob([]byte(*jobJSON)); err != nil {
			return fmt.Errorf("%w: --job: %v", errUsage, err)
		}
	} else {
		if *op == "" || *id == "" {
			return fmt.Errorf("%w: want --op and --id (or --job)", errUsage)
		}
		spec.Job = dispatcher.Job{ID: *id, Op: *op, Priority: *priority}
		if *params != "" {
			if !json.Valid([]byte(*params)) {
				return fmt.Errorf("%w: --params is not JSON", errUsage)
			}
			spec.Job.Params = json.RawMessage(*params)
		}
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	sched, err := c.AddSchedule(ctx, pos[0], spec)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, sched)
	}
	fmt.Fprintf(stdout, "added %s/%s, next %s\n", esc(sched.Tenant), esc(sched.Name), nextTimes(sched, 1))
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func runScheduleShow(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule "+verb, scheduleHelp, stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	want := map[string]int{"list": 1, "show": 2}[verb]
	if len(pos) != want {
		return fmt.Errorf("%w: schedule %s needs %s", errUsage, verb, map[string]string{"list": "<tenant>", "show": "<tenant> <name>"}[verb])
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	if verb == "show" {
		sched, err := c.Schedule(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, sched)
		}
		printSchedule(stdout, sched)
		return nil
	}
	list, err := c.Schedules(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, api.SchedulesResponse{Schedules: list, Now: time.Now().UTC()})
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "tenant %s has no schedules\n", esc(pos[0]))
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWHEN\tZONE\tNEXT\tJOB\tOP")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", esc(s.Name), esc(when(s)), esc(zoneOf(s)), nextTimes(s, 1), esc(s.Job.ID), esc(s.Job.Op))
	}
	return tw.Flush()
}

func printSchedule(w io.Writer, s dispatcher.Schedule) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "tenant\t%s\n", esc(s.Tenant))
	fmt.Fprintf(tw, "name\t%s\n", esc(s.Name))
	fmt.Fprintf(tw, "when\t%s\n", esc(when(s)))
	fmt.Fprintf(tw, "time zone\t%s\n", esc(zoneOf(s)))
	fmt.Fprintf(tw, "next\t%s\n", nextTimes(s, 5))
	job, _ := json.Marshal(s.Job)
	fmt.Fprintf(tw, "job\t%s\n", clip(string(job), 200))
	fmt.Fprintf(tw, "added\t%s\n", s.Added.UTC().Format(time.RFC3339))
	_ = tw.Flush()
}

func when(s dispatcher.Schedule) string {
	if s.RunAt != nil {
		return "once at " + s.RunAt.UTC().Format(time.RFC3339)
	}
	return "cron " + s.Cron
}

func zoneOf(s dispatcher.Schedule) string {
	switch {
	case s.RunAt != nil:
		return "-"
	case s.TimeZone == "":
		return "UTC"
	}
	return s.TimeZone
}

// nextTimes is up to n of the schedule's next fire times, in its zone.
func nextTimes(s dispatcher.Schedule, n int) string {
	if len(s.Next) == 0 {
		return "-"
	}
	loc := time.UTC
	if s.TimeZone != "" {
		if l, err := time.LoadLocation(s.TimeZone); err == nil {
			loc = l
		}
	}
	var out []string
	for _, t := range s.Next[:min(n, len(s.Next))] {
		out = append(out, t.In(loc).Format("Mon 2006-01-02 15:04:05 MST"))
	}
	return strings.Join(out, ", ")
}

func runScheduleCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule cancel", scheduleHelp, stderr)
	reason := fs.String("reason", "", "why, for the audit trail")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: schedule cancel needs <tenant> <name>", errUsage)
	}
	c, err := newAPIClient()
	if err != nil {
		return err
	}
	if err := c.CancelSchedule(ctx, pos[0], pos[1], *reason); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cancelled %s/%s\n", esc(pos[0]), esc(pos[1]))
	return nil
}
