package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// envHTTPAddr is the variable a worker replica's metrics and health server
// listens on — only when it is set explicitly: its default (127.0.0.1:8080)
// belongs to serve and api, and replicas started side by side on one host
// would otherwise fight over it.
const envHTTPAddr = "ORGDISPATCH_HTTP_ADDR"

// workerHTTPIdleTimeout closes a worker's metrics and health connections
// left idle between requests (without it, and without a ReadTimeout, an idle
// keep-alive connection is held for ever). A variable for tests.
var workerHTTPIdleTimeout = 2 * time.Minute

// workerHTTPServer builds a worker replica's small HTTP server: /metrics
// (this replica's job, platform-request, 429 and token counters, plus the
// Go runtime's), /healthz and /readyz. It has no /v1 API and no dashboard,
// and leaves out the cluster-wide tenant gauges (backlog, pauses,
// dispatchable backlog), which the api process exports once for the whole
// cluster. It returns nil when ORGDISPATCH_HTTP_ADDR is not set explicitly.
func workerHTTPServer(n *node) (*httpServer, error) {
	if v, ok := os.LookupEnv(envHTTPAddr); !ok || v == "" {
		return nil, nil
	}
	w := newWeb()
	admin := dispatcher.NewAdmin(n.js, n.names)
	ready := api.ReadyCheck(n.nc, admin)

	mux := http.NewServeMux()
	var metrics http.Handler = promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	// ORGDISPATCH_METRICS_AUTH: the same tokens as the API's /metrics.
	watchTokens := func(context.Context) error { return nil }
	if n.cfg.MetricsAuth {
		set, err := apiSettingsFrom(n.cfg, n.logger)
		if err != nil {
			return nil, err
		}
		guard, err := api.NewMetricsGuard(set.token, set.tokens)
		if err != nil {
			return nil, err
		}
		metrics = guard.Handler(metrics)
		if set.tokens != nil {
			tw, err := api.NewTokensWatcher(api.TokensWatcherConfig{Path: set.tokensFile, Apply: guard.SetTokens, Current: set.tokens, Logger: n.logger})
			if err != nil {
				return nil, err
			}
			watchTokens = tw.Run
		}
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		writeHealth(rw, http.StatusOK, "status", "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeHealth(rw, http.StatusServiceUnavailable, "error", "not ready: "+err.Error())
			return
		}
		writeHealth(rw, http.StatusOK, "status", "ready")
	})

	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s; unset it for no metrics server): %w", n.cfg.HTTPAddr, envHTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           api.HostCheck(n.cfg.HTTPHostNames(), mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       workerHTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
	}
	return &httpServer{
		hooks: w.hooks,
		url:   "http://" + ln.Addr().String() + " (metrics and health only)",
		run: func(ctx context.Context) error {
			wctx, stopWatch := context.WithCancel(ctx)
			watched := make(chan error, 1)
			go func() { watched <- watchTokens(wctx) }()
			defer func() { stopWatch(); <-watched }()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("http: %w", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("http: shutdown: %w", err)
			}
			return nil
		},
		close: func() { ln.Close() },
	}, nil
}

func writeHealth(w http.ResponseWriter, status int, key, value string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{key: value})
}
