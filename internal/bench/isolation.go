package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "isolation",
		Summary:         "one noisy org at 10×Q beside nine quiet ones at 0.8×Q: shared client, per-org tokens with a shared pool, orgdispatch",
		DefaultDuration: 30 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunIsolation(ctx, IsolationConfig{Options: o})
		},
	})
}

// IsolationConfig sizes the isolation scenario; zero fields take the
// defaults in brackets.
type IsolationConfig struct {
	Options
	// Tenants is the number of orgs; tenant 0 is the noisy one [10].
	Tenants int
	// Limit requests per Window per OAuth client is the quota Q the
	// simulator enforces [100 per 10 s = 600/min: the real 300 per 60 s,
	// time-compressed 6× in window length and doubled in rate].
	Limit  int
	Window time.Duration
	// NoisyFactor and QuietFactor are the offered loads as multiples of Q
	// [10, 0.8].
	NoisyFactor, QuietFactor float64
	// Grace is how long load and workers keep running after Duration so
	// jobs published near its end can be served; it counts only for their
	// latency [2 s].
	Grace time.Duration
	// Concurrency is orgdispatch's per-tenant concurrency; the baselines'
	// shared pool has Tenants×Concurrency workers [4].
	Concurrency int
	// Latency is the simulator's answer latency [50 ms].
	Latency time.Duration
	// BackoffBase and BackoffMax bound the shared mode's exponential
	// backoff [200 ms, 10 s: the usual 1 s … 60 s, compressed like the
	// window].
	BackoffBase, BackoffMax time.Duration
	// Publishers is the number of publishing goroutines [8].
	Publishers int
}

func (c IsolationConfig) withDefaults() IsolationConfig {
	c.Duration = c.duration(30 * time.Second)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defF := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Tenants, 10)
	def(&c.Limit, 100)
	defD(&c.Window, 10*time.Second)
	defF(&c.NoisyFactor, 10)
	defF(&c.QuietFactor, 0.8)
	defD(&c.Grace, 2*time.Second)
	def(&c.Concurrency, 4)
	defD(&c.Latency, 50*time.Millisecond)
	defD(&c.BackoffBase, 200*time.Millisecond)
	defD(&c.BackoffMax, 10*time.Second)
	def(&c.Publishers, 8)
	c.Tenants = max(c.Tenants, 2)
	return c
}

// q is the quota in requests per second.
func (c IsolationConfig) q() float64 { return float64(c.Limit) / c.Window.Seconds() }

// Isolation modes.
const (
	modeShared      = "shared"
	modePerOrgPool  = "per-org tokens, shared pool"
	modeOrgdispatch = "orgdispatch"
	modeCalm        = "orgdispatch, no noisy org (reference)"
)

// TenantFigures are one tenant's measurements in one mode, over the
// measuring window.
type TenantFigures struct {
	Tenant        string  `json:"tenant"`
	Noisy         bool    `json:"noisy"`
	OfferedPerSec float64 `json:"offered_per_sec"`
	GoodputPerSec float64 `json:"goodput_per_sec"` // 2xx answers per second
	GoodputRatio  float64 `json:"goodput_over_offered"`
	GoodputOfQ    float64 `json:"goodput_over_q"`
	RateLimited   int     `json:"rate_limited"` // 429 answers
	Latency       Latency `json:"queue_to_call"`
}

// ModeFigures are one isolation mode's measurements.
type ModeFigures struct {
	Mode       string          `json:"mode"`
	Setup      string          `json:"setup"`
	Tenants    []TenantFigures `json:"tenants"`
	Generator  genResult       `json:"generator"`
	QuietMin   float64         `json:"quiet_min_goodput_over_offered"`
	QuietP99Ms *float64        `json:"quiet_pooled_p99_ms"`
	Total429   int             `json:"total_429"`
	// GoodputSeries is each tenant's goodput per second in 1 s buckets.
	GoodputSeries [][]float64 `json:"goodput_series"`
}

// IsolationFigures are the isolation scenario's measurements.
type IsolationFigures struct {
	QPerSec float64       `json:"q_per_sec"`
	Workers int           `json:"baseline_workers"`
	Modes   []ModeFigures `json:"modes"`
}

