package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "overhead",
		Summary:         "jobs/s end to end with no quota and a zero-latency platform, against the raw JetStream ceiling",
		DefaultDuration: 10 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunOverhead(ctx, OverheadConfig{Options: o, SizedTransport: true})
		},
	})
}

// OverheadConfig sizes the overhead scenario; zero fields take the defaults
// in brackets. Duration is the length of each of its three phases per tenant
// count [10 s].
type OverheadConfig struct {
	Options
	// TenantCounts are the tenant counts measured, one after the other
	// [1, 100].
	TenantCounts []int
	// ConcurrencyOne is the tenant's concurrency when there is one tenant
	// [256]; ConcurrencyMany each tenant's otherwise [4].
	ConcurrencyOne, ConcurrencyMany int
	// RatePerMinute is every tenant's configured rate: high enough never to
	// bind [6,000,000 = 100,000/s].
	RatePerMinute int
	// Warmup is skipped at the start of each measured phase [1 s].
	Warmup time.Duration
	// MaxBacklog bounds jobs published but not completed [20,000];
	// MaxPending bounds unacknowledged async publishes [4,096].
	MaxBacklog int64
	MaxPending int
	// SizedTransport adds phase (4): end to end with an HTTP transport that
	// keeps an idle connection for every request that can be in flight
	// (the command line sets it).
	SizedTransport bool
}

