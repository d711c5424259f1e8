// Package demo runs orgdispatch end to end in one process — the embedded
// NATS JetStream server, the platform simulator over HTTP on loopback,
// provisioning, a worker pool and synthetic load — and reports, tick by tick,
// what every tenant gets done. It backs `orgdispatch demo`.
//
// One tenant, org_noisy, is configured for three times the quota the
// platform grants its OAuth client and is offered that much work: it hits
// 429s and is paused until the platform's window resets. The other tenants
// are offered 80 % of their quota and keep that rate throughout, because each
// org has its own client, queue, limiter and pause.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// NoisyTenant is the id of the tenant that offers more than its quota.
const NoisyTenant = "org_noisy"

// Defaults for the zero values of Config. The platform's real quota is 300
// requests per minute per token; the demo grants the same rate in 10-second
// windows (50 per 10 s), so a 429's Retry-After — the rest of the window —
// is seconds, not a minute.
const (
	DefaultTenants         = 4
	DefaultLimit           = 50
	DefaultWindow          = 10 * time.Second
	DefaultNoisyFactor     = 3.0
	DefaultQuietLoad       = 0.8
	DefaultLatency         = 20 * time.Millisecond
	DefaultTick            = time.Second
	DefaultShutdownTimeout = 3 * time.Second
	DefaultMaxBacklog      = 500
	// MaxTenants bounds Config.Tenants: one line per tenant per tick.
	MaxTenants = 50
	// DefaultNATSPort is tried first; a random port when it is taken.
	DefaultNATSPort = natsserver.DefaultPort
)

// Config configures a demo run. The zero value runs the default demo until
// ctx ends.
type Config struct {
	// Tenants is the number of tenants: org_noisy and Tenants-1 quiet ones
	// (org_quiet_1, …); at least 2. Default DefaultTenants.
	Tenants int
	// Duration stops the demo after this long; 0 runs until ctx ends.
	Duration time.Duration
	// Limit and Window are the platform's rate limit per OAuth client:
	// Limit requests per Window. Defaults DefaultLimit, DefaultWindow.
	Limit  int
	Window time.Duration
	// NoisyFactor is how many times its quota org_noisy is configured for
	// and offered. Default DefaultNoisyFactor.
	NoisyFactor float64
	// QuietLoad is the fraction of their quota the quiet tenants are
	// offered. Default DefaultQuietLoad.
	QuietLoad float64
	// Latency is the simulator's answer time. Default DefaultLatency.
	Latency time.Duration
	// Tick is how often figures are taken (and printed). Default DefaultTick.
	Tick time.Duration
	// MaxBacklog bounds each tenant's queued jobs: the load generator holds
	// back while a tenant has this many jobs waiting, so a long run does not
	// fill the disk. Default DefaultMaxBacklog.
	MaxBacklog int
	// ShutdownTimeout is the worker pool's: how long jobs in flight may
	// finish at the end. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// NATSPort is the embedded server's client port on 127.0.0.1: 0 tries
	// DefaultNATSPort and falls back to a random one, -1 is random.
	NATSPort int
	// StoreDir is the JetStream store; "" makes a temporary directory that is
	// removed at the end.
	StoreDir string
	// Logger receives the components' logs; nil discards them (the demo's
	// own output goes to Run's writer).
	Logger *slog.Logger
	// OnTick, when set, receives every tick's figures (after they are
	// printed). It must not block for long.
	OnTick func(Snapshot)
	// HTTP, when set, builds a server that runs beside the demo (the HTTP
	// API and dashboard). It is called once everything is provisioned and
	// returns the URL to print and a function that serves until its context
	// ends; an error from either ends the demo.
	HTTP func(env Env) (url string, serve func(ctx context.Context) error, err error)
	// Hooks receive the worker pool's events (e.g. metrics for HTTP); nil
	// means none.
	Hooks worker.Hooks
}