// RunIsolation runs the isolation scenario: the same load against the three
// setups (and orgdispatch once more without the noisy org, as the latency
// reference), one after the other in this process, each on a fresh server
// and simulator.
func RunIsolation(ctx context.Context, cfg IsolationConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	r := newReport("isolation", "per-tenant goodput and latency beside a noisy org, three setups")
	q := cfg.q()
	workers := cfg.Tenants * cfg.Concurrency
	r.set("quota Q", "%d requests per %s per OAuth client, enforced by the simulator (fixed window) = %.0f/min, %.1f/s — time-compressed (real: 300 per 60 s per token)", cfg.Limit, cfg.Window, q*60, q)
	r.set("tenants", "%d: %s offers %.0f×Q = %.1f jobs/s; the other %d offer %.2g×Q = %.1f jobs/s each (steady open-loop pacing)",
		cfg.Tenants, tenantID(0, cfg.Tenants), cfg.NoisyFactor, cfg.NoisyFactor*q, cfg.Tenants-1, cfg.QuietFactor, cfg.QuietFactor*q)
	r.set("measuring window", "%s per mode (+%s grace for latency only), modes run one after another, each on a fresh JetStream server and simulator", cfg.Duration, cfg.Grace)
	r.set("simulator", "latency %s per answer, auto-created campaigns, HTTP on 127.0.0.1", cfg.Latency)
	r.set("job", "campaign.get of a per-job campaign id (the simulator's OnRequest hook attributes every call to its job)")
	r.set("concurrency budget", "%d in flight in every mode: baselines %d workers; orgdispatch %d tenants × concurrency %d", workers, workers, cfg.Tenants, cfg.Concurrency)
	r.set("mode "+modeShared, "ONE OAuth client for all orgs (one simulator bucket); one JetStream stream with ONE durable pull consumer over all tenants (FIFO); %d workers; on 429 a worker sleeps base·2^n (base %s, cap %s; n = its consecutive 429s, reset on success) and retries", workers, cfg.BackoffBase, cfg.BackoffMax)
	r.set("mode "+modePerOrgPool, "one OAuth client per org (own buckets); the same single queue and %d workers; on 429 a worker sleeps Retry-After and retries (the vendor SDK's behaviour)", workers)
	r.set("mode "+modeOrgdispatch, "worker.Pool: per-tenant consumer, lane, limiter at Q (rate_per_minute %.0f, burst 1), concurrency %d; 429 pauses only that tenant", q*60, cfg.Concurrency)
	r.set("mode "+modeCalm, "as orgdispatch, but %s offers %.2g×Q like the others: the latency the quiet orgs have without a noisy neighbour", tenantID(0, cfg.Tenants), cfg.QuietFactor)

	figs := IsolationFigures{QPerSec: q, Workers: workers}
	for _, mode := range []string{modeShared, modePerOrgPool, modeOrgdispatch, modeCalm} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := runIsolationMode(ctx, cfg, mode)
		if err != nil {
			return nil, fmt.Errorf("isolation, mode %s: %w", mode, err)
		}
		figs.Modes = append(figs.Modes, *m)
	}
	r.Figures = figs
	isolationTables(r, cfg, figs)
	isolationTargets(r, cfg, figs)
	r.Plot = isolationPlot(cfg, figs)
	r.finish()
	return r, nil
}