func (c OverheadConfig) withDefaults() OverheadConfig {
	c.Duration = c.duration(10 * time.Second)
	if len(c.TenantCounts) == 0 {
		c.TenantCounts = []int{1, 100}
	}
	if c.ConcurrencyOne <= 0 {
		c.ConcurrencyOne = 256
	}
	if c.ConcurrencyMany <= 0 {
		c.ConcurrencyMany = 4
	}
	if c.RatePerMinute <= 0 {
		c.RatePerMinute = 6_000_000
	}
	if c.Warmup <= 0 || c.Warmup >= c.Duration {
		c.Warmup = min(time.Second, c.Duration/4)
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 20_000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	return c
}

// PhaseFigures are one measured phase's throughput and CPU.
type PhaseFigures struct {
	PerSec    float64 `json:"jobs_per_sec"`
	Completed int64   `json:"completed"` // in the measured part of the phase
	Published int64   `json:"published"` // during the whole phase
	// ProcessCores is the process's CPU time (getrusage) ÷ wall time.
	ProcessCores float64 `json:"process_cores"`
	// CPU splits the sampled CPU by component (nil when the profiler was
	// busy); CPUPerJobUs is each component's CPU µs per completed job.
	CPU         []CPUShare         `json:"cpu,omitempty"`
	CPUPerJobUs map[string]float64 `json:"cpu_per_job_us,omitempty"`
}

// OverheadCase is one tenant count's measurements.
type OverheadCase struct {
	Tenants     int          `json:"tenants"`
	Concurrency int          `json:"concurrency_per_tenant"`
	Raw         PhaseFigures `json:"raw"`
	EndToEnd    PhaseFigures `json:"end_to_end"`
	Ratio       float64      `json:"ratio_to_raw"`
	// At half the measured end-to-end rate, open loop, each on a fresh
	// server: publish→call through the worker, and publish→receipt by plain
	// consumers (the baseline).
	HalfOffered    float64   `json:"half_load_offered_per_sec"`
	HalfLatency    Latency   `json:"half_load_publish_to_call"`
	HalfGen        genResult `json:"half_load_generator"`
	HalfRawLatency Latency   `json:"half_load_raw_publish_to_receipt"`
	HalfRawGen     genResult `json:"half_load_raw_generator"`
	// EndToEndSized repeats (2) with an HTTP transport keeping SizedConns
	// idle connections (nil when not run).
	EndToEndSized *PhaseFigures `json:"end_to_end_sized_transport,omitempty"`
	SizedConns    int           `json:"sized_transport_conns,omitempty"`
	RatioSized    float64       `json:"ratio_sized_to_raw,omitempty"`
}

// OverheadFigures are the overhead scenario's measurements.
type OverheadFigures struct {
	Cases []OverheadCase `json:"cases"`
}

// RunOverhead runs the overhead scenario.
func RunOverhead(ctx context.Context, cfg OverheadConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	r := newReport("overhead", "orgdispatch's cost per job against the raw JetStream ceiling")
	r.set("platform", "simulator with no quota and no added latency, HTTP on 127.0.0.1")
	r.set("phases per tenant count", "(1) raw ceiling: async publish + pull consume (Consume, plain Ack) on the same tenant consumers, no platform call; (2) end to end: the same publishing, worker.Pool calls the platform and acks; (3) half of (2)'s rate, open loop, published the same way, on a fresh server: publish→call latency through the worker (from the moment the job is handed to the client library to the simulator's receipt), and as baseline publish→receipt by plain consumers. %s each, the first %s of (1) and (2) not counted", cfg.Duration, cfg.Warmup)
	r.set("publishing", "async JetStream publishes (≤ %d unacknowledged, ≤ %d jobs waiting), the Publisher's subject, envelope and Nats-Msg-Id, without its queued status record", cfg.MaxPending, cfg.MaxBacklog)
	r.set("tenants", "rate_per_minute %d (never binds; note: a tenants file caps it at %d), concurrency %d with one tenant, %d each with more", cfg.RatePerMinute, tenants.MaxRatePerMinute, cfg.ConcurrencyOne, cfg.ConcurrencyMany)
	r.set("job", "campaign.get of the tenant's campaign")
	if cfg.SizedTransport {
		r.set("phase (4)", "(2) again with worker.Config.HTTPClient keeping an idle connection per request in flight (tenants × concurrency), %s", cfg.Duration)
	}
	r.set("CPU", "getrusage for the process; the split by component from a CPU profile with goroutine labels (everything runs in this one process)")
	figs := OverheadFigures{}
	for _, n := range cfg.TenantCounts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := runOverheadCase(ctx, cfg, n)
		if err != nil {
			return nil, fmt.Errorf("overhead, %d tenants: %w", n, err)
		}
		figs.Cases = append(figs.Cases, *c)
	}
	r.Figures = figs
	t := r.table("throughput", "tenants", "concurrency", "raw ceiling jobs/s", "end-to-end jobs/s", "ratio", "process CPU raw/e2e (cores)")
	for _, c := range figs.Cases {
		t.row(fmt.Sprint(c.Tenants), fmt.Sprint(c.Concurrency), fmt.Sprintf("%.0f", c.Raw.PerSec), fmt.Sprintf("%.0f", c.EndToEnd.PerSec), fmtRatio(c.Ratio),
			fmt.Sprintf("%.2f / %.2f", c.Raw.ProcessCores, c.EndToEnd.ProcessCores))
	}
	lt := r.table("latency at half the end-to-end rate (open loop, fresh server each)", "tenants", "offered/s", "p50 publish→call", "p99 publish→call", "max", "raw baseline p50 / p99 publish→receipt", "generator lag p99 (orgdispatch / raw)")
	for _, c := range figs.Cases {
		lt.row(fmt.Sprint(c.Tenants), fmt.Sprintf("%.0f", c.HalfOffered), fmtMs(c.HalfLatency.P50Ms), fmtMs(c.HalfLatency.P99Ms), fmtMs(c.HalfLatency.MaxMs),
			fmtMs(c.HalfRawLatency.P50Ms)+" / "+fmtMs(c.HalfRawLatency.P99Ms), fmt.Sprintf("%.1f / %.1f ms", ms(c.HalfGen.LagP99), ms(c.HalfRawGen.LagP99)))
	}
	if cfg.SizedTransport {
		st := r.table("end to end with an HTTP transport sized to the concurrency (the default keeps 64 idle connections per host)", "tenants", "idle connections", "end-to-end jobs/s", "ratio to raw", "process CPU (cores)")
		for _, c := range figs.Cases {
			if c.EndToEndSized != nil {
				st.row(fmt.Sprint(c.Tenants), fmt.Sprint(c.SizedConns), fmt.Sprintf("%.0f", c.EndToEndSized.PerSec), fmtRatio(c.RatioSized), fmt.Sprintf("%.2f", c.EndToEndSized.ProcessCores))
			}
		}
	}
	for _, c := range figs.Cases {
		phases := []struct {
			name string
			f    PhaseFigures
		}{{"raw", c.Raw}, {"end to end", c.EndToEnd}}
		if c.EndToEndSized != nil {
			phases = append(phases, struct {
				name string
				f    PhaseFigures
			}{"end to end, sized transport", *c.EndToEndSized})
		}
		for _, ph := range phases {
			if ph.f.CPU == nil {
				continue
			}
			ct := r.table(fmt.Sprintf("CPU by component, %d tenant(s), %s", c.Tenants, ph.name), "component", "cores", "share", "CPU µs per job")
			for _, s := range ph.f.CPU {
				ct.row(s.Component, fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.0f%%", s.Fraction*100), fmt.Sprintf("%.1f", ph.f.CPUPerJobUs[s.Component]))
			}
		}
	}
	for _, c := range figs.Cases {
		r.target(fmt.Sprintf("%d tenant(s): end-to-end jobs/s on this machine", c.Tenants), "≥ 10,000", c.EndToEnd.PerSec >= 10_000,
			"%.0f (%.3f of the raw ceiling %.0f)", c.EndToEnd.PerSec, c.Ratio, c.Raw.PerSec)
		p99 := c.HalfLatency.P99Ms
		r.target(fmt.Sprintf("%d tenant(s): p99 publish→call at half load", c.Tenants), "≤ 20 ms", p99 != nil && *p99 <= 20,
			"%s at %.0f jobs/s (raw JetStream baseline p99 %s)", fmtMs(p99), c.HalfOffered, fmtMs(c.HalfRawLatency.P99Ms))
	}
	r.finish()
	return r, nil
}

// overheadEnv is a fresh env with n tenants provisioned for the overhead
// scenario.
func overheadEnv(ctx context.Context, cfg OverheadConfig, n, conc int) (*env, []tenants.Tenant, []string, error) {
	tids := ids(n)
	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{Clients: simClients(tids), AutoCreate: true}, cfg.Logger)
	if err != nil {
		return nil, nil, nil, err
	}
	ts := make([]tenants.Tenant, n)
	consumers := make([]string, n)
	for i, id := range tids {
		ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: cfg.RatePerMinute, concurrency: conc})
		consumers[i] = benchNames.Consumer(id)
	}
	if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{}, ts); err != nil {
		e.close()
		return nil, nil, nil, fmt.Errorf("bench: provision: %w", err)
	}
	return e, ts, consumers, nil
}

