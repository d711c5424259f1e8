package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "scale",
		Summary:         "many tenants × a steady load in one worker process (default 1,000 × 5 jobs/s), beside raw JetStream on the same layout",
		DefaultDuration: 60 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunScale(ctx, ScaleConfig{Options: o})
		},
	})
}

// ScaleConfig sizes the scale scenario; zero fields take the defaults in
// brackets.
type ScaleConfig struct {
	Options
	// Tenants [Options.Tenants, else 1000], each offering PerSec jobs/s
	// [Options.PerSec, else 5; fractions allowed].
	Tenants int
	PerSec  float64
	// Limit per Window per token is the simulator's quota [300 per 60 s:
	// the real one, not compressed]; the tenants are configured with it.
	Limit  int
	Window time.Duration
	// Concurrency per tenant [4 = the tenants file default].
	Concurrency int
	// Latency of the simulator [50 ms].
	Latency time.Duration
	// StartupTimeout bounds the wait for every lane to pull, and then for
	// every tenant's first request [60 s each].
	StartupTimeout time.Duration
	// BaselineDuration is how long the same load runs against plain
	// JetStream consumers on a fresh server (or, external, a fresh prefix)
	// after the worker's run (the same run's baseline: what JetStream
	// alone delivers with this many consumers on the same layout) [20 s;
	// the first quarter is not counted].
	BaselineDuration time.Duration
}

func (c ScaleConfig) withDefaults() ScaleConfig {
	c.Duration = c.duration(60 * time.Second)
	if c.Tenants <= 0 {
		c.Tenants = c.Options.Tenants
	}
	if c.Tenants <= 0 {
		c.Tenants = 1000
	}
	if c.PerSec <= 0 {
		c.PerSec = c.Options.PerSec
	}
	if c.PerSec <= 0 {
		c.PerSec = 5
	}
	if c.Limit <= 0 {
		c.Limit = 300
	}
	if c.Window <= 0 {
		c.Window = 60 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = tenants.DefaultConcurrency
	}
	if c.Latency <= 0 {
		c.Latency = 50 * time.Millisecond
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = 60 * time.Second
	}
	if c.BaselineDuration <= 0 {
		c.BaselineDuration = 20 * time.Second
	}
	c.Replicas = c.replicas()
	return c
}

// target is the NATS the scale runs use.
func (o Options) target() natsTarget {
	return natsTarget{URL: o.NATSURL, Monitor: parseMonitorURLs(o.NATSMonitor), Cluster: o.Cluster}
}

// replicas is Replicas, or its default: min(Cluster, 3) with an embedded
// cluster, else 1.
func (o Options) replicas() int {
	switch {
	case o.Replicas > 0:
		return o.Replicas
	case o.Cluster > 1:
		return min(o.Cluster, 3)
	default:
		return 1
	}
}

// checkNATS refuses settings of the NATS options that cannot work together.
func (o Options) checkNATS() error {
	switch r := o.replicas(); {
	case o.NATSURL != "" && o.Cluster > 1:
		return errors.New("bench: an external server (NATSURL) and an embedded cluster (Cluster) exclude each other")
	case o.NATSMonitor != "" && o.NATSURL == "":
		return errors.New("bench: NATSMonitor reads an external server's /varz: it needs NATSURL")
	case o.Cluster > 1 && r > o.Cluster:
		return fmt.Errorf("bench: %d replicas on a %d-node cluster", r, o.Cluster)
	case o.NATSURL == "" && o.Cluster <= 1 && r > 1:
		return fmt.Errorf("bench: %d replicas need a cluster (Cluster or NATSURL)", r)
	case r > 5:
		return fmt.Errorf("bench: %d replicas: JetStream allows at most 5", r)
	}
	return nil
}