func runIsolationMode(ctx context.Context, cfg IsolationConfig, mode string) (_ *ModeFigures, err error) {
	n := cfg.Tenants
	tids := ids(n)
	q := cfg.q()
	simCfg := platformtest.Config{
		Limit: cfg.Limit, Window: cfg.Window, Scope: platformtest.ScopeClient,
		Latency: cfg.Latency, AutoCreate: true,
	}
	const sharedClient = "appfoundry_multi_tenant"
	if mode == modeShared {
		simCfg.Clients = []platformtest.ClientCred{{ID: sharedClient, Secret: clientSecret("shared"), Org: "vendor"}}
	} else {
		simCfg.Clients = simClients(tids)
	}
	e, err := newEnv(ctx, cfg.Dir, simCfg, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()

	noisy := cfg.NoisyFactor
	if mode == modeCalm {
		noisy = cfg.QuietFactor
	}
	m := &ModeFigures{Mode: mode}

	// The consumer side.
	var stop func() error
	switch mode {
	case modeShared, modePerOrgPool:
		pool := &sharedPool{js: e.js, names: benchNames, workers: n * cfg.Concurrency,
			backoffOn429: mode == modeShared, backoffBase: cfg.BackoffBase, backoffMax: cfg.BackoffMax}
		if mode == modeShared {
			c, err := e.platformClient(sharedClient, clientSecret("shared"))
			if err != nil {
				return nil, err
			}
			pool.client = func(string) *platform.Client { return c }
		} else {
			clients := map[string]*platform.Client{}
			for _, id := range tids {
				c, err := e.platformClient(clientID(id), clientSecret(id))
				if err != nil {
					return nil, err
				}
				clients[id] = c
			}
			pool.client = func(t string) *platform.Client { return clients[t] }
		}
		cons, err := pool.provision(ctx)
		if err != nil {
			return nil, err
		}
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		withComponent(runCtx, compWorker, func(ctx context.Context) {
			go func() { done <- pool.run(ctx, cons) }()
		})
		stop = func() error { cancel(); return <-done }
		if err := waitPulling(ctx, e.js, []string{"shared_pool"}, 1, 10*time.Second); err != nil {
			_ = stop()
			return nil, err
		}
	default:
		ts := make([]tenants.Tenant, n)
		for i, id := range tids {
			ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: int(math.Round(q * 60)), concurrency: cfg.Concurrency})
		}
		if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{}, ts); err != nil {
			return nil, fmt.Errorf("bench: provision: %w", err)
		}
		w, err := e.startWorker(ctx, "bench-worker", ts, nil)
		if err != nil {
			return nil, err
		}
		stop = w.stop
		consumers := make([]string, n)
		for i, id := range tids {
			consumers[i] = benchNames.Consumer(id)
		}
		if err := waitPulling(ctx, e.js, consumers, 1, 15*time.Second); err != nil {
			_ = stop()
			return nil, err
		}
	}
	defer func() {
		if stop != nil {
			err = errJoin(err, stop())
		}
	}()

	// The load: open loop, every tenant on its own steady schedule, phases
	// spread so that the tenants' jobs do not arrive in lockstep.
	flows := make([]flow, n)
	total := 0.0
	for i := range flows {
		rate := cfg.QuietFactor * q
		if i == 0 {
			rate = noisy * q
		}
		total += rate
		flows[i] = flow{tenant: i, rate: rate, phase: time.Duration(float64(i) / float64(n) / (cfg.QuietFactor * q) * float64(time.Second)), track: true}
	}
	run := cfg.Duration + cfg.Grace
	maxJobs := uint64(total*run.Seconds()*1.05) + uint64(10*n)
	start := time.Now().Add(100 * time.Millisecond)
	rec := newRecorder(start, n, run+time.Second, 100*time.Millisecond, maxJobs)
	e.observe(rec)
	var gen genResult
	publish := e.publisher(benchNames, tids)
	if mode == modeShared || mode == modePerOrgPool {
		publish = e.rawPublisher(benchNames, tids) // their one stream, no tenant consumers
	}
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		gen = runOpenLoop(ctx, flows, start, start.Add(run), cfg.Publishers, rec, publish)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = stop()
	stop = nil
	if err != nil {
		return nil, err
	}
	if gen.Failed > 0 {
		return nil, fmt.Errorf("bench: %d publishes failed, first: %s", gen.Failed, gen.FirstErr)
	}
	m.Generator = gen

	d := cfg.Duration
	var quietLat []time.Duration
	quietUnserved := 0
	m.QuietMin = math.Inf(1)
	for i, id := range tids {
		off := float64(rec.count(i, 0, d, countPublished)) / d.Seconds()
		good := float64(rec.count(i, 0, d, countOK)) / d.Seconds()
		served, unserved := rec.jobLatencies(i, 0, d)
		tf := TenantFigures{
			Tenant: id, Noisy: i == 0 && mode != modeCalm,
			OfferedPerSec: off, GoodputPerSec: good, GoodputRatio: ratio(good, off), GoodputOfQ: good / q,
			RateLimited: rec.count(i, 0, d, count429),
			Latency:     summarize(served, unserved),
		}
		m.Total429 += tf.RateLimited
		if i > 0 {
			m.QuietMin = math.Min(m.QuietMin, tf.GoodputRatio)
			quietLat = append(quietLat, served...)
			quietUnserved += unserved
		}
		m.Tenants = append(m.Tenants, tf)
		m.GoodputSeries = append(m.GoodputSeries, rec.series(i, 0, d, time.Second))
	}
	m.QuietP99Ms = summarize(quietLat, quietUnserved).P99Ms
	return m, nil
}