// Env is what a Config.Serve function gets to work with.
type Env struct {
	Conn    *nats.Conn
	JS      jetstream.JetStream
	Names   dispatcher.Names
	Tenants []tenants.Tenant
	Pool    *worker.Pool
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Tenants == 0 {
		c.Tenants = DefaultTenants
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.NoisyFactor == 0 {
		c.NoisyFactor = DefaultNoisyFactor
	}
	if c.QuietLoad == 0 {
		c.QuietLoad = DefaultQuietLoad
	}
	if c.Latency == 0 {
		c.Latency = DefaultLatency
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.MaxBacklog == 0 {
		c.MaxBacklog = DefaultMaxBacklog
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Tenants < 2 || c.Tenants > MaxTenants {
		errs = append(errs, fmt.Errorf("tenants %d: want 2 to %d (one noisy, the rest quiet)", c.Tenants, MaxTenants))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %s is negative", c.Duration))
	}
	if c.Limit < 1 || c.Window < time.Second {
		errs = append(errs, fmt.Errorf("limit %d per %s: want at least 1 per second-long window", c.Limit, c.Window))
	}
	if c.NoisyFactor <= 1 {
		errs = append(errs, fmt.Errorf("noisy factor %g: want more than 1", c.NoisyFactor))
	}
	if c.QuietLoad <= 0 || c.QuietLoad >= 1 {
		errs = append(errs, fmt.Errorf("quiet load %g: want between 0 and 1", c.QuietLoad))
	}
	if c.Tick <= 0 || c.Latency < 0 || c.MaxBacklog < 1 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("tick, latency, max backlog and shutdown timeout must be positive"))
	}
	if c.NATSPort < -1 || c.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("NATS port %d: want -1 (random), 0 (default) or a port", c.NATSPort))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// quotaPerMinute is the platform's quota per client, per minute.
func (c Config) quotaPerMinute() float64 {
	return float64(c.Limit) * float64(time.Minute) / float64(c.Window)
}

// plan is one tenant's part in the demo.
type plan struct {
	tenant  tenants.Tenant
	noisy   bool
	offered float64 // jobs per second offered by the load generator
}

// plans builds the tenants in code: their own OAuth client on the simulator,
// the quota as their rate (org_noisy: NoisyFactor times it), and the load
// each is offered.
func (c Config) plans(apiBase string) []plan {
	quota := c.quotaPerMinute()
	out := make([]plan, 0, c.Tenants)
	for i := range c.Tenants {
		id, noisy := fmt.Sprintf("org_quiet_%d", i), false
		rate, offered := quota, quota/60*c.QuietLoad
		if i == 0 {
			id, noisy = NoisyTenant, true
			rate, offered = quota*c.NoisyFactor, quota/60*c.NoisyFactor
		}
		out = append(out, plan{
			noisy:   noisy,
			offered: offered,
			tenant: tenants.Tenant{
				ID:            id,
				ClientID:      "client_" + id,
				ClientSecret:  tenants.NewSecret(randomSecret()),
				APIBase:       apiBase,
				TokenURL:      apiBase + "/oauth/token",
				RatePerMinute: max(1, int(rate)),
				Burst:         tenants.DefaultBurst,
				Concurrency:   tenants.DefaultConcurrency,
				MaxAttempts:   tenants.DefaultMaxAttempts,
				QuotaScope:    tenants.ScopeToken,
				AllowedPaths:  platform.DefaultAllowedPathPrefixes,
			},
		})
	}
	return out
}

// Run runs the demo until cfg.Duration has passed or ctx ends, writing a
// header and then, every tick, one line per tenant to w. It returns the
// figures it printed. Ending by ctx is a normal end, not an error.
func Run(ctx context.Context, cfg Config, w io.Writer) (Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	log := cfg.Logger
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	storeDir := cfg.StoreDir
	if storeDir == "" {
		dir, err := os.MkdirTemp("", "orgdispatch-demo-")
		if err != nil {
			return Summary{}, fmt.Errorf("demo: store dir: %w", err)
		}
		defer os.RemoveAll(dir)
		storeDir = dir
	}

	srv, err := natsserver.Start(natsserver.Config{
		StoreDir:   storeDir,
		Host:       "127.0.0.1",
		Port:       natsPort(cfg.NATSPort),
		ServerName: "orgdispatch-demo",
		Logger:     log,
	})
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect(nats.Name("orgdispatch demo"))
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Summary{}, fmt.Errorf("demo: jetstream: %w", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Summary{}, fmt.Errorf("demo: simulator listener: %w", err)
	}
	apiBase := "http://" + ln.Addr().String()
	plans := cfg.plans(apiBase)
	sim := platformtest.New(simConfig(cfg, plans))
	web := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	webDone := make(chan struct{})
	go func() {
		defer close(webDone)
		if err := web.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("simulator stopped", "error", err)
		}
	}()
	defer func() {
		_ = web.Close()
		<-webDone
	}()

	names := dispatcher.MustNames(dispatcher.DefaultPrefix)
	ts := make([]tenants.Tenant, len(plans))
	for i, p := range plans {
		if err := p.tenant.Validate(); err != nil {
			return Summary{}, fmt.Errorf("demo: %w", err)
		}
		ts[i] = p.tenant
	}
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{Replicas: 1}, ts); err != nil {
		return Summary{}, fmt.Errorf("demo: provision: %w", err)
	}
	pool, err := worker.New(worker.Config{
		JS:              js,
		Conn:            nc,
		Names:           names,
		Tenants:         ts,
		ReplicaID:       "demo",
		Logger:          log,
		Hooks:           cfg.Hooks,
		ShutdownTimeout: cfg.ShutdownTimeout,
		// The demo's windows are seconds long: a 429 without advice should
		// not pause for the production default of a minute.
		DefaultRetryAfter: cfg.Window,
	})
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}

	var httpURL string
	var serveHTTP func(ctx context.Context) error
	if cfg.HTTP != nil {
		env := Env{Conn: nc, JS: js, Names: names, Tenants: ts, Pool: pool, Logger: log}
		if httpURL, serveHTTP, err = cfg.HTTP(env); err != nil {
			return Summary{}, fmt.Errorf("demo: http: %w", err)
		}
	}

	writeHeader(w, cfg, srv.ClientURL(), apiBase, httpURL, plans)

	cs := make([]*counters, len(plans))
	for i := range cs {
		cs[i] = new(counters)
	}
	rep := newReporter(cfg, plans, cs, pool, w)
	load := newLoad(dispatcher.NewPublisher(js, names), plans, cs, cfg.MaxBacklog, log)

	// The pool runs on its own context so that it outlives the load and the
	// reporter by the moment it needs to hand in-flight jobs back.
	poolCtx, stopPool := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPool()
	poolDone := make(chan error, 1)
	go func() { poolDone <- pool.Run(poolCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return load.run(gctx) })
	g.Go(func() error { return rep.run(gctx) })
	if serveHTTP != nil {
		g.Go(func() error { return serveHTTP(gctx) })
	}
	g.Go(func() error {
		// A pool that stops by itself ends the demo.
		select {
		case err := <-poolDone:
			poolDone <- err
			if err == nil {
				err = errors.New("worker pool stopped")
			}
			return fmt.Errorf("demo: %w", err)
		case <-gctx.Done():
			return nil
		}
	})
	runErr := g.Wait()
	stopPool()
	if err := <-poolDone; err != nil && runErr == nil && !errors.Is(err, context.Canceled) {
		runErr = fmt.Errorf("demo: worker pool: %w", err)
	}
	sum := rep.summary()
	fmt.Fprintf(w, "\nstopped after %s.\n", sum.Elapsed.Round(time.Second))
	return sum, runErr
}

// natsPort picks the embedded server's port: DefaultNATSPort when free, so
// that `nats --server nats://127.0.0.1:4222` works, else a random one.
func natsPort(want int) int {
	if want != 0 {
		return want
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", DefaultNATSPort))
	if err != nil {
		return -1
	}
	l.Close()
	return DefaultNATSPort
}

func simConfig(cfg Config, plans []plan) platformtest.Config {
	clients := make([]platformtest.ClientCred, len(plans))
	for i, p := range plans {
		clients[i] = platformtest.ClientCred{ID: p.tenant.ClientID, Secret: p.tenant.ClientSecret.Reveal(), Org: p.tenant.ID}
	}
	return platformtest.Config{
		Clients:     clients,
		Limit:       cfg.Limit,
		Window:      cfg.Window,
		Scope:       platformtest.ScopeClient,
		Latency:     cfg.Latency,
		AutoCreate:  true,
		MaxRecorded: -1,
		// The synthetic load starts and stops campaigns in rotation, so a
		// start often meets a campaign that is already on. Whether the
		// platform refuses that is not documented; the demo is about rate
		// isolation, so its simulator lets any status change through.
		LenientStatusTransitions: true,
	}
}
