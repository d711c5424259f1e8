package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/internal/termtext"
	"github.com/orgdispatch/orgdispatch/platform"
)

func init() {
	register(command{
		name:    "publish",
		summary: "publish jobs (from flags, or JSON lines on stdin)",
		run:     runPublish,
	})
}

// stdin is where publish --stdin reads; tests replace it.
var stdin io.Reader = os.Stdin

const publishHelp = `Usage:
  orgdispatch publish --tenant ID --op OP [--id ID] [--params JSON] [--deadline T] [--priority P]
  orgdispatch publish [--tenant ID] [--priority P] --stdin      (or: publish -)

Publishes jobs to the dispatcher's NATS: ORGDISPATCH_NATS_URL, or, when that is
empty, the embedded server of a running 'orgdispatch serve'
(ORGDISPATCH_NATS_LISTEN, default 127.0.0.1:4222).

With --stdin, every non-empty line is one job envelope, e.g.
  {"id":"c-42","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"cmp-1"}}
"tenant" may be left out when --tenant is given; "id" may be left out and is
then generated.

Priority classes: urgent, normal, bulk (see the README). A single job goes in
its op's default class (campaign.stop and set_status off urgent, contacts.add
and contacts.remove bulk, the rest normal) unless --priority says otherwise.
Lines read with --stdin are a re-submission of many: those naming no
"priority" go in --priority, which is bulk there unless given ("default":
each op's default class).

Prints one line per job: "accepted <tenant>/<id> seq N", "duplicate <tenant>/<id>
seq N" (already published within the duplicate window), or "failed ...: <why>".
Exits non-zero if any job failed.

Operations: ` + "%s" + `

Flags:
`

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant id (with --stdin: the tenant of lines that name none)")
	op := fs.String("op", "", "operation, e.g. campaign.start")
	id := fs.String("id", "", "job id, the idempotency key (default: random)")
	params := fs.String("params", "", `operation parameters as JSON, e.g. '{"campaign_id":"cmp-1"}'`)
	deadline := fs.String("deadline", "", "do not run after this time: RFC 3339 (2026-12-01T10:00:00Z) or a duration from now (10m)")
	priority := fs.String("priority", "", "class: urgent, normal, bulk, or default (the op's default class); default: the op's for a single job, bulk with --stdin")
	fromStdin := fs.Bool("stdin", false, "read JSON lines from standard input")
	timeout := fs.Duration("timeout", 10*time.Second, "give up connecting and publishing after this long")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), publishHelp, strings.Join(platform.Ops(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	switch {
	case fs.NArg() == 1 && fs.Arg(0) == "-":
		*fromStdin = true
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	var class string
	switch *priority {
	case "", "default":
		if *priority == "" && *fromStdin {
			class = string(dispatcher.PriorityBulk)
		}
	default:
		if _, err := dispatcher.ParsePriority(*priority); err != nil {
			return fmt.Errorf("%w: --priority %q: want urgent, normal, bulk or default", errUsage, *priority)
		}
		class = *priority
	}
	var single dispatcher.Job
	if *fromStdin {
		if *op != "" || *id != "" || *params != "" || *deadline != "" {
			return fmt.Errorf("%w: with --stdin only --tenant applies; --op, --id, --params and --deadline come from the lines", errUsage)
		}
	} else {
		var err error
		if single, err = jobFromFlags(*tenant, *op, *id, *params, *deadline, time.Now()); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		single.Priority = class
	}

	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	_, js, cleanup, err := config.Dial(ctx, cfg, cfg.NewLogger(stderr))
	if err != nil {
		return err
	}
	defer cleanup()
	// Counted from the tenant's consumer: a producer's NATS user may read
	// its tenants' consumers only (orgdispatch nats-config).
	p := dispatcher.NewPublisher(js, cfg.Names(), dispatcher.WithConsumerBacklogCounts())

	if !*fromStdin {
		if !publishOne(ctx, p, single, stdout) {
			return errors.New("the job was not published")
		}
		return nil
	}
	return publishLines(ctx, p, *tenant, class, stdin, stdout)
}

// jobFromFlags builds the job of a single publish.
func jobFromFlags(tenant, op, id, params, deadline string, now time.Time) (dispatcher.Job, error) {
	if tenant == "" || op == "" {
		return dispatcher.Job{}, errors.New("--tenant and --op are required (or use --stdin)")
	}
	j := dispatcher.Job{Tenant: tenant, Op: op, ID: id}
	if j.ID == "" {
		j.ID = randomID()
	}
	if params != "" {
		if !json.Valid([]byte(params)) {
			return dispatcher.Job{}, fmt.Errorf("--params is not valid JSON: %s", params)
		}
		j.Params = json.RawMessage(params)
	}
	if deadline != "" {
		t, err := parseDeadline(deadline, now)
		if err != nil {
			return dispatcher.Job{}, err
		}
		j.Deadline = &t
	}
	return j, nil
}

func parseDeadline(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("--deadline %q: want an RFC 3339 time (2026-12-01T10:00:00Z) or a positive duration (10m)", s)
}

// randomID is a job id for callers that gave none: "cli-" and 16 hex digits.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

// publishOne publishes j and prints its line; it reports success.
func publishOne(ctx context.Context, p *dispatcher.Publisher, j dispatcher.Job, w io.Writer) bool {
	res, err := p.Publish(ctx, j)
	if err != nil {
		fmt.Fprintf(w, "failed %s/%s: %s\n", esc(j.Tenant), esc(j.ID), termtext.Lines(err.Error()))
		return false
	}
	verb := "accepted"
	if res.Duplicate {
		verb = "duplicate"
	}
	fmt.Fprintf(w, "%s %s/%s seq %d\n", verb, res.Tenant, res.ID, res.Seq)
	return true
}

// publishLines publishes one job per non-empty line of r.
// publishLines publishes each line's job; class is the priority of the lines
// that name none ("": each op's default).
func publishLines(ctx context.Context, p *dispatcher.Publisher, tenant, class string, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), dispatcher.MaxJobBytes+1)
	var total, failed, line int
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		total++
		j, err := jobFromLine([]byte(text), tenant)
		if err != nil {
			fmt.Fprintf(w, "failed line %d: %s\n", line, termtext.Lines(err.Error()))
			failed++
			continue
		}
		if j.Priority == "" {
			j.Priority = class
		}
		if !publishOne(ctx, p, j, w) {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin after line %d: %w", line, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped after line %d: %w", line, err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d jobs failed", failed, total)
	}
	return nil
}

// jobFromLine decodes one envelope; tenant fills in a missing "tenant" (and
// must agree with one that is present), a missing id is generated.
func jobFromLine(data []byte, tenant string) (dispatcher.Job, error) {
	j, err := dispatcher.DecodeJob(data)
	if err != nil {
		return dispatcher.Job{}, err
	}
	switch {
	case j.Tenant == "" && tenant == "":
		return dispatcher.Job{}, errors.New(`no tenant: set "tenant" in the line or --tenant`)
	case j.Tenant == "":
		j.Tenant = tenant
	case tenant != "" && j.Tenant != tenant:
		return dispatcher.Job{}, fmt.Errorf("line names tenant %q but --tenant is %q", j.Tenant, tenant)
	}
	if j.ID == "" {
		j.ID = randomID()
	}
	return j, nil
}