func isolationTables(r *Report, cfg IsolationConfig, f IsolationFigures) {
	sum := r.table("summary (over the measuring window; generator lag = how late the load generator published, a sign of machine stalls)", "mode", "quiet min goodput÷offered", "quiet p99 (pooled)", "noisy goodput÷Q", "429s", "generator lag p99/max")
	for _, m := range f.Modes {
		noisy := "—"
		if m.Mode != modeCalm {
			noisy = fmtRatio(m.Tenants[0].GoodputOfQ)
		}
		sum.row(m.Mode, fmtRatio(m.QuietMin), fmtMs(m.QuietP99Ms), noisy, fmt.Sprint(m.Total429),
			fmt.Sprintf("%.0f / %.0f ms", ms(m.Generator.LagP99), ms(m.Generator.LagMax)))
	}
	for _, m := range f.Modes {
		t := r.table("mode: "+m.Mode, "tenant", "offered/s", "goodput/s", "goodput÷offered", "goodput÷Q", "429s", "p50", "p99", "served/jobs")
		for _, tf := range m.Tenants {
			name := tf.Tenant
			if tf.Noisy {
				name += " (noisy)"
			}
			t.row(name, fmt.Sprintf("%.2f", tf.OfferedPerSec), fmt.Sprintf("%.2f", tf.GoodputPerSec), fmtRatio(tf.GoodputRatio),
				fmtRatio(tf.GoodputOfQ), fmt.Sprint(tf.RateLimited), fmtMs(tf.Latency.P50Ms), fmtMs(tf.Latency.P99Ms),
				fmt.Sprintf("%d/%d", tf.Latency.Served, tf.Latency.Jobs))
		}
	}
}

// p99Unchanged is how "p99 unchanged by the noisy one" is judged: the quiet
// orgs' pooled p99 beside the noisy org may exceed the reference run's by at
// most 25 % or 5 ms, whichever is more (two runs on a shared machine never
// measure exactly alike).
func p99Unchanged(withNoisy, reference *float64) (bool, string) {
	if withNoisy == nil || reference == nil {
		return false, "unserved jobs"
	}
	limit := math.Max(*reference*1.25, *reference+5)
	return *withNoisy <= limit, fmt.Sprintf("%.1f ms beside the noisy org vs %.1f ms without (limit %.1f ms)", *withNoisy, *reference, limit)
}

func isolationTargets(r *Report, cfg IsolationConfig, f IsolationFigures) {
	var od, calm *ModeFigures
	for i := range f.Modes {
		switch f.Modes[i].Mode {
		case modeOrgdispatch:
			od = &f.Modes[i]
		case modeCalm:
			calm = &f.Modes[i]
		}
	}
	worst := ""
	for _, tf := range od.Tenants[1:] {
		if tf.GoodputRatio == od.QuietMin && worst == "" {
			worst = tf.Tenant
		}
	}
	r.target("orgdispatch: every quiet tenant's goodput ÷ offered", "≥ 0.98", od.QuietMin >= 0.98, "min %.3f (%s)", od.QuietMin, worst)
	ok, got := p99Unchanged(od.QuietP99Ms, calm.QuietP99Ms)
	r.target("orgdispatch: quiet tenants' p99 queue-to-call unchanged by the noisy one", "≤ max(1.25×, +5 ms) of the no-noisy reference run", ok, "%s", got)
	noisy := od.Tenants[0].GoodputOfQ
	r.target("orgdispatch: noisy tenant's goodput ÷ Q", "≥ 0.97", noisy >= 0.97, "%.3f (%d 429s)", noisy, od.Tenants[0].RateLimited)
	for _, m := range f.Modes {
		if m.Mode == modeShared || m.Mode == modePerOrgPool {
			r.note("contrast, %s: quiet tenants' min goodput ÷ offered %.3f, pooled p99 %s, noisy goodput ÷ Q %.3f, %d 429s",
				m.Mode, m.QuietMin, fmtMs(m.QuietP99Ms), m.Tenants[0].GoodputOfQ, m.Total429)
		}
	}
}

func isolationPlot(cfg IsolationConfig, f IsolationFigures) *Plot {
	q := cfg.q()
	p := &Plot{
		Title:  fmt.Sprintf("Per-tenant goodput, 1 s buckets: %s offers %.0f×Q, %d others %.2g×Q (Q = %.0f/s; bursts above the axis labelled ↑)", tenantID(0, cfg.Tenants), cfg.NoisyFactor, cfg.Tenants-1, cfg.QuietFactor, q),
		XLabel: "seconds",
		YLabel: "successful calls per second",
		XStep:  1,
		YMax:   2.5 * q,
	}
	for _, m := range f.Modes {
		if m.Mode == modeCalm {
			continue
		}
		pn := Panel{Title: m.Mode, Refs: []RefLine{{Label: "Q", Y: q}, {Label: fmt.Sprintf("%.2g×Q (quiet offered)", cfg.QuietFactor), Y: cfg.QuietFactor * q}}}
		for i, s := range m.GoodputSeries {
			st, legend := "normal", "quiet tenants"
			if i == 0 {
				st, legend = "highlight", "noisy tenant"
			}
			pn.Series = append(pn.Series, Series{Name: m.Tenants[i].Tenant, Style: st, Legend: legend, Values: slices.Clone(s)})
		}
		p.Panels = append(p.Panels, pn)
	}
	return p
}