// ScaleFigures are the scale scenario's measurements.
type ScaleFigures struct {
	Tenants int     `json:"tenants"`
	PerSec  float64 `json:"offered_per_tenant_per_sec"`
	// ConsumerStorage is the tenant consumers' storage: "file" or "memory".
	ConsumerStorage string `json:"consumer_storage"`
	// NATS says where the servers ran; Replicas is the streams' and
	// buckets' replication; JobShards the jobs streams the tenants are
	// spread over (dispatcher.JobShards).
	NATS      string `json:"nats"`
	Replicas  int    `json:"replicas"`
	JobShards int    `json:"job_shards"`
	// Delivered (answered 2xx by the simulator) ÷ offered rate over the
	// measuring window, across tenants; how many tenants are within ±3 %
	// of their offered rate (WithinTol) and of the median tenant
	// (WithinMedian).
	RateMin      float64 `json:"rate_min"`
	RateMedian   float64 `json:"rate_median"`
	RateMax      float64 `json:"rate_max"`
	WithinTol    int     `json:"tenants_within_3pct"`
	WithinMedian int     `json:"tenants_within_3pct_of_median"`
	// PublishedRatio is what the load generator got the server to take in
	// the window ÷ what was offered (all tenants): below 1 when the server
	// could not take jobs as fast as they were due.
	PublishedRatio    float64 `json:"published_over_offered"`
	RawPublishedRatio float64 `json:"raw_published_over_offered"`
	RateLimited       int     `json:"rate_limited"`
	// DeliveredPerSec is what orgdispatch delivered (jobs/s, all tenants)
	// over the window, RawDeliveredPerSec what plain consumers received in
	// the baseline; DeliveredOverRaw their ratio.
	DeliveredPerSec    float64 `json:"delivered_per_sec"`
	RawDeliveredPerSec float64 `json:"raw_delivered_per_sec"`
	DeliveredOverRaw   float64 `json:"delivered_over_raw"`
	// Start-up, from before provisioning: the streams and consumers
	// provisioned (ProvisionSec), then every consumer with a pull waiting
	// after the worker started (LanesReadySec), then, from the load's
	// start, every tenant's first request seen by the simulator
	// (FirstRequestsSec). StartupSec is their sum and FromPoolSec the last
	// two's: the heap measurements between the phases are not counted.
	ProvisionSec     float64 `json:"provision_sec"`
	LanesReadySec    float64 `json:"lanes_pulling_after_pool_start_sec"`
	FirstRequestsSec float64 `json:"first_requests_after_load_start_sec"`
	StartupSec       float64 `json:"startup_sec"`
	FromPoolSec      float64 `json:"first_requests_after_pool_start_sec"`
	// The worker's heap: Go heap in use (runtime.MemStats.HeapInuse after
	// runtime.GC) before the pool started and once every lane had a pull
	// waiting, no job published yet; HeapPerLaneKB is the difference ÷
	// tenants, GoroutinesPerLane likewise for goroutines. On embedded
	// servers the difference includes the server's own state for the
	// lanes' subscriptions and pull requests (same heap).
	HeapBeforePoolMB  float64 `json:"heap_inuse_before_worker_mb"`
	HeapLanesIdleMB   float64 `json:"heap_inuse_lanes_idle_mb"`
	HeapPerLaneKB     float64 `json:"worker_heap_per_lane_kb"`
	GoroutinesPerLane float64 `json:"goroutines_per_lane"`
	RSSBeforePoolMB   float64 `json:"rss_before_worker_mb"`
	RSSEndMB          float64 `json:"rss_end_mb"`
	HWMMB             float64 `json:"rss_peak_mb"`
	// ProcessCores is this process's CPU ÷ wall over the window. The
	// profile's split: NATSServerCores is nats-server's CPU (embedded: its
	// labelled goroutines and the unlabelled samples in its code; external:
	// the servers' /varz, when monitored), NATSServerCPUFrom says which
	// ("" when not measured); WorkerLabelledCores the worker-labelled
	// goroutines (its lanes, its NATS and HTTP clients); UnlabelledCores
	// the rest of the unlabelled (GC, runtime); WorkerCores the worker's
	// plus the unlabelled — an upper bound for a worker process of its own.
	ProcessCores        float64    `json:"process_cores"`
	NATSServerCores     float64    `json:"nats_server_cores"`
	NATSServerCPUFrom   string     `json:"nats_server_cpu_from"`
	NATSServerRSSMB     float64    `json:"nats_server_rss_mb,omitempty"`
	NATSServerPeakMB    float64    `json:"nats_server_rss_peak_mb,omitempty"`
	WorkerLabelledCores float64    `json:"worker_cores"`
	UnlabelledCores     float64    `json:"unlabelled_cores"`
	WorkerCores         float64    `json:"worker_cores_upper_bound"`
	CPU                 []CPUShare `json:"cpu,omitempty"`
	Generator           genResult  `json:"generator"`
	// Leaders counts stream and consumer leaders per server (clusters and
	// external servers), read at the end of the window.
	Leaders []NodeLeaders `json:"leaders,omitempty"`
	// The baseline: plain consumers (receive + ack), same tenants, load
	// and layout.
	RawRateMin         float64    `json:"raw_rate_min"`
	RawRateMedian      float64    `json:"raw_rate_median"`
	RawRateMax         float64    `json:"raw_rate_max"`
	RawWithinMedian    int        `json:"raw_tenants_within_3pct_of_median"`
	RawCores           float64    `json:"raw_process_cores"`
	RawNATSServerCores float64    `json:"raw_nats_server_cores"`
	RawCPU             []CPUShare `json:"raw_cpu,omitempty"`
	// CleanupErrors are failures to delete an external server's streams.
	CleanupErrors []string `json:"cleanup_errors,omitempty"`
}

