package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBodyBytes      = 8 << 20 // 8 MiB per POST /v1/jobs request
	DefaultMaxJobsPerRequest = 1000
	DefaultMaxPause          = 24 * time.Hour
	DefaultShutdownTimeout   = 10 * time.Second
	// MaxReasonLength caps a pause reason.
	MaxReasonLength = 256
)

// Config configures a Server. Admin and Publisher are required.
type Config struct {
	// Admin reads tenants, jobs and dead letters and pauses tenants.
	Admin *dispatcher.Admin
	// Publisher publishes submitted jobs.
	Publisher *dispatcher.Publisher
	// Schedules adds, lists and cancels tenants' schedules (default: the
	// Admin's).
	Schedules *dispatcher.Schedules
	// Names are the NATS names in use (default: the Admin's).
	Names dispatcher.Names
	// Token, when set, is a bearer token with every right on every tenant
	// (ORGDISPATCH_API_TOKEN; named LegacyTokenName). With neither Token
	// nor Tokens /v1 is open: Run then listens on loopback addresses only.
	Token string
	// Tokens are scoped tokens (ORGDISPATCH_API_TOKENS_FILE), in addition
	// to Token; SetTokens replaces them at run time. Non-nil (even empty)
	// means /v1 requires a token.
	Tokens *Tokens
	// MetricsAuth makes /metrics require a token with RightMetrics.
	MetricsAuth bool
	// Hosts are the Host names the server answers to (any port); a
	// request for another name gets 421, so a DNS rebinding page gets
	// nothing. Empty means DefaultHosts; IP literals are always answered;
	// AnyHost ("*") answers every name. See guard.
	Hosts []string
	// AllowInsecure lets Run listen on a non-loopback address without a
	// token. Do not set it outside a private network.
	AllowInsecure bool
	// Audit, when set, records every pause, resume, dead-letter replay and
	// delete, and refused requests (rate-limited), in the audit stream;
	// GET /v1/audit reads it through Admin either way.
	Audit *dispatcher.Auditor
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Gatherer is served on /metrics; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// Ready backs /readyz; nil means Admin.Ready (see also ReadyCheck).
	Ready func(ctx context.Context) error
	// Dashboard, when set, serves "/" and everything not matched above.
	Dashboard http.Handler
	// MaxBodyBytes caps a POST /v1/jobs body (default DefaultMaxBodyBytes);
	// larger requests get 413.
	MaxBodyBytes int64
	// MaxJobsPerRequest caps the jobs of one POST /v1/jobs array
	// (default DefaultMaxJobsPerRequest); more get 413.
	MaxJobsPerRequest int
	// MaxPause caps one pause (default DefaultMaxPause).
	MaxPause time.Duration
	// ShutdownTimeout bounds graceful shutdown in Run (default
	// DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
}

// Server is the HTTP API: ingest, admin, metrics, health and the dashboard.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hosts   hostSet
	handler http.Handler

	authOn bool                   // a token is required on /v1
	legacy *Tokens                // Config.Token as a set (nil: none)
	tokens atomic.Pointer[Tokens] // every token accepted now

	refusals *refusedAudit
}

// New validates cfg, applies defaults and builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Admin == nil {
		return nil, errors.New("api: config: Admin is required")
	}
	if cfg.Publisher == nil {
		return nil, errors.New("api: config: Publisher is required")
	}
	if cfg.Names.Prefix() == "" {
		cfg.Names = cfg.Admin.Names()
	}
	if cfg.Schedules == nil {
		cfg.Schedules = cfg.Admin.Schedules()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Ready == nil {
		cfg.Ready = cfg.Admin.Ready
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxJobsPerRequest <= 0 {
		cfg.MaxJobsPerRequest = DefaultMaxJobsPerRequest
	}
	if cfg.MaxPause <= 0 {
		cfg.MaxPause = DefaultMaxPause
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, hosts: newHostSet(cfg.Hosts), refusals: newRefusedAudit()}
	if cfg.Token != "" {
		s.authOn = true
		legacy, err := legacyTokens(cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("api: config: Token: %w", err)
		}
		s.legacy = legacy
	}
	if cfg.Tokens != nil {
		s.authOn = true
	}
	if cfg.MetricsAuth && !s.authOn {
		return nil, errors.New("api: config: MetricsAuth needs a Token or Tokens")
	}
	s.SetTokens(cfg.Tokens)
	s.handler = s.routes()
	return s, nil
}

// ReadyCheck is a Config.Ready for a process holding its own NATS
// connection: ready when nc is connected and the admin's streams and buckets
// exist.
func ReadyCheck(nc *nats.Conn, admin *dispatcher.Admin) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", st)
		}
		return admin.Ready(ctx)
	}
}

