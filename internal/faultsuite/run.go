package faultsuite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// RecoveryTarget is the goal of issue 9: every tenant's calls resume within
// 5 s of a fault.
const RecoveryTarget = 5 * time.Second

// Config sizes one run; zero fields take the defaults in brackets.
type Config struct {
	Scenario Scenario
	// Binaries are built (see Build) where empty.
	Binaries Binaries
	// Dir holds the binaries, stores and logs; "" makes a temporary
	// directory, removed afterwards.
	Dir string
	// Tenants is the number of tenants [3]; Rate the jobs per second each
	// is offered [30]; Concurrency each tenant's jobs in flight per
	// orgdispatch process [4]; Latency the platform's answer time [30 ms].
	Tenants int
	Rate    float64
	// Backlog is the jobs each tenant publishes at once when the load
	// starts [enough to keep its lanes at full concurrency until 5 s after
	// the fault: (processes × Concurrency/Latency − Rate) × (Warmup + 5 s)], so that
	// the fault comes while every tenant has all its jobs in flight.
	Backlog     int
	Concurrency int
	Latency     time.Duration
	// Warmup is the load before the fault [5 s]; Duration the whole load
	// [25 s]; FaultFor the time until the fault is undone [per scenario].
	Warmup   time.Duration
	Duration time.Duration
	FaultFor time.Duration
	// DrainTimeout bounds the wait, after the load, for every job to have
	// succeeded or been dead-lettered [AckWait + 30 s].
	DrainTimeout time.Duration
	// Logger gets the run's progress; nil discards it.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Tenants <= 0 {
		c.Tenants = 3
	}
	if c.Rate <= 0 {
		c.Rate = 30
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Latency <= 0 {
		c.Latency = 30 * time.Millisecond
	}
	if c.Warmup <= 0 {
		c.Warmup = 5 * time.Second
	}
	if c.Backlog < 0 {
		c.Backlog = 0
	} else if c.Backlog == 0 {
		// Jobs/s with every slot busy: each orgdispatch process (serve and
		// the workers) runs up to Concurrency of a tenant's jobs at once.
		processes := 1 + specs[c.Scenario].workers
		capacity := float64(processes*c.Concurrency) / c.Latency.Seconds()
		c.Backlog = max(int((capacity-c.Rate)*(c.Warmup+5*time.Second).Seconds()), 0)
	}
	if c.Duration <= 0 {
		c.Duration = 25 * time.Second
	}
	if c.FaultFor <= 0 {
		c.FaultFor = specs[c.Scenario].faultFor
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = dispatcher.ConsumerAckWait + 30*time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if _, ok := specs[c.Scenario]; !ok {
		return fmt.Errorf("faultsuite: unknown scenario %q", c.Scenario)
	}
	if c.Warmup >= c.Duration {
		return fmt.Errorf("faultsuite: warm-up %s is not shorter than the load %s", c.Warmup, c.Duration)
	}
	return nil
}

// run is one scenario's world while it runs.
type run struct {
	cfg      Config
	spec     spec
	h        *harness
	platform *simPlatform
	gate     *tokenGate
	nodes    []*natsNode
	leader   *natsNode // LeaderKill: the jobs stream's leader before the fault
	serve    *odProcess
	workers  []*odProcess
	nc       *nats.Conn
	js       jetstream.JetStream
	names    dispatcher.Names
	tenants  tenantSet
	killed   map[*proc]bool // processes the fault killed (not restarted)
	notes    []string
}

// Run runs one scenario and returns what it measured. The error is for a
// run that could not be carried out (a binary missing, a process that
// would not start); a fault's damage is in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, cleanup, err := newRun(ctx, cfg, specs[cfg.Scenario], string(cfg.Scenario))
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	return r.measure(ctx)
}

// setUp starts the platform, the nats-servers, serve and the workers.
func (r *run) setUp(ctx context.Context) error {
	if err := r.setUpWorld(ctx); err != nil {
		return err
	}
	// serve provisions the streams and buckets; the workers start once it
	// is ready (started together on a fresh cluster, both may fail to
	// provision: see StartTogether).
	var err error
	if r.serve, err = r.startOrgdispatch(ctx, "serve", "serve"); err != nil {
		return err
	}
	for i := range r.spec.workers {
		w, err := r.startOrgdispatch(ctx, fmt.Sprintf("worker-%d", i+1), "worker")
		if err != nil {
			return err
		}
		r.workers = append(r.workers, w)
	}
	return nil
}

// startOrgdispatch launches an orgdispatch process and waits until it is
// ready.
func (r *run) startOrgdispatch(ctx context.Context, name, command string) (*odProcess, error) {
	o, err := r.launch(name, command)
	if err != nil {
		return nil, err
	}
	return o, o.waitReady(ctx)
}