// RunScale runs the scale scenario.
func RunScale(ctx context.Context, cfg ScaleConfig) (_ *Report, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.checkNATS(); err != nil {
		return nil, err
	}
	n := cfg.Tenants
	target := cfg.target()
	r := newReport("scale", fmt.Sprintf("%d tenants in one worker process, %s consumer storage, %s", n, storageName(cfg.ConsumerStorage), target.desc()))
	r.Machine.NATSMode = target.desc()
	cfg.describe(r)
	r.set("baseline", "afterwards, on a fresh server (external: a fresh prefix on the same server): the same tenants' streams, consumers and load for %s, consumed by plain JetStream consumers (receive + ack, no platform call); the first quarter not counted", cfg.BaselineDuration)

	run, err := runScaleWorker(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	figs := run.figs
	if target.URL != "" {
		r.Machine.NATSServer = run.serverVersion
	}
	if n := figs.Generator.Failed + int(run.pubErrs); n > 0 {
		return nil, fmt.Errorf("bench: %d publishes failed (first: %s)", n, figs.Generator.FirstErr)
	}
	if err := scaleBaseline(ctx, cfg, &figs); err != nil {
		return nil, fmt.Errorf("scale baseline: %w", err)
	}
	figs.DeliveredOverRaw = ratio(figs.DeliveredPerSec, figs.RawDeliveredPerSec)
	r.Figures = figs

	within := func(k int) string { return fmt.Sprintf("%d/%d", k, n) }
	t := r.table("per-tenant delivered rate ÷ offered (over the window)", "run", "tenants", "published÷offered (all)", "min", "median", "max", "within ±3 % of median", "within ±3 % of offered", "429s", "process CPU")
	t.row("orgdispatch worker", fmt.Sprint(n), fmtRatio(figs.PublishedRatio), fmtRatio(figs.RateMin), fmtRatio(figs.RateMedian), fmtRatio(figs.RateMax), within(figs.WithinMedian), within(figs.WithinTol), fmt.Sprint(figs.RateLimited), fmt.Sprintf("%.2f cores", figs.ProcessCores))
	t.row("baseline: plain JetStream consumers, receive + ack", fmt.Sprint(n), fmtRatio(figs.RawPublishedRatio), fmtRatio(figs.RawRateMin), fmtRatio(figs.RawRateMedian), fmtRatio(figs.RawRateMax), within(figs.RawWithinMedian), "—", "—", fmt.Sprintf("%.2f cores", figs.RawCores))
	dt := r.table("delivered: orgdispatch ÷ raw JetStream (same layout and storage, this run)", "offered", "orgdispatch delivered", "raw JetStream delivered", "orgdispatch ÷ raw")
	dt.row(fmt.Sprintf("%.0f jobs/s", float64(n)*cfg.PerSec), fmt.Sprintf("%.0f jobs/s", figs.DeliveredPerSec), fmt.Sprintf("%.0f jobs/s", figs.RawDeliveredPerSec), fmtRatio(figs.DeliveredOverRaw))
	st := r.table("start-up", "provision streams + consumers", "every lane pulling (from worker start)", "first request of every tenant (from load start)", "start-up (sum)")
	st.row(fmt.Sprintf("%.2f s", figs.ProvisionSec), fmt.Sprintf("%.2f s", figs.LanesReadySec), fmt.Sprintf("%.2f s", figs.FirstRequestsSec), fmt.Sprintf("%.2f s", figs.StartupSec))
	addScaleResources(r, figs)
	addCPUTables(r, cpuTable{"CPU by component over the window", figs.CPU}, cpuTable{"CPU by component, baseline", figs.RawCPU})
	addLeaders(r, figs.Leaders)
	r.note("load generator: %d jobs published, %d given up (not taken by the server within %s of the schedule's end), publish lag p99 %.0f ms", figs.Generator.Published, figs.Generator.Late, lateGrace, ms(figs.Generator.LagP99))
	noteCPUSplit(r, target)
	noteCleanup(r, figs.CleanupErrors)

	r.target("every tenant within ±3 % of the median tenant", "all", figs.WithinMedian == n, "%d/%d (min %.3f, median %.3f, max %.3f)", figs.WithinMedian, n, figs.RateMin, figs.RateMedian, figs.RateMax)
	r.target("every tenant within ±3 % of its offered rate", "all", figs.WithinTol == n, "%d/%d (min %.3f, max %.3f)", figs.WithinTol, n, figs.RateMin, figs.RateMax)
	r.target("orgdispatch delivered ÷ raw JetStream delivered (same layout, same run)", "≥ 0.95", figs.DeliveredOverRaw >= 0.95, "%.3f (%.0f ÷ %.0f jobs/s)", figs.DeliveredOverRaw, figs.DeliveredPerSec, figs.RawDeliveredPerSec)
	r.target("worker heap per lane (idle lanes, after start-up)", "≤ 50 KB", figs.HeapPerLaneKB <= 50, "%.1f KB (%.0f → %.0f MB heap in use)", figs.HeapPerLaneKB, figs.HeapBeforePoolMB, figs.HeapLanesIdleMB)
	rssWhat := "RSS of the whole process (incl. nats-server, simulator, load generator)"
	if target.URL != "" {
		rssWhat = "RSS of this process (worker, simulator, load generator; the server is external)"
	}
	r.target(rssWhat, "≤ 300 MB", figs.HWMMB <= 300, "peak %.0f MB (%.0f MB before the worker started)", figs.HWMMB, figs.RSSBeforePoolMB)
	if figs.CPU != nil {
		r.target("worker CPU (worker-labelled + unlabelled GC/runtime)", "≤ 1 core", figs.WorkerCores <= 1, "%.2f cores (whole process %.2f)", figs.WorkerCores, figs.ProcessCores)
	} else {
		r.target("process CPU (profiler busy: no split)", "≤ 1 core", figs.ProcessCores <= 1, "%.2f cores", figs.ProcessCores)
	}
	limit := 10.0
	if n > 1000 {
		limit = 30
	}
	r.target("start-up: provision + every lane pulling + first request of every tenant", fmt.Sprintf("≤ %.0f s", limit), figs.StartupSec <= limit, "%.2f s", figs.StartupSec)
	r.finish()
	return r, nil
}

// describe states the scale load's setup in r.
func (cfg ScaleConfig) describe(r *Report) {
	target := cfg.target()
	r.set("tenants", "%d, each offering %.3g jobs/s (open loop, phases spread), rate_per_minute %.0f, concurrency %d, one worker.Pool", cfg.Tenants, cfg.PerSec, float64(cfg.Limit)/cfg.Window.Minutes(), cfg.Concurrency)
	r.set("quota", "%d requests per %s per token, enforced by the simulator (not time-compressed)", cfg.Limit, cfg.Window)
	r.set("simulator", "latency %s, HTTP on 127.0.0.1", cfg.Latency)
	r.set("publishing", "async JetStream publishes with the Publisher's subject, envelope and Nats-Msg-Id (no queued status record)")
	r.set("layout", "%d jobs streams (dispatcher.JobShards; a tenant's by FNV-1a of its id), one durable consumer per tenant, streams and buckets R%d", dispatcher.JobShards, cfg.Replicas)
	r.set("nats", "%s", target.desc())
	r.set("start-up", "provision; the worker starts; once every consumer has a pull waiting (all lanes idle) the heap is measured, then the load starts")
	r.set("measuring window", "%s, starting on the first whole second after every tenant's first request", cfg.Duration)
	r.set("consumer storage", "%s", consumerStorageDesc(cfg.ConsumerStorage))
	switch {
	case target.URL != "":
		mon := "not measured (no --nats-monitor)"
		if len(target.Monitor) > 0 {
			mon = "from /varz of " + fmt.Sprint(target.Monitor) + " (cpu, mem), sampled every second"
		}
		r.set("one process", "the worker, the simulator and the load generator run in this process; the server is external: its CPU and RSS %s", mon)
	default:
		r.set("one process", "the embedded nats-server(s), the simulator and the load generator run in this process too: RSS is the whole process's; CPU is split by goroutine label (CPU profile)")
	}
}

// addScaleResources adds the resources table of a scale run.
func addScaleResources(r *Report, figs ScaleFigures) {
	natsCPU, natsRSS := "not measured", "not measured"
	if figs.NATSServerCPUFrom != "" {
		natsCPU = fmt.Sprintf("%.2f cores", figs.NATSServerCores)
	}
	switch {
	case figs.NATSServerRSSMB > 0:
		natsRSS = fmt.Sprintf("%.0f MB (peak %.0f)", figs.NATSServerRSSMB, figs.NATSServerPeakMB)
	case figs.NATSServerCPUFrom == "cpu profile":
		natsRSS = "not separable (same process)"
	}
	rt := r.table("resources over the window", "process CPU", "nats-server CPU", "worker CPU (labelled)", "worker CPU (incl. unlabelled)", "RSS before worker", "RSS end", "RSS peak (VmHWM)", "nats-server RSS", "worker heap per lane", "goroutines per lane")
	rt.row(fmt.Sprintf("%.2f cores", figs.ProcessCores), natsCPU, fmt.Sprintf("%.2f cores", figs.WorkerLabelledCores), fmt.Sprintf("%.2f cores", figs.WorkerCores),
		fmt.Sprintf("%.0f MB", figs.RSSBeforePoolMB), fmt.Sprintf("%.0f MB", figs.RSSEndMB), fmt.Sprintf("%.0f MB", figs.HWMMB), natsRSS,
		fmt.Sprintf("%.1f KB", figs.HeapPerLaneKB), fmt.Sprintf("%.1f", figs.GoroutinesPerLane))
}

// cpuTable is a titled CPU split; addCPUTables skips one without shares.
type cpuTable struct {
	title  string
	shares []CPUShare
}

// addCPUTables adds a CPU-by-component table per split with shares.
func addCPUTables(r *Report, tables ...cpuTable) {
	for _, c := range tables {
		if c.shares == nil {
			continue
		}
		ct := r.table(c.title, "component", "cores", "share")
		for _, s := range c.shares {
			ct.row(s.Component, fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.0f%%", s.Fraction*100))
		}
	}
}

// addLeaders adds the leaders-per-server table, when there are leaders.
func addLeaders(r *Report, leaders []NodeLeaders) {
	if len(leaders) == 0 {
		return
	}
	lt := r.table("stream and consumer leaders per server (end of the window)", "server", "jobs streams", "other streams (DLQ, audit, buckets)", "tenant consumers")
	for _, l := range leaders {
		lt.row(l.Node, fmt.Sprint(l.JobsStreams), fmt.Sprint(l.OtherStreams), fmt.Sprint(l.Consumers))
	}
}

// noteCPUSplit says how nats-server's CPU was told apart from the worker's.
func noteCPUSplit(r *Report, target natsTarget) {
	switch {
	case target.URL != "" && len(target.Monitor) > 0:
		r.note("CPU split: nats-server's CPU is the external servers' own (/varz cpu, the mean of the per-second samples, summed over servers); this process's CPU profile splits the rest by goroutine label")
	case target.URL != "":
		r.note("CPU split: the server is external and not monitored (--nats-monitor): its CPU and RSS are not measured here; this process's CPU profile splits the rest by goroutine label")
	default:
		if target.Cluster > 1 {
			r.note("the %d nodes' goroutines all carry the nats-server label: nats-server's CPU is the cluster's, all nodes together", target.Cluster)
		}
		r.note("CPU split: every component is started under a goroutine label (component=worker, nats-server, simulator, loadgen, raw-consumer) that the goroutines it starts inherit; nats-server's CPU is the samples labelled nats-server (its client, route and JetStream goroutines, including those it labels itself by account/stream/consumer) plus the unlabelled samples with a nats-server function on the stack (%q: the goroutines the runtime starts for time.AfterFunc timers inherit no label); the worker's is the worker-labelled samples; \"unlabelled\" is what remains (GC, runtime), counted in the worker's upper bound", compNATSUnlabelled)
	}
}

// noteCleanup reports streams of an external server left behind.
func noteCleanup(r *Report, errs []string) {
	for _, e := range errs {
		r.note("cleanup failed, streams may be left on the external server: %s", e)
	}
}

// scaleRun is what one worker run of the scale load measured.
type scaleRun struct {
	figs    ScaleFigures // the worker's figures; the baseline's are left zero
	rates   []float64    // per tenant: delivered ÷ offered over the window
	rec     *recorder
	w0, w1  time.Duration
	pubErrs int64 // async publishes the server refused
	flood   *floodOutcome
	shards  []int // per tenant: its jobs stream's shard
	// serverVersion is the version the server reports.
	serverVersion string
}

// runScaleWorker runs the scale load against an orgdispatch worker on a
// fresh env and measures it. With fl, tenant fl.tenant offers no steady
// load and has fl.backlog as its max_backlog, and floods when fl.flood.
func runScaleWorker(ctx context.Context, cfg ScaleConfig, fl *floodPlan) (_ *scaleRun, err error) {
	n := cfg.Tenants
	tids := ids(n)
	target := cfg.target()
	e, err := newEnvOn(ctx, target, cfg.Dir, platformtest.Config{
		Clients: simClients(tids), Limit: cfg.Limit, Window: cfg.Window, Scope: platformtest.ScopeToken,
		Latency: cfg.Latency, AutoCreate: true,
	}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()
	ts := make([]tenants.Tenant, n)
	perMin := int(math.Round(float64(cfg.Limit) / cfg.Window.Minutes()))
	for i, id := range tids {
		ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: perMin, concurrency: cfg.Concurrency})
	}
	if fl != nil {
		ts[fl.tenant].MaxBacklog = fl.backlog
	}
	run := &scaleRun{shards: make([]int, n), serverVersion: e.nc.ConnectedServerVersion()}
	for i, id := range tids {
		run.shards[i] = dispatcher.ShardOf(id)
	}
	figs := &run.figs
	*figs = ScaleFigures{Tenants: n, PerSec: cfg.PerSec, ConsumerStorage: storageName(cfg.ConsumerStorage), NATS: target.desc(), Replicas: cfg.Replicas, JobShards: dispatcher.JobShards}
	streams := dispatcher.StreamConfig{ConsumerStorage: cfg.ConsumerStorage, Replicas: cfg.Replicas}

	t0 := time.Now()
	const bucket = time.Second
	rec := newRecorder(t0, n, 2*cfg.StartupTimeout+cfg.Duration+30*time.Second, bucket, 0)
	run.rec = rec
	e.observe(rec)
	if err := dispatcher.Provision(ctx, e.js, e.names, streams, ts); err != nil {
		return nil, fmt.Errorf("bench: provision: %w", err)
	}
	figs.ProvisionSec = time.Since(t0).Seconds()
	figs.RSSBeforePoolMB = readMemStatus().RSSMB
	heap0, g0 := heapInUse()

	poolStart := time.Now()
	w, err := e.startWorker(ctx, "bench-worker", ts, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if w != nil {
			err = errJoin(err, w.stop())
		}
	}()
	// Start-up, 1: every lane pulling, no job published yet.
	consumers := make([]string, n)
	for i, id := range tids {
		consumers[i] = e.names.Consumer(id)
	}
	if err := waitPullingEvery(ctx, e.js, e.names, consumers, 1, cfg.StartupTimeout, 100*time.Millisecond); err != nil {
		return nil, err
	}
	figs.LanesReadySec = time.Since(poolStart).Seconds()
	heap1, g1 := heapInUse()
	figs.HeapBeforePoolMB, figs.HeapLanesIdleMB = float64(heap0)/(1<<20), float64(heap1)/(1<<20)
	figs.HeapPerLaneKB = (float64(heap1) - float64(heap0)) / float64(n) / 1024
	figs.GoroutinesPerLane = float64(g1-g0) / float64(n)

	pub, pubErrs, err := e.asyncPublisher(ctx, tids)
	if err != nil {
		return nil, err
	}
	flows := make([]flow, n)
	active := 0
	for i := range flows {
		flows[i] = flow{tenant: i, rate: cfg.PerSec, phase: time.Duration(float64(i) / float64(n) / cfg.PerSec * float64(time.Second))}
		if fl != nil && i == fl.tenant {
			flows[i].rate = 0
			continue
		}
		active++
	}
	loadStart := time.Now()
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan genResult, 1)
	withComponent(genCtx, compLoadgen, func(ctx context.Context) {
		// Bounded: the schedule ends after the longest start-up plus the
		// window; normally it is cancelled at the window's end.
		end := loadStart.Add(cfg.StartupTimeout + cfg.Duration + 5*time.Second)
		go func() { genDone <- runOpenLoop(ctx, flows, loadStart, end, 16, rec, pub) }()
	})

	// Start-up, 2: until every tenant's first request reached the simulator.
	deadline := loadStart.Add(cfg.StartupTimeout)
	for rec.firstCount.Load() < int64(active) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopGen()
			<-genDone
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("bench: only %d of %d tenants made a request within %s", rec.firstCount.Load(), active, cfg.StartupTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var last time.Duration
	for i := range n {
		if f, ok := rec.first(i); ok {
			last = max(last, f)
		}
	}
	figs.FirstRequestsSec = (last - loadStart.Sub(t0)).Seconds()
	figs.FromPoolSec = figs.LanesReadySec + figs.FirstRequestsSec
	figs.StartupSec = figs.ProvisionSec + figs.FromPoolSec

	// The measuring window.
	w0 := (rec.since(time.Now())/bucket + 1) * bucket
	w1 := w0 + cfg.Duration
	run.w0, run.w1 = w0, w1
	time.Sleep(time.Until(t0.Add(w0)))
	cw := startCPUWindow(ctx, target)
	var floodDone chan floodOutcome
	if fl != nil && fl.flood {
		floodDone = make(chan floodOutcome, 1)
		withComponent(genCtx, compLoadgen, func(ctx context.Context) {
			go func() { floodDone <- fl.publish(ctx, e, tids[fl.tenant], rec) }()
		})
	}
	time.Sleep(time.Until(t0.Add(w1)))
	cf, err := cw.stop(cfg.ProfileDir, profileName("scale", fl))
	if err != nil {
		return nil, err
	}
	cf.fill(figs)
	mem := readMemStatus()
	figs.RSSEndMB, figs.HWMMB = mem.RSSMB, mem.HWMMB
	if cfg.ProfileDir != "" {
		if err := writeHeapProfile(filepath.Join(cfg.ProfileDir, profileName("scale", fl)+"-heap.pprof")); err != nil {
			return nil, err
		}
	}
	if target.URL != "" || target.Cluster > 1 {
		if figs.Leaders, err = leaderSpread(ctx, e.js, e.names); err != nil {
			return nil, err
		}
	}
	if floodDone != nil {
		select {
		case o := <-floodDone:
			run.flood = &o
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	stopGen()
	figs.Generator = <-genDone
	run.pubErrs = pubErrs.Load()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	run.rates = make([]float64, n)
	var rates []float64
	pubTotal, okTotal := 0, 0
	for i := range n {
		ok := rec.count(i, w0, w1, countOK)
		run.rates[i] = float64(ok) / cfg.Duration.Seconds() / cfg.PerSec
		if flows[i].rate == 0 {
			continue
		}
		rates = append(rates, run.rates[i])
		okTotal += ok
		pubTotal += rec.count(i, w0, w1, countPublished)
		figs.RateLimited += rec.count(i, w0, w1, count429)
	}
	st := rateStats(rates)
	figs.RateMin, figs.RateMedian, figs.RateMax, figs.WithinTol, figs.WithinMedian = st.min, st.median, st.max, st.withinOffered, st.withinMedian
	figs.PublishedRatio = float64(pubTotal) / (float64(active) * cfg.PerSec * cfg.Duration.Seconds())
	figs.DeliveredPerSec = float64(okTotal) / cfg.Duration.Seconds()
	err = w.stop()
	w = nil
	if cerr := e.shutdown(); cerr != nil {
		figs.CleanupErrors = append(figs.CleanupErrors, cerr.Error())
	}
	if err != nil {
		return nil, err
	}
	return run, nil
}

// profileName names a scale run's profile files.
func profileName(scenario string, fl *floodPlan) string {
	switch {
	case fl == nil:
		return scenario
	case fl.flood:
		return "flood-with"
	default:
		return "flood-without"
	}
}

// rateSummary summarises per-tenant rate ratios (delivered ÷ offered).
type rateSummary struct {
	min, median, max, mean float64
	// How many are within ±3 % of 1 (the offered rate) and of the median.
	withinOffered, withinMedian int
}

func rateStats(rates []float64) rateSummary {
	if len(rates) == 0 {
		return rateSummary{}
	}
	var s rateSummary
	s.min, s.median, s.max = spread(rates)
	sum := 0.0
	for _, x := range rates {
		sum += x
		if math.Abs(x-1) <= 0.03 {
			s.withinOffered++
		}
		if math.Abs(x-s.median) <= 0.03*s.median {
			s.withinMedian++
		}
	}
	s.mean = sum / float64(len(rates))
	return s
}

// heapInUse collects garbage, then returns the Go heap in use and the
// number of goroutines.
func heapInUse() (uint64, int) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, runtime.NumGoroutine()
}

// cpuWindow measures CPU over one window: the process's (getrusage), its
// split by component (a CPU profile, when the profiler is free) and
// external servers' (their /varz), when monitors are given.
type cpuWindow struct {
	cpu0     time.Duration
	c0       time.Time
	prof     *cpuProfile
	varz     *varzSampler
	embedded bool
}

func startCPUWindow(ctx context.Context, target natsTarget) *cpuWindow {
	w := &cpuWindow{varz: startVarz(ctx, target.Monitor), embedded: target.URL == ""}
	w.cpu0, w.c0 = cpuTime(), time.Now()
	w.prof, _ = startCPUProfile() // busy (go test -cpuprofile): no split
	return w
}

// cpuFigures is what a cpuWindow measured.
type cpuFigures struct {
	process          float64
	shares           []CPUShare
	nats             float64
	natsFrom         string
	natsRSS, natsHWM float64
	worker, unl      float64
}

// stop ends the window; the profile is written to dir/name.pprof when dir
// is set.
func (w *cpuWindow) stop(dir, name string) (cpuFigures, error) {
	cpu1, c1 := cpuTime(), time.Now()
	var f cpuFigures
	f.process = (cpu1 - w.cpu0).Seconds() / c1.Sub(w.c0).Seconds()
	if w.prof != nil {
		var err error
		if f.shares, err = w.prof.stopTo(dir, name); err != nil {
			return f, err
		}
	}
	for _, s := range f.shares {
		switch s.Component {
		case compWorker:
			f.worker += s.Cores
		case compOther:
			f.unl += s.Cores
		case compNATS, compNATSUnlabelled:
			f.nats += s.Cores
		}
	}
	if f.shares != nil && w.embedded {
		f.natsFrom = "cpu profile"
	}
	if w.varz != nil {
		u, err := w.varz.stop()
		if err != nil {
			return f, err
		}
		f.nats, f.natsFrom, f.natsRSS, f.natsHWM = u.Cores, "monitor /varz", u.RSSMB, u.PeakMB
	}
	return f, nil
}

// fill copies the worker run's CPU figures into figs.
func (f cpuFigures) fill(figs *ScaleFigures) {
	figs.ProcessCores, figs.CPU = f.process, f.shares
	figs.NATSServerCores, figs.NATSServerCPUFrom = f.nats, f.natsFrom
	figs.NATSServerRSSMB, figs.NATSServerPeakMB = f.natsRSS, f.natsHWM
	figs.WorkerLabelledCores, figs.UnlabelledCores = f.worker, f.unl
	figs.WorkerCores = f.worker + f.unl
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory"
	}
	return "file"
}

// consumerStorageDesc says what the tenant consumers' storage costs.
func consumerStorageDesc(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory (ORGDISPATCH_CONSUMER_STORAGE=memory), the default: consumer state is not written to disk; the jobs streams are on file either way"
	}
	return "file (ORGDISPATCH_CONSUMER_STORAGE=file): nats-server writes each consumer's state to its own file on every delivery and ack"
}