// startRaw consumes the tenants' consumers with plain pull consumers on a
// connection of their own, calling onMsg for each message; onMsg acks.
func startRaw(ctx context.Context, e *env, consumers []string, conc int, onMsg func(jetstream.Msg)) (stop func(), err error) {
	rawNC, rawJS, err := e.connect(ctx, compRaw, "bench-raw")
	if err != nil {
		return nil, err
	}
	var ccs []jetstream.ConsumeContext
	stop = func() {
		for _, cc := range ccs {
			cc.Stop()
		}
		rawNC.Close()
	}
	withComponent(ctx, compRaw, func(ctx context.Context) {
		for _, name := range consumers {
			cons, cerr := rawJS.Consumer(ctx, streamOfConsumer(e.names, name), name)
			if cerr != nil {
				err = cerr
				return
			}
			cc, cerr := cons.Consume(onMsg, jetstream.PullMaxMessages(conc))
			if cerr != nil {
				err = cerr
				return
			}
			ccs = append(ccs, cc)
		}
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("bench: raw consumer: %w", err)
	}
	return stop, nil
}

func runOverheadCase(ctx context.Context, cfg OverheadConfig, n int) (*OverheadCase, error) {
	conc := cfg.ConcurrencyMany
	if n == 1 {
		conc = cfg.ConcurrencyOne
	}
	c := &OverheadCase{Tenants: n, Concurrency: conc}
	if err := overheadThroughput(ctx, cfg, c); err != nil {
		return nil, err
	}
	c.HalfOffered = c.EndToEnd.PerSec / 2
	var err error
	if c.HalfRawLatency, c.HalfRawGen, err = halfLoadLatency(ctx, cfg, c, true); err != nil {
		return nil, err
	}
	if c.HalfLatency, c.HalfGen, err = halfLoadLatency(ctx, cfg, c, false); err != nil {
		return nil, err
	}
	return c, nil
}

// overheadThroughput runs the flood phases on one env: (1) raw, (2) end to
// end, (4) end to end with a sized transport.
func overheadThroughput(ctx context.Context, cfg OverheadConfig, c *OverheadCase) (err error) {
	n, conc := c.Tenants, c.Concurrency
	e, ts, consumers, err := overheadEnv(ctx, cfg, n, conc)
	if err != nil {
		return err
	}
	defer e.close()
	tids := ids(n)

	// (1) The raw ceiling.
	var rawDone atomic.Int64
	stopRaw, err := startRaw(ctx, e, consumers, conc, func(m jetstream.Msg) {
		if m.Ack() == nil {
			rawDone.Add(1)
		}
	})
	if err != nil {
		return err
	}
	c.Raw, err = floodPhase(ctx, cfg, e, tids, fmt.Sprintf("overhead-%d-raw", n), rawDone.Load)
	stopRaw()
	if err != nil {
		return err
	}
	purged := map[string]bool{}
	for _, t := range tids {
		name := benchNames.JobsStream(t)
		if purged[name] {
			continue
		}
		purged[name] = true
		st, err := e.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("bench: jobs stream: %w", err)
		}
		if err := st.Purge(ctx); err != nil {
			return fmt.Errorf("bench: purge after the raw phase: %w", err)
		}
	}

	// (2) End to end through the worker, with the platform client's default
	// HTTP transport.
	h := newHooks()
	w, err := e.startWorker(ctx, "bench-worker", ts, h)
	if err != nil {
		return err
	}
	defer func() {
		if w != nil {
			err = errJoin(err, w.stop())
		}
	}()
	if err := waitPulling(ctx, e.js, consumers, 1, 30*time.Second); err != nil {
		return err
	}
	c.EndToEnd, err = floodPhase(ctx, cfg, e, tids, fmt.Sprintf("overhead-%d-e2e", n), h.succeededCount)
	if err != nil {
		return err
	}
	c.Ratio = ratio(c.EndToEnd.PerSec, c.Raw.PerSec)
	if err := drained(ctx, h, c.EndToEnd.Published); err != nil {
		return err
	}
	err = w.stop()
	w = nil
	if err != nil || !cfg.SizedTransport {
		return err
	}

	// (4) End to end once more, with an HTTP transport that keeps as many
	// idle connections as requests can be in flight: what the default
	// transport's connection churn costs.
	h2 := newHooks()
	c.SizedConns = n * conc
	if w, err = e.startWorkerWith(ctx, "bench-worker-sized", ts, h2, sizedHTTPClient(c.SizedConns)); err != nil {
		return err
	}
	if err := waitPulling(ctx, e.js, consumers, 1, 30*time.Second); err != nil {
		return err
	}
	sized, err := floodPhase(ctx, cfg, e, tids, fmt.Sprintf("overhead-%d-e2e-sized", n), h2.succeededCount)
	if err != nil {
		return err
	}
	c.EndToEndSized = &sized
	c.RatioSized = ratio(sized.PerSec, c.Raw.PerSec)
	return nil
}

