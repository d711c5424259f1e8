package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
		Summary:         "1,000 tenants × 5 requests/s in one worker process",
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
	// Tenants [1000], each offering PerSec jobs/s [5].
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
	// StartupTimeout bounds the wait for every tenant's first request [60 s].
	StartupTimeout time.Duration
	// BaselineDuration is how long the same load runs against plain
	// JetStream consumers on a fresh server after the worker's run (the
	// same run's baseline: what JetStream alone delivers with this many
	// consumers) [20 s; the first quarter is not counted].
	BaselineDuration time.Duration
}

func (c ScaleConfig) withDefaults() ScaleConfig {
	c.Duration = c.duration(60 * time.Second)
	if c.Tenants <= 0 {
		c.Tenants = 1000
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
	return c
}

// ScaleFigures are the scale scenario's measurements.
type ScaleFigures struct {
	Tenants int `json:"tenants"`
	// ConsumerStorage is the tenant consumers' storage: "file" or "memory".
	ConsumerStorage string `json:"consumer_storage"`
	// Achieved rate ÷ offered rate over the measuring window, across tenants.
	RateMin    float64 `json:"rate_min"`
	RateMedian float64 `json:"rate_median"`
	RateMax    float64 `json:"rate_max"`
	WithinTol  int     `json:"tenants_within_3pct"`
	// PublishedRatio is what the load generator got the server to take in
	// the window ÷ what was offered (all tenants): below 1 when the server
	// could not take jobs as fast as they were due.
	PublishedRatio    float64 `json:"published_over_offered"`
	RawPublishedRatio float64 `json:"raw_published_over_offered"`
	RateLimited       int     `json:"rate_limited"`
	// Start-up, from before provisioning: consumers provisioned, worker
	// started, every tenant's first request seen by the simulator.
	ProvisionSec    float64 `json:"provision_sec"`
	StartupSec      float64 `json:"startup_sec"`
	FromPoolSec     float64 `json:"first_requests_after_pool_start_sec"`
	RSSBeforePoolMB float64 `json:"rss_before_worker_mb"`
	RSSEndMB        float64 `json:"rss_end_mb"`
	HWMMB           float64 `json:"rss_peak_mb"`
	// ProcessCores is the whole process's CPU ÷ wall over the window;
	// WorkerCores the worker's labelled CPU plus the unlabelled (GC,
	// runtime) — an upper bound for a worker process of its own.
	ProcessCores float64    `json:"process_cores"`
	WorkerCores  float64    `json:"worker_cores_upper_bound"`
	CPU          []CPUShare `json:"cpu,omitempty"`
	Generator    genResult  `json:"generator"`
	// The baseline: plain consumers (receive + ack), same tenants and load.
	RawRateMin    float64    `json:"raw_rate_min"`
	RawRateMedian float64    `json:"raw_rate_median"`
	RawRateMax    float64    `json:"raw_rate_max"`
	RawCores      float64    `json:"raw_process_cores"`
	RawCPU        []CPUShare `json:"raw_cpu,omitempty"`
}

// RunScale runs the scale scenario.
func RunScale(ctx context.Context, cfg ScaleConfig) (_ *Report, err error) {
	cfg = cfg.withDefaults()
	n := cfg.Tenants
	r := newReport("scale", fmt.Sprintf("%d tenants in one worker process, %s consumer storage", n, storageName(cfg.ConsumerStorage)))
	r.set("tenants", "%d, each offering %.3g jobs/s (open loop, phases spread), rate_per_minute %.0f, concurrency %d, one worker.Pool", n, cfg.PerSec, float64(cfg.Limit)/cfg.Window.Minutes(), cfg.Concurrency)
	r.set("quota", "%d requests per %s per token, enforced by the simulator (not time-compressed)", cfg.Limit, cfg.Window)
	r.set("simulator", "latency %s, HTTP on 127.0.0.1", cfg.Latency)
	r.set("publishing", "async JetStream publishes with the Publisher's subject, envelope and Nats-Msg-Id (no queued status record)")
	r.set("measuring window", "%s, starting on the first whole second after every tenant's first request", cfg.Duration)
	r.set("baseline", "afterwards, on a fresh server: the same tenants' consumers and load for %s, consumed by plain JetStream consumers (receive + ack, no platform call); the first quarter not counted", cfg.BaselineDuration)
	r.set("consumer storage", "%s", consumerStorageDesc(cfg.ConsumerStorage))
	r.set("one process", "the embedded nats-server, the simulator and the load generator run in this process too: RSS is the whole process's; CPU is split by goroutine label (CPU profile)")

	tids := ids(n)
	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{
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
	figs := ScaleFigures{Tenants: n, ConsumerStorage: storageName(cfg.ConsumerStorage)}
	streams := dispatcher.StreamConfig{ConsumerStorage: cfg.ConsumerStorage}

	t0 := time.Now()
	const bucket = time.Second
	rec := newRecorder(t0, n, cfg.StartupTimeout+cfg.Duration+10*time.Second, bucket, 0)
	e.observe(rec)
	if err := dispatcher.Provision(ctx, e.js, benchNames, streams, ts); err != nil {
		return nil, fmt.Errorf("bench: provision: %w", err)
	}
	figs.ProvisionSec = time.Since(t0).Seconds()
	figs.RSSBeforePoolMB = readMemStatus().RSSMB

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
	pub, pubErrs, err := e.asyncPublisher(ctx, tids)
	if err != nil {
		return nil, err
	}
	flows := make([]flow, n)
	for i := range flows {
		flows[i] = flow{tenant: i, rate: cfg.PerSec, phase: time.Duration(float64(i) / float64(n) / cfg.PerSec * float64(time.Second))}
	}
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan genResult, 1)
	withComponent(genCtx, compLoadgen, func(ctx context.Context) {
		// Bounded: the schedule ends after the longest start-up plus the
		// window; normally it is cancelled at the window's end.
		end := poolStart.Add(cfg.StartupTimeout + cfg.Duration + 5*time.Second)
		go func() { genDone <- runOpenLoop(ctx, flows, poolStart, end, 16, rec, pub) }()
	})

	// Start-up: until every tenant's first request reached the simulator.
	deadline := poolStart.Add(cfg.StartupTimeout)
	for rec.firstCount.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopGen()
			<-genDone
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("bench: only %d of %d tenants made a request within %s", rec.firstCount.Load(), n, cfg.StartupTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var last time.Duration
	for i := range n {
		f, _ := rec.first(i)
		last = max(last, f)
	}
	figs.StartupSec = last.Seconds()
	figs.FromPoolSec = (last - poolStart.Sub(t0)).Seconds()

	// The measuring window.
	w0 := (rec.since(time.Now())/bucket + 1) * bucket
	w1 := w0 + cfg.Duration
	time.Sleep(time.Until(t0.Add(w0)))
	cpu0, c0 := cpuTime(), time.Now()
	prof, perr := startCPUProfile()
	time.Sleep(time.Until(t0.Add(w1)))
	cpu1, c1 := cpuTime(), time.Now()
	if perr == nil {
		if figs.CPU, err = prof.stopTo(cfg.ProfileDir, "scale"); err != nil {
			return nil, err
		}
	}
	mem := readMemStatus()
	figs.RSSEndMB, figs.HWMMB = mem.RSSMB, mem.HWMMB
	if cfg.ProfileDir != "" {
		if err := writeHeapProfile(filepath.Join(cfg.ProfileDir, "scale-heap.pprof")); err != nil {
			return nil, err
		}
	}
	stopGen()
	figs.Generator = <-genDone
	if n := pubErrs.Load(); n > 0 {
		return nil, fmt.Errorf("bench: %d async publishes failed", n)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	wall := c1.Sub(c0)
	figs.ProcessCores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	for _, s := range figs.CPU {
		if s.Component == compWorker || s.Component == compOther {
			figs.WorkerCores += s.Cores
		}
	}
	rates := make([]float64, n)
	pubTotal := 0
	for i := range n {
		pubTotal += rec.count(i, w0, w1, countPublished)
		rates[i] = float64(rec.count(i, w0, w1, countOK)) / cfg.Duration.Seconds() / cfg.PerSec
		if math.Abs(rates[i]-1) <= 0.03 {
			figs.WithinTol++
		}
		figs.RateLimited += rec.count(i, w0, w1, count429)
	}
	figs.RateMin, figs.RateMedian, figs.RateMax = spread(rates)
	figs.PublishedRatio = float64(pubTotal) / (float64(n) * cfg.PerSec * cfg.Duration.Seconds())
	err = w.stop()
	w = nil
	e.close()
	if err != nil {
		return nil, err
	}
	if err := scaleBaseline(ctx, cfg, &figs); err != nil {
		return nil, fmt.Errorf("scale baseline: %w", err)
	}
	r.Figures = figs

	t := r.table("per-tenant achieved rate ÷ offered (over the window)", "run", "tenants", "published÷offered (all)", "min", "median", "max", "within ±3 %", "429s", "process CPU")
	t.row("orgdispatch worker", fmt.Sprint(n), fmtRatio(figs.PublishedRatio), fmtRatio(figs.RateMin), fmtRatio(figs.RateMedian), fmtRatio(figs.RateMax), fmt.Sprintf("%d/%d", figs.WithinTol, n), fmt.Sprint(figs.RateLimited), fmt.Sprintf("%.2f cores", figs.ProcessCores))
	t.row("baseline: plain JetStream consumers, receive + ack", fmt.Sprint(n), fmtRatio(figs.RawPublishedRatio), fmtRatio(figs.RawRateMin), fmtRatio(figs.RawRateMedian), fmtRatio(figs.RawRateMax), "—", "—", fmt.Sprintf("%.2f cores", figs.RawCores))
	st := r.table("start-up and resources", "provision consumers", "first request of every tenant (from start)", "… from worker start", "RSS before worker", "RSS end", "RSS peak (VmHWM)", "process CPU", "worker CPU (incl. unlabelled)")
	st.row(fmt.Sprintf("%.2f s", figs.ProvisionSec), fmt.Sprintf("%.2f s", figs.StartupSec), fmt.Sprintf("%.2f s", figs.FromPoolSec),
		fmt.Sprintf("%.0f MB", figs.RSSBeforePoolMB), fmt.Sprintf("%.0f MB", figs.RSSEndMB), fmt.Sprintf("%.0f MB", figs.HWMMB),
		fmt.Sprintf("%.2f cores", figs.ProcessCores), fmt.Sprintf("%.2f cores", figs.WorkerCores))
	for _, c := range []struct {
		title  string
		shares []CPUShare
	}{{"CPU by component over the window", figs.CPU}, {"CPU by component, baseline", figs.RawCPU}} {
		if c.shares == nil {
			continue
		}
		ct := r.table(c.title, "component", "cores", "share")
		for _, s := range c.shares {
			ct.row(s.Component, fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.0f%%", s.Fraction*100))
		}
	}
	r.note("load generator: %d jobs published, %d given up (not taken by the server within %s of the schedule's end), publish lag p99 %.0f ms", figs.Generator.Published, figs.Generator.Late, lateGrace, ms(figs.Generator.LagP99))
	r.target("every tenant within ±3 % of its offered rate", "all", figs.WithinTol == n, "%d/%d (min %.3f, max %.3f)", figs.WithinTol, n, figs.RateMin, figs.RateMax)
	r.target("RSS of the whole process (incl. nats-server, simulator, load generator)", "≤ 300 MB", figs.HWMMB <= 300, "peak %.0f MB (%.0f MB before the worker started)", figs.HWMMB, figs.RSSBeforePoolMB)
	if figs.CPU != nil {
		r.target("worker CPU (worker-labelled + unlabelled GC/runtime)", "≤ 1 core", figs.WorkerCores <= 1, "%.2f cores (whole process %.2f)", figs.WorkerCores, figs.ProcessCores)
	} else {
		r.target("process CPU (profiler busy: no split)", "≤ 1 core", figs.ProcessCores <= 1, "%.2f cores", figs.ProcessCores)
	}
	r.target("start-up: provision + first request of every tenant", "≤ 10 s", figs.StartupSec <= 10, "%.2f s", figs.StartupSec)
	r.finish()
	return r, nil
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
		return "memory (ORGDISPATCH_CONSUMER_STORAGE=memory): consumer state is not written to disk; the jobs stream is on file either way"
	}
	return "file (the default, ORGDISPATCH_CONSUMER_STORAGE=file): nats-server writes each consumer's state to its own file on every delivery and ack"
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
// and records the per-tenant receipt rates.
func scaleBaseline(ctx context.Context, cfg ScaleConfig, figs *ScaleFigures) error {
	n := cfg.Tenants
	tids := ids(n)
	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{Clients: simClients(tids)}, cfg.Logger)
	if err != nil {
		return err
	}
	defer e.close()
	ts := make([]tenants.Tenant, n)
	consumers := make([]string, n)
	perMin := int(math.Round(float64(cfg.Limit) / cfg.Window.Minutes()))
	for i, id := range tids {
		ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: perMin, concurrency: cfg.Concurrency})
		consumers[i] = benchNames.Consumer(id)
	}
	if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{ConsumerStorage: cfg.ConsumerStorage}, ts); err != nil {
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
	cpu0, c0 := cpuTime(), time.Now()
	prof, perr := startCPUProfile()
	gen := <-genDone
	cpu1, c1 := cpuTime(), time.Now()
	if perr == nil {
		if figs.RawCPU, err = prof.stopTo(cfg.ProfileDir, "scale-baseline"); err != nil {
			return err
		}
	}
	if gen.Failed > 0 || pubErrs.Load() > 0 {
		return fmt.Errorf("bench: %d publishes failed (%d acks failed)", gen.Failed, pubErrs.Load())
	}
	figs.RawCores = (cpu1 - cpu0).Seconds() / c1.Sub(c0).Seconds()
	rates := make([]float64, n)
	pubTotal := 0
	for i := range n {
		pubTotal += rec.count(i, from, d, countPublished)
		rates[i] = float64(rec.count(i, from, d, countOK)) / (d - from).Seconds() / cfg.PerSec
	}
	figs.RawPublishedRatio = float64(pubTotal) / (float64(n) * cfg.PerSec * (d - from).Seconds())
	figs.RawRateMin, figs.RawRateMedian, figs.RawRateMax = spread(rates)
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
		msg := nats.NewMsg(benchNames.JobSubject(tids[tenant], platform.OpCampaignGet))
		msg.Data = data
		msg.Header.Set(dispatcher.HeaderJobID, jobID)
		return publishAsync(ctx, js, msg, dispatcher.MsgID(tids[tenant], jobID))
	}, &errs, nil
}
