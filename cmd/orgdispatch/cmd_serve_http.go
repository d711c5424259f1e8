package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dashboard"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/internal/demo"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/worker"
)

// This file wires package api (with metrics and the dashboard) into serve
// and demo through their HTTP hooks.
func init() {
	newHTTPServer = func(n *node) (*httpServer, error) {
		w := newWeb()
		set, err := apiSettingsFrom(n.cfg, n.logger)
		if err != nil {
			return nil, err
		}
		srv, err := w.api(n.nc, n.js, n.names, set)
		if err != nil {
			return nil, err
		}
		ln, err := w.listen(n.cfg.HTTPAddr, set.authToken(), n.cfg.APIAllowNoAuth)
		if err != nil {
			return nil, err
		}
		return &httpServer{
			hooks: w.hooks,
			url:   "http://" + ln.Addr().String(),
			run:   func(ctx context.Context) error { return serveAPI(ctx, srv, ln, set) },
			close: func() { ln.Close() },
		}, nil
	}
	demoHTTP = func(addr string) (worker.Hooks, func(env demo.Env) (string, func(context.Context) error, error)) {
		w := newWeb()
		return w.hooks, func(env demo.Env) (string, func(context.Context) error, error) {
			srv, err := w.api(env.Conn, env.JS, env.Names, apiSettings{logger: env.Logger, shutdown: time.Second})
			if err != nil {
				return "", nil, err
			}
			ln, err := w.listen(addr, "", false)
			if err != nil {
				return "", nil, err
			}
			return "http://" + ln.Addr().String(), func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
		}
	}
}

// web is the HTTP side's shared parts: one Prometheus registry holding the
// worker pool's hook metrics, the tenant collector and the Go runtime's.
type web struct {
	reg   *prometheus.Registry
	hooks *metrics.Metrics
}

func newWeb() web {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return web{reg: reg, hooks: metrics.New(reg)}
}

// apiSettings are the process settings the API server takes.
type apiSettings struct {
	token       string      // ORGDISPATCH_API_TOKEN
	tokensFile  string      // ORGDISPATCH_API_TOKENS_FILE
	tokens      *api.Tokens // its tokens at start (nil: no file)
	metricsAuth bool        // ORGDISPATCH_METRICS_AUTH
	hosts       []string    // Host names answered (nil: api.DefaultHosts)
	logger      *slog.Logger
	shutdown    time.Duration
}

// apiSettingsFrom reads the API's settings, loading the tokens file.
func apiSettingsFrom(cfg config.Config, logger *slog.Logger) (apiSettings, error) {
	set := apiSettings{
		token:       cfg.APIToken.Reveal(),
		tokensFile:  cfg.APITokensFile,
		metricsAuth: cfg.MetricsAuth,
		hosts:       cfg.HTTPHostNames(),
		logger:      logger,
		shutdown:    cfg.ShutdownTimeout,
	}
	if cfg.APITokensFile != "" {
		ts, err := api.LoadTokens(cfg.APITokensFile)
		if err != nil {
			return set, fmt.Errorf("ORGDISPATCH_API_TOKENS_FILE: %w", err)
		}
		set.tokens = ts
	}
	return set, nil
}

// authToken is what CheckListen needs to know: "" when no token at all is
// configured.
func (set apiSettings) authToken() string {
	if set.token != "" {
		return set.token
	}
	if set.tokens != nil {
		return "tokens file"
	}
	return ""
}

// serveAPI serves srv on ln, reloading the tokens file while it runs.
func serveAPI(ctx context.Context, srv *api.Server, ln net.Listener, set apiSettings) error {
	if set.tokens == nil {
		return srv.Serve(ctx, ln)
	}
	w, err := api.NewTokensWatcher(api.TokensWatcherConfig{Path: set.tokensFile, Apply: srv.SetTokens, Current: set.tokens, Logger: set.logger})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, ln) })
	g.Go(func() error { return w.Run(gctx) })
	return g.Wait()
}

// api builds the API server (ingest, admin, /metrics, health, dashboard).
func (w web) api(nc *nats.Conn, js jetstream.JetStream, names dispatcher.Names, set apiSettings) (*api.Server, error) {
	admin := dispatcher.NewAdmin(js, names)
	if err := w.reg.Register(metrics.NewTenantCollector(admin)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return api.New(api.Config{
		Admin:           admin,
		Publisher:       dispatcher.NewPublisher(js, names),
		Names:           names,
		Token:           set.token,
		Tokens:          set.tokens,
		Audit:           dispatcher.NewAuditor(js, names),
		MetricsAuth:     set.metricsAuth,
		Hosts:           set.hosts,
		Logger:          set.logger,
		Gatherer:        w.reg,
		Ready:           api.ReadyCheck(nc, admin),
		Dashboard:       dashboard.Handler(),
		ShutdownTimeout: set.shutdown,
	})
}

// listen checks the address (no open API off loopback unless allowNoAuth) and
// listens, so that the printed URL has the real port.
func (w web) listen(addr, token string, allowNoAuth bool) (net.Listener, error) {
	if err := api.CheckListen(addr, token, allowNoAuth); err != nil {
		return nil, fmt.Errorf("%w (set ORGDISPATCH_API_TOKEN or ORGDISPATCH_API_TOKENS_FILE, or ORGDISPATCH_API_ALLOW_NO_AUTH=true behind an authenticating proxy)", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	return ln, nil
}