// halfLoadLatency publishes at c.HalfOffered, open loop, for cfg.Duration on
// a fresh env (so that no earlier flood's clean-up runs in the server
// meanwhile) and measures publish→call latency through the worker, or with
// raw set publish→receipt by plain consumers (the same run's baseline).
func halfLoadLatency(ctx context.Context, cfg OverheadConfig, c *OverheadCase, raw bool) (_ Latency, _ genResult, err error) {
	n := c.Tenants
	e, ts, consumers, err := overheadEnv(ctx, cfg, n, c.Concurrency)
	if err != nil {
		return Latency{}, genResult{}, err
	}
	defer e.close()
	tids := ids(n)
	d := cfg.Duration
	start := time.Now().Add(200 * time.Millisecond)
	rec := newRecorder(start, n, d+5*time.Second, 100*time.Millisecond, uint64(c.HalfOffered*d.Seconds()*1.05)+uint64(10*n))
	var received atomic.Int64
	if raw {
		// Receipt by a plain consumer counts as the call.
		stop, err := startRaw(ctx, e, consumers, c.Concurrency, func(m jetstream.Msg) {
			observeReceipt(rec, m)
			if m.Ack() == nil {
				received.Add(1)
			}
		})
		if err != nil {
			return Latency{}, genResult{}, err
		}
		defer stop()
	} else {
		e.observe(rec)
		w, err := e.startWorker(ctx, "bench-worker", ts, nil)
		if err != nil {
			return Latency{}, genResult{}, err
		}
		defer func() { err = errJoin(err, w.stop()) }()
		if err := waitPulling(ctx, e.js, consumers, 1, 30*time.Second); err != nil {
			return Latency{}, genResult{}, err
		}
	}
	flows := make([]flow, n)
	per := c.HalfOffered / float64(n)
	for i := range flows {
		flows[i] = flow{tenant: i, rate: per, phase: time.Duration(float64(i) / float64(n) / per * float64(time.Second)), track: true}
	}
	pub, pubErrs, err := e.asyncPublisher(ctx, tids)
	if err != nil {
		return Latency{}, genResult{}, err
	}
	var gen genResult
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		gen = runOpenLoop(ctx, flows, start, start.Add(d), 4, rec, pub)
	})
	if gen.Failed > 0 || pubErrs.Load() > 0 {
		return Latency{}, gen, fmt.Errorf("bench: %d publishes failed (%d acks failed), first: %s", gen.Failed, pubErrs.Load(), gen.FirstErr)
	}
	// Give the last jobs a moment to arrive.
	waitBy := time.Now().Add(2 * time.Second)
	for rec.totalOK.Load() < int64(gen.Published) && time.Now().Before(waitBy) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	var lat []time.Duration
	unserved := 0
	for i := range n {
		s, u := rec.jobLatencies(i, 0, d)
		lat = append(lat, s...)
		unserved += u
	}
	return summarize(lat, unserved), gen, nil
}

