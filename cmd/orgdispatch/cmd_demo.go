package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/orgdispatch/orgdispatch/internal/demo"
	"github.com/orgdispatch/orgdispatch/worker"
)

func init() {
	register(command{
		name:    "demo",
		summary: "everything in one process, with the platform simulator, synthetic load and a live view",
		run:     runDemo,
	})
}

const demoHelp = `Usage: orgdispatch demo [--duration D] [--tenants N] [--http ADDR]

Runs the whole dispatcher in one process — embedded NATS (on 127.0.0.1:4222
when free, so the nats CLI can look in), the platform simulator, one OAuth
client, queue and limiter per tenant, a worker pool — and offers it load:
org_noisy asks for three times its quota and gets 429s and pauses, while the
quiet tenants ask for 80 %% of theirs and keep that rate. Every second it
prints each tenant's jobs done, rate, queue, 429s and pause. Nothing is kept:
the store is a temporary directory removed at exit. Ctrl-C stops it.

Flags:
`

// demoHTTP builds the HTTP API and dashboard served beside the demo on addr
// (--http): the worker pool's hooks (metrics) and demo.Config.HTTP. The file
// wiring package api sets it from its init function; while it is nil, --http
// is refused.
var demoHTTP func(addr string) (worker.Hooks, func(env demo.Env) (string, func(context.Context) error, error))

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	n := fs.Int("tenants", demo.DefaultTenants, fmt.Sprintf("number of tenants: org_noisy and N-1 quiet ones (2-%d)", demo.MaxTenants))
	httpAddr := fs.String("http", "", "also serve the HTTP API and dashboard on this address, e.g. 127.0.0.1:8080")
	verbose := fs.Bool("v", false, "log the components' warnings and errors to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), demoHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *duration < 0 {
		return fmt.Errorf("%w: --duration %s is negative", errUsage, *duration)
	}
	if *n < 2 || *n > demo.MaxTenants {
		return fmt.Errorf("%w: --tenants %d: want 2 to %d", errUsage, *n, demo.MaxTenants)
	}

	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	cfg := demo.Config{
		Tenants:  *n,
		Duration: *duration,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *httpAddr != "" {
		if demoHTTP == nil {
			return errors.New("--http: this build has no HTTP API or dashboard")
		}
		cfg.Hooks, cfg.HTTP = demoHTTP(*httpAddr)
	}
	_, err := demo.Run(ctx, cfg, stdout)
	return err
}