// writeHeapProfile writes the in-use heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	return f.Close()
}

// spread returns the minimum, median and maximum of xs.
func spread(xs []float64) (lo, mid, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[0], percentileF(s, 0.5), s[len(s)-1]
}

// scaleBaseline offers the scale load to plain consumers on a fresh server
// (or prefix) with the same layout, storage and replicas, and records the
// per-tenant receipt rates.
func scaleBaseline(ctx context.Context, cfg ScaleConfig, figs *ScaleFigures) (err error) {
	n := cfg.Tenants
	tids := ids(n)
	target := cfg.target()
	e, err := newEnvOn(ctx, target, cfg.Dir, platformtest.Config{Clients: simClients(tids)}, cfg.Logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := e.shutdown(); cerr != nil {
			figs.CleanupErrors = append(figs.CleanupErrors, cerr.Error())
		}
	}()
	ts := make([]tenants.Tenant, n)
	consumers := make([]string, n)
	perMin := int(math.Round(float64(cfg.Limit) / cfg.Window.Minutes()))
	for i, id := range tids {
		ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: perMin, concurrency: cfg.Concurrency})
		consumers[i] = e.names.Consumer(id)
	}
	if err := dispatcher.Provision(ctx, e.js, e.names, dispatcher.StreamConfig{ConsumerStorage: cfg.ConsumerStorage, Replicas: cfg.Replicas}, ts); err != nil {
		return fmt.Errorf("bench: provision: %w", err)
	}
	start := time.Now().Add(200 * time.Millisecond)
	d := cfg.BaselineDuration
	const bucket = 100 * time.Millisecond
	rec := newRecorder(start, n, d+5*time.Second, bucket, 0)
	stop, err := startRaw(ctx, e, consumers, cfg.Concurrency, func(m jetstream.Msg) {
		observeReceipt(rec, m)
		_ = m.Ack()
	})
	if err != nil {
		return err
	}
	defer stop()
	pub, pubErrs, err := e.asyncPublisher(ctx, tids)
	if err != nil {
		return err
	}
	flows := make([]flow, n)
	for i := range flows {
		flows[i] = flow{tenant: i, rate: cfg.PerSec, phase: time.Duration(float64(i) / float64(n) / cfg.PerSec * float64(time.Second))}
	}
	from := (d/4 + bucket - 1) / bucket * bucket
	genDone := make(chan genResult, 1)
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		go func() { genDone <- runOpenLoop(ctx, flows, start, start.Add(d), 16, rec, pub) }()
	})
	time.Sleep(time.Until(start.Add(from)))
	cw := startCPUWindow(ctx, target)
	gen := <-genDone
	cf, err := cw.stop(cfg.ProfileDir, "scale-baseline")
	if err != nil {
		return err
	}
	figs.RawCPU, figs.RawCores, figs.RawNATSServerCores = cf.shares, cf.process, cf.nats
	if gen.Failed > 0 || pubErrs.Load() > 0 {
		return fmt.Errorf("bench: %d publishes failed (%d acks failed)", gen.Failed, pubErrs.Load())
	}
	rates := make([]float64, n)
	pubTotal, okTotal := 0, 0
	for i := range n {
		pubTotal += rec.count(i, from, d, countPublished)
		ok := rec.count(i, from, d, countOK)
		okTotal += ok
		rates[i] = float64(ok) / (d - from).Seconds() / cfg.PerSec
	}
	figs.RawPublishedRatio = float64(pubTotal) / (float64(n) * cfg.PerSec * (d - from).Seconds())
	st := rateStats(rates)
	figs.RawRateMin, figs.RawRateMedian, figs.RawRateMax, figs.RawWithinMedian = st.min, st.median, st.max, st.withinMedian
	figs.RawDeliveredPerSec = float64(okTotal) / (d - from).Seconds()
	return nil
}

// asyncPublisher publishes jobs with asynchronous JetStream publishes (the
// Publisher's subject, envelope and message id, without its queued status
// record): the load generator of the high-rate scenarios. Failed publishes
// are counted in the returned counter.
func (e *env) asyncPublisher(ctx context.Context, tids []string) (publishFunc, *atomic.Int64, error) {
	var errs atomic.Int64
	js, err := jetstream.New(e.nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }))
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	return func(ctx context.Context, tenant int, jobID string, params []byte) error {
		job := dispatcher.Job{ID: jobID, Tenant: tids[tenant], Op: platform.OpCampaignGet, Params: params}
		data, err := jsonMarshal(job)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(e.names.JobSubject(tids[tenant], platform.OpCampaignGet))
		msg.Data = data
		msg.Header.Set(dispatcher.HeaderJobID, jobID)
		return publishAsync(ctx, js, msg, dispatcher.MsgID(tids[tenant], jobID))
	}, &errs, nil
}