// drained waits until the worker has finished the published jobs.
func drained(ctx context.Context, h *hooks, published int64) error {
	by := time.Now().Add(30 * time.Second)
	for h.succeededCount() < published && time.Now().Before(by) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if done := h.succeededCount(); done < published {
		return fmt.Errorf("bench: %d of %d jobs not done 30 s after the end-to-end phase", published-done, published)
	}
	return nil
}

// sizedHTTPClient is an HTTP client whose transport keeps conns idle
// connections per host (the platform default keeps 64).
func sizedHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          conns,
			MaxIdleConnsPerHost:   conns,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		},
	}
}

// floodPhase floods the jobs stream for cfg.Duration while done counts
// completions, and measures the completion rate after the warm-up, the
// process's CPU and (when the profiler is free) its split by component.
func floodPhase(ctx context.Context, cfg OverheadConfig, e *env, tids []string, name string, done func() int64) (PhaseFigures, error) {
	var f PhaseFigures
	end := time.Now().Add(cfg.Duration)
	fl := &flood{nc: e.nc, names: benchNames, tenants: tids, maxPending: cfg.MaxPending, maxBacklog: cfg.MaxBacklog, completed: done}
	type result struct {
		n   int64
		err error
	}
	res := make(chan result, 1)
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		go func() {
			n, err := fl.run(ctx, end)
			res <- result{n, err}
		}()
	})
	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
	}
	from, cpu0, t0 := done(), cpuTime(), time.Now()
	prof, perr := startCPUProfile()
	select {
	case <-time.After(time.Until(end)):
	case <-ctx.Done():
	}
	to, cpu1, t1 := done(), cpuTime(), time.Now()
	if perr == nil {
		shares, err := prof.stopTo(cfg.ProfileDir, name)
		if err != nil {
			return f, err
		}
		f.CPU = shares
	}
	r := <-res
	if r.err != nil {
		return f, r.err
	}
	wall := t1.Sub(t0)
	f.Published = r.n
	f.Completed = to - from
	f.PerSec = float64(f.Completed) / wall.Seconds()
	f.ProcessCores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	if f.Completed > 0 && f.CPU != nil {
		f.CPUPerJobUs = map[string]float64{}
		for _, s := range f.CPU {
			f.CPUPerJobUs[s.Component] = s.Cores * wall.Seconds() / float64(f.Completed) * 1e6
		}
	}
	return f, nil
}

// observeReceipt records a plain consumer's receipt of a job as its call:
// the raw baselines' stand-in for the simulator's request log.
func observeReceipt(rec *recorder, m jetstream.Msg) {
	at := time.Now()
	var job struct {
		Params struct {
			CampaignID string `json:"campaign_id"`
		} `json:"params"`
	}
	if json.Unmarshal(m.Data(), &job) == nil {
		rec.observe(platformtest.Request{At: at, Path: campaignPrefix + job.Params.CampaignID, Status: 200})
	}
}