// launch starts an orgdispatch process with its own platform listener (and
// the token gate, for the gated process) without waiting for it.
func (r *run) launch(name, command string) (*odProcess, error) {
	base, err := r.platform.listen(name)
	if err != nil {
		return nil, err
	}
	tokenURL := base + "/oauth/token"
	if name == r.spec.gated {
		if r.gate, err = newTokenGate(strings.TrimPrefix(base, "http://")); err != nil {
			return nil, err
		}
		tokenURL = r.gate.url() + "/oauth/token"
	}
	return r.h.launchOrgdispatch(name, command, r.natsURLs(), r.spec.natsNodes, r.tenants, base, tokenURL)
}

// natsURLs are the client URLs of every nats-server node.
func (r *run) natsURLs() []string {
	var urls []string
	for _, n := range r.nodes {
		urls = append(urls, n.URL())
	}
	return urls
}

// setUpWorld starts the platform, the nats-servers and the producer's
// connection.
func (r *run) setUpWorld(ctx context.Context) error {
	cfg := r.cfg
	r.tenants = tenantSet{secrets: map[string]string{}, ratePerMin: int(cfg.Rate*60) * 4, concurrency: cfg.Concurrency, maxAttempts: 10}
	var clients []platformtest.ClientCred
	// The tenants share one jobs stream (org1's shard: org1, org10, org29,
	// …): a fault at that stream's leader hits every tenant at once, the
	// worst case, as it did when all tenants had one stream.
	for i := 1; len(r.tenants.ids) < cfg.Tenants; i++ {
		id := fmt.Sprintf("org%d", i) // no "_": a job id is also a campaign id
		if dispatcher.ShardOf(id) != dispatcher.ShardOf("org1") {
			continue
		}
		r.tenants.ids = append(r.tenants.ids, id)
		r.tenants.secrets[id] = "secret-" + id
		clients = append(clients, platformtest.ClientCred{ID: clientID(id), Secret: r.tenants.secrets[id], Org: id})
	}
	r.platform = newPlatform(platformtest.Config{
		Clients: clients, Latency: cfg.Latency,
		AutoCreate: true, LenientStatusTransitions: true, // a job run twice is a duplicate, not a 400
	})
	if err := os.MkdirAll(r.h.dir, 0o755); err != nil {
		return fmt.Errorf("faultsuite: %w", err)
	}
	var err error
	if r.nodes, err = r.h.startNATS(ctx, r.spec.natsNodes); err != nil {
		return err
	}
	r.nc, err = nats.Connect(strings.Join(r.natsURLs(), ","), nats.Name("faultsuite-producer"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second),
		// Connection errors are the faults at work: to the run's log, not
		// nats.go's default of stderr.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.cfg.Logger.Debug("faultsuite: producer connection", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("faultsuite: connect: %w", err)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		return fmt.Errorf("faultsuite: %w", err)
	}
	return nil
}

// close kills everything.
func (r *run) close() {
	r.h.close()
	if r.nc != nil {
		r.nc.Close()
	}
	if r.gate != nil {
		r.gate.close()
	}
	if r.platform != nil {
		r.platform.close()
	}
}

// processes is every process of the run.
func (r *run) processes() []*proc {
	var out []*proc
	for _, n := range r.nodes {
		out = append(out, n.proc)
	}
	out = append(out, r.serve.proc)
	for _, w := range r.workers {
		out = append(out, w.proc)
	}
	return out
}

func (r *run) layout() string {
	nats := "nats-server ×1"
	if len(r.nodes) > 1 {
		nats = fmt.Sprintf("%d-node JetStream cluster (R%d)", len(r.nodes), len(r.nodes))
	}
	return fmt.Sprintf("%s, serve, worker ×%d", nats, len(r.workers))
}

func (r *run) logf(format string, args ...any) {
	r.cfg.Logger.Info(fmt.Sprintf(format, args...), "scenario", string(r.cfg.Scenario))
}

// newRun prepares a run of cfg laid out as sp: its directory (cfg.Dir, or a
// temporary one removed by cleanup), the binaries, and a harness working in
// the sub-directory name. cleanup stops every process and removes what it
// made.
func newRun(ctx context.Context, cfg Config, sp spec, name string) (r *run, cleanup func(), err error) {
	dir, removeDir := cfg.Dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "orgdispatch-faults-")
		if err != nil {
			return nil, nil, fmt.Errorf("faultsuite: %w", err)
		}
		dir, removeDir = d, func() { os.RemoveAll(d) }
	}
	bins, err := Build(ctx, filepath.Join(dir, "bin"), cfg.Binaries)
	if err != nil {
		removeDir()
		return nil, nil, err
	}
	r = &run{cfg: cfg, spec: sp, h: &harness{dir: filepath.Join(dir, name), bins: bins}, names: dispatcher.MustNames(""), killed: map[*proc]bool{}}
	return r, func() { r.close(); removeDir() }, nil
}
