package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	register(command{
		name:    "api",
		summary: "run the HTTP API only (ingest, admin, metrics, dashboard), no workers",
		run:     runAPI,
	})
}

const apiHelp = `Usage: orgdispatch api

Runs the HTTP API alone — job ingest (POST /v1/jobs), tenant and dead-letter
administration, /metrics (with the cluster-wide tenant gauges and
orgdispatch_dispatchable_backlog), /healthz, /readyz and the dashboard — on
ORGDISPATCH_HTTP_ADDR, against the NATS of ORGDISPATCH_NATS_URL (or an
embedded server when it is empty). It runs no worker lanes: start
'orgdispatch worker' replicas for that.

It provisions the streams and buckets, and the consumers of the tenants in
ORGDISPATCH_TENANTS_FILE, reloading that file when it changes and on SIGHUP.
The file is optional when the variable is not set (the workers provision
the consumers then); the API accepts jobs only for tenants whose consumer
exists. Listening on a non-loopback address needs ORGDISPATCH_API_TOKEN or
ORGDISPATCH_API_TOKENS_FILE (scoped tokens, reloaded like the tenants file);
the API answers only the Host names of ORGDISPATCH_HTTP_HOSTS.
`

func runAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	keepRunningOnHangup()
	fset := flag.NewFlagSet("api", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), apiHelp)
		fmt.Fprintln(fset.Output())
		_ = config.Usage(fset.Output())
	}
	if err := fset.Parse(args); err != nil {
		return usageErr(err)
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (settings come from ORGDISPATCH_* variables; see orgdispatch help env)", errUsage, fset.Args())
	}

	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if cfg.HTTPAddr == "" {
		return errors.New("ORGDISPATCH_HTTP_ADDR is empty: the api command has nothing to serve")
	}
	logger := cfg.NewLogger(stderr)
	for _, k := range config.Unknown() {
		logger.Warn("unknown environment variable, ignored (misspelt?)", "name", k)
	}
	logger.Info("starting api", "config", cfg)

	// The tenants file is required when named, optional at its default path.
	var ts *tenants.File
	if _, named := os.LookupEnv("ORGDISPATCH_TENANTS_FILE"); named {
		if ts, err = tenants.Load(cfg.TenantsFile); err != nil {
			return fmt.Errorf("tenants: %w", err)
		}
	} else if ts, err = tenants.Load(cfg.TenantsFile); errors.Is(err, fs.ErrNotExist) {
		ts = nil
		logger.Info("no tenants file: tenants' consumers are left to the workers", "file", cfg.TenantsFile)
	} else if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}

	nc, js, cleanup, err := config.Connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer cleanup()

	n := &node{cfg: cfg, logger: logger, nc: nc, js: js, names: cfg.Names(), tenants: ts}
	var provisioned []tenants.Tenant
	if ts != nil {
		provisioned = ts.Tenants
	}
	if err := dispatcher.ProvisionWhenReady(ctx, js, n.names, cfg.StreamConfig(), provisioned, logger); err != nil {
		return fmt.Errorf("provision: %w", err)
	}

	w := newWeb()
	set, err := apiSettingsFrom(cfg, logger)
	if err != nil {
		return err
	}
	srv, err := w.api(nc, js, n.names, set)
	if err != nil {
		return err
	}
	ln, err := w.listen(cfg.HTTPAddr, set.authToken(), cfg.APIAllowNoAuth)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "orgdispatch api: replica %s\n", cfg.ReplicaID)
	if cfg.Embedded() {
		fmt.Fprintf(stdout, "  NATS     embedded (store %s)\n", cfg.StoreDir)
	} else {
		fmt.Fprintf(stdout, "  NATS     external %s\n", config.RedactURL(cfg.NATSURL))
	}
	if ts != nil {
		fmt.Fprintf(stdout, "  tenants  %d (%s)\n", len(ts.Tenants), cfg.TenantsFile)
	} else {
		fmt.Fprintln(stdout, "  tenants  no file (consumers come from the workers)")
	}
	fmt.Fprintf(stdout, "  HTTP     http://%s\n", ln.Addr())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveAPI(gctx, srv, ln, set) })
	if ts != nil {
		g.Go(func() error { return watchTenants(gctx, n) })
	}
	err = g.Wait()
	logger.Info("stopped", "error", err)
	return err
}