func (s *Server) routes() http.Handler {
	v1 := http.NewServeMux()
	v1.HandleFunc("POST /v1/jobs", s.need(RightPublish, s.submitJobs))
	v1.HandleFunc("GET /v1/jobs/{id}", s.need(RightRead, s.getJob))
	v1.HandleFunc("GET /v1/tenants", s.need(RightRead, s.listTenants))
	v1.HandleFunc("GET /v1/tenants/{id}", s.need(RightRead, s.getTenant))
	v1.HandleFunc("POST /v1/tenants/{id}/pause", s.need(RightPause, s.pauseTenant))
	v1.HandleFunc("POST /v1/tenants/{id}/resume", s.need(RightPause, s.resumeTenant))
	v1.HandleFunc("POST /v1/tenants/{id}/schedules", s.need(RightPublish, s.addSchedule))
	v1.HandleFunc("GET /v1/tenants/{id}/schedules", s.need(RightRead, s.listSchedules))
	v1.HandleFunc("GET /v1/tenants/{id}/schedules/{name}", s.need(RightRead, s.getSchedule))
	v1.HandleFunc("DELETE /v1/tenants/{id}/schedules/{name}", s.need(RightPublish, s.cancelSchedule))
	v1.HandleFunc("GET /v1/dlq", s.need(RightRead, s.listDeadLetters))
	v1.HandleFunc("GET /v1/dlq/{seq}", s.need(RightRead, s.getDeadLetter))
	v1.HandleFunc("POST /v1/dlq/{seq}/replay", s.need(RightDLQ, s.replayDeadLetter))
	v1.HandleFunc("DELETE /v1/dlq/{seq}", s.need(RightDLQ, s.deleteDeadLetter))
	v1.HandleFunc("GET /v1/audit", s.need(RightRead, s.listAudit))

	mux := http.NewServeMux()
	mux.Handle("/v1/", s.authorize(jsonNotFound(v1)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if s.cfg.Gatherer != nil {
		var metrics http.Handler = promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		})
		if s.cfg.MetricsAuth {
			metrics = s.authorize(s.need(RightMetrics, metrics.ServeHTTP))
		}
		mux.Handle("GET /metrics", metrics)
	}
	if s.cfg.Dashboard != nil {
		mux.Handle("/", s.cfg.Dashboard)
	}
	return s.logRequests(s.guard(jsonNotFound(mux)))
}

// Handler returns the server's routes, for tests and for embedding in
// another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on addr and serves until ctx is done, then shuts down
// gracefully: it stops accepting, lets requests in progress finish within
// the shutdown timeout, and returns. It refuses (see CheckListen) a
// non-loopback address when no token is set unless AllowInsecure.
func (s *Server) Run(ctx context.Context, addr string) error {
	token := ""
	if s.authOn {
		token = "set"
	}
	if err := CheckListen(addr, token, s.cfg.AllowInsecure); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down like Run. It closes
// ln. It does not check the address: use Run, or call CheckListen first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("http api listening", "addr", ln.Addr().String(), "auth", s.authOn, "tokens", s.tokens.Load().Names())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("api: shutdown: %w", err)
	}
	s.log.Info("http api stopped")
	return nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON writes v as the JSON body of a status answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "elapsed", time.Since(start))
	})
}

// jsonNotFound answers requests no route matches (404, or 405 with Allow)
// with a JSON error instead of ServeMux's plain text.
func jsonNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: http.Header{}}
		h, _ := mux.Handler(r)
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		case http.StatusNotFound:
			writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		default: // a redirect (path cleaning): pass it on as is
			for k, v := range probe.header {
				w.Header()[k] = v
			}
			w.WriteHeader(probe.status)
		}
	})
}

// headerProbe records what ServeMux's not-found, not-allowed or redirect
// handler would answer, without the body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *headerProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
