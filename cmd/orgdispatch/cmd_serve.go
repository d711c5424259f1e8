package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run everything: NATS (embedded unless ORGDISPATCH_NATS_URL), provisioning, HTTP API, workers",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runNode(ctx, "serve", args, stdout, stderr)
		},
	})
	register(command{
		name:    "worker",
		summary: "run worker lanes for every tenant against a shared NATS (add replicas)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runNode(ctx, "worker", args, stdout, stderr)
		},
	})
}

const serveHelp = `Usage: orgdispatch serve

Runs the whole dispatcher in one process: the embedded NATS JetStream server
(unless ORGDISPATCH_NATS_URL names an external one), provisioning of streams,
buckets and one consumer per tenant, the HTTP API, and worker lanes for every
tenant in ORGDISPATCH_TENANTS_FILE. Ctrl-C (SIGINT) or SIGTERM stops it: jobs in
flight get ORGDISPATCH_SHUTDOWN_TIMEOUT to finish, the rest are handed back.
`

const workerHelp = `Usage: orgdispatch worker

Runs worker lanes for every tenant in ORGDISPATCH_TENANTS_FILE, and nothing
else: start as many as the load needs, all against the same NATS. It connects
to ORGDISPATCH_NATS_URL, or, when that is empty, to the embedded server of a
running 'orgdispatch serve' (ORGDISPATCH_NATS_LISTEN). It provisions the
tenants' consumers too (idempotently), so a tenant added to the file runs as
soon as a replica with the new file starts.

With ORGDISPATCH_HTTP_ADDR set explicitly, a worker also serves /metrics (its
own lanes' counters), /healthz and /readyz there; unset, it serves no HTTP.
Serve and worker reload ORGDISPATCH_TENANTS_FILE when it changes and on SIGHUP.
`

// node is what serve and worker build. The HTTP server reads from it.
type node struct {
	cfg     config.Config
	logger  *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	names   dispatcher.Names
	tenants *tenants.File
	// pool is set before any component runs.
	pool *worker.Pool
}

// httpServer is serve's HTTP server (ingest and admin API, metrics,
// dashboard): one component of serve's errgroup.
type httpServer struct {
	// hooks, when not nil, receive the worker pool's events (metrics).
	hooks worker.Hooks
	// url is printed on start, e.g. http://127.0.0.1:8080.
	url string
	// run serves until ctx ends, then shuts down gracefully.
	run func(ctx context.Context) error
	// close releases what the server holds when run is never called.
	close func()
}

// newHTTPServer builds serve's HTTP server; the file wiring package api sets
// it from its init function. This is the one place HTTP joins serve: while
// it is nil, serve runs without an HTTP server and says so.
var newHTTPServer func(n *node) (*httpServer, error)

func runNode(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	keepRunningOnHangup()
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if mode == "serve" {
			fmt.Fprint(fs.Output(), serveHelp)
		} else {
			fmt.Fprint(fs.Output(), workerHelp)
		}
		fmt.Fprintln(fs.Output())
		_ = config.Usage(fs.Output())
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (settings come from ORGDISPATCH_* variables; see orgdispatch help env)", errUsage, fs.Args())
	}

	cfg, err := config.Load()
	if err != nil {
		return err
	}
	logger := cfg.NewLogger(stderr)
	for _, k := range config.Unknown() {
		logger.Warn("unknown environment variable, ignored (misspelt?)", "name", k)
	}
	logger.Info("starting "+mode, "config", cfg)
	ts, err := tenants.Load(cfg.TenantsFile)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}

	var (
		nc      *nats.Conn
		js      jetstream.JetStream
		cleanup func()
	)
	if mode == "worker" && cfg.Embedded() {
		// A worker replica never runs its own server: it joins a running
		// serve's embedded one.
		nc, js, cleanup, err = config.Dial(ctx, cfg, logger)
	} else {
		nc, js, cleanup, err = config.Connect(ctx, cfg, logger)
	}
	if err != nil {
		return err
	}
	defer cleanup()

	n := &node{cfg: cfg, logger: logger, nc: nc, js: js, names: cfg.Names(), tenants: ts}
	if err := dispatcher.ProvisionWhenReady(ctx, js, n.names, cfg.StreamConfig(), ts.Tenants, logger); err != nil {
		return fmt.Errorf("provision: %w", err)
	}

	var web *httpServer
	if mode == "serve" && cfg.HTTPAddr != "" && newHTTPServer != nil {
		if web, err = newHTTPServer(n); err != nil {
			return fmt.Errorf("http: %w", err)
		}
		defer web.close()
	}
	if mode == "worker" {
		if web, err = workerHTTPServer(n); err != nil {
			return fmt.Errorf("http: %w", err)
		}
		if web != nil {
			defer web.close()
		}
	}
	var hooks worker.Hooks
	if web != nil {
		hooks = web.hooks
	}
	streams := cfg.StreamConfig()
	n.pool, err = worker.New(worker.Config{
		JS:              js,
		Conn:            nc,
		Streams:         &streams,
		Names:           n.names,
		Tenants:         ts.Tenants,
		ReplicaID:       cfg.ReplicaID,
		Logger:          logger,
		Hooks:           hooks,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
	if err != nil {
		return err
	}

	printStart(stdout, mode, n, web)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.pool.Run(gctx) })
	if web != nil {
		g.Go(func() error { return web.run(gctx) })
	}
	g.Go(func() error { return watchTenants(gctx, n) })
	err = g.Wait()
	logger.Info("stopped", "error", err)
	return err
}

func printStart(w io.Writer, mode string, n *node, web *httpServer) {
	fmt.Fprintf(w, "orgdispatch %s: replica %s\n", mode, n.cfg.ReplicaID)
	switch {
	case !n.cfg.Embedded():
		fmt.Fprintf(w, "  NATS     external %s\n", config.RedactURL(n.cfg.NATSURL))
	case mode == "worker":
		fmt.Fprintf(w, "  NATS     %s (a running serve's embedded server)\n", n.cfg.ClientURL())
	case n.nc.ConnectedUrl() == "":
		fmt.Fprintf(w, "  NATS     embedded, in-process only (store %s)\n", n.cfg.StoreDir)
	default:
		fmt.Fprintf(w, "  NATS     embedded, listening on %s (store %s)\n", n.nc.ConnectedUrl(), n.cfg.StoreDir)
	}
	fmt.Fprintf(w, "  tenants  %d (%s)\n", len(n.tenants.Tenants), n.cfg.TenantsFile)
	switch {
	case mode == "worker" && web == nil:
	case web != nil:
		fmt.Fprintf(w, "  HTTP     %s\n", web.url)
	case n.cfg.HTTPAddr == "":
		fmt.Fprintln(w, "  HTTP     off (ORGDISPATCH_HTTP_ADDR is empty)")
	default:
		fmt.Fprintln(w, "  HTTP     none: this build has no HTTP API")
	}
}
