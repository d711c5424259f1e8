package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "utilization",
		Summary:         "one org offering 2×Q: goodput with the quota configured, and with rate: auto from a wrong guess",
		DefaultDuration: 30 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunUtilization(ctx, UtilizationConfig{Options: o})
		},
	})
}

// UtilizationConfig sizes the utilization scenario; zero fields take the
// defaults in brackets.
type UtilizationConfig struct {
	Options
	// Limit per Window is the quota Q [100 per 10 s = 600/min, time-compressed].
	Limit  int
	Window time.Duration
	// Offered is the offered load as a multiple of Q [2].
	Offered float64
	// AutoGuesses are rate: auto's starting guesses as multiples of Q, one
	// run each [0.25, 2].
	AutoGuesses []float64
	// Concurrency of the tenant [4].
	Concurrency int
	// Latency of the simulator [20 ms].
	Latency time.Duration
	// MovingWindow is the window of the moving goodput that decides
	// convergence [5 s]; Tolerance its allowed deviation from Q [0.05].
	MovingWindow time.Duration
	Tolerance    float64
}

func (c UtilizationConfig) withDefaults() UtilizationConfig {
	c.Duration = c.duration(30 * time.Second)
	if c.Limit <= 0 {
		c.Limit = 100
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Offered <= 0 {
		c.Offered = 2
	}
	if len(c.AutoGuesses) == 0 {
		c.AutoGuesses = []float64{0.25, 2}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Latency <= 0 {
		c.Latency = 20 * time.Millisecond
	}
	if c.MovingWindow <= 0 {
		c.MovingWindow = 5 * time.Second
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 0.05
	}
	return c
}

// UtilizationRun is one run of the utilization scenario.
type UtilizationRun struct {
	Name          string  `json:"name"`
	Auto          bool    `json:"auto"`
	StartPerMin   int     `json:"start_rate_per_minute"` // configured rate_per_minute (auto: the starting guess)
	OfferedPerSec float64 `json:"offered_per_sec"`
	GoodputOfQ    float64 `json:"goodput_over_q"`       // whole run
	LateOfQ       float64 `json:"goodput_over_q_after"` // from two windows on
	RateLimited   int     `json:"rate_limited"`
	// LearntFrom is where the lane's pace came from at the end of the run
	// (worker.RateSource*), LimitsReads how often it read the limits API.
	LearntFrom  string  `json:"learnt_from"`
	LimitsReads int     `json:"limits_reads"`
	Converged   bool    `json:"converged"`
	ConvergeSec float64 `json:"converge_sec"` // time until the moving goodput stays within tolerance of Q
	// GoodputSeries is the goodput per second in 1 s buckets.
	GoodputSeries []float64 `json:"goodput_series"`
}

// UtilizationFigures are the utilization scenario's measurements.
type UtilizationFigures struct {
	QPerSec float64          `json:"q_per_sec"`
	Runs    []UtilizationRun `json:"runs"`
}

// RunUtilization runs one tenant offering more than its quota, first with
// the quota configured, then with rate: auto starting from each wrong guess.
func RunUtilization(ctx context.Context, cfg UtilizationConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	r := newReport("utilization", "how much of its quota one busy org gets")
	q := float64(cfg.Limit) / cfg.Window.Seconds()
	r.set("quota Q", "%d requests per %s per OAuth client, simulator fixed window = %.0f/min, %.1f/s (time-compressed; real: 300 per 60 s)", cfg.Limit, cfg.Window, q*60, q)
	r.set("load", "1 tenant offering %.3g×Q = %.1f jobs/s for %s per run (open loop), concurrency %d, simulator latency %s", cfg.Offered, cfg.Offered*q, cfg.Duration, cfg.Concurrency, cfg.Latency)
	platformModel := "today's platform: no inin-ratelimit-* headers, normalized 429s with a limit object, the organization limits API"
	if cfg.LegacyHeaders {
		platformModel = "legacy: also the inin-ratelimit-* headers Genesys Cloud removed in June 2021 (for comparison)"
	}
	r.set("platform", "%s", platformModel)
	r.set("runs", "configured: rate_per_minute %.0f (= Q); auto: rate: auto with rate_per_minute set to a wrong starting guess", q*60)
	r.set("convergence", "the first time after which the %s moving goodput stays within %.0f%% of Q to the end of the run", cfg.MovingWindow, cfg.Tolerance*100)
	figs := UtilizationFigures{QPerSec: q}
	type spec struct {
		name  string
		auto  bool
		guess float64
	}
	specs := []spec{{name: "configured", guess: 1}}
	for _, g := range cfg.AutoGuesses {
		specs = append(specs, spec{name: fmt.Sprintf("auto, guess %.3g×Q", g), auto: true, guess: g})
	}
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		perMin := max(1, int(math.Round(s.guess*q*60)))
		run, err := runUtilization(ctx, cfg, s.name, s.auto, perMin)
		if err != nil {
			return nil, fmt.Errorf("utilization, %s: %w", s.name, err)
		}
		figs.Runs = append(figs.Runs, *run)
	}
	r.Figures = figs
	t := r.table("per run", "run", "rate_per_minute", "offered/s", "goodput÷Q (run)", fmt.Sprintf("goodput÷Q after %s", 2*cfg.Window), "429s", "converged after", "pace learnt from", "limits reads")
	for _, u := range figs.Runs {
		conv := "never"
		if u.Converged {
			conv = fmt.Sprintf("%.1f s", u.ConvergeSec)
		}
		t.row(u.Name, fmt.Sprint(u.StartPerMin), fmt.Sprintf("%.1f", u.OfferedPerSec), fmtRatio(u.GoodputOfQ), fmtRatio(u.LateOfQ), fmt.Sprint(u.RateLimited), conv, u.LearntFrom, fmt.Sprint(u.LimitsReads))
	}
	for _, u := range figs.Runs {
		if !u.Auto {
			r.target("configured: goodput ÷ Q", "≥ 0.97 with ≤ 1 429", u.GoodputOfQ >= 0.97 && u.RateLimited <= 1, "%.3f with %d 429s", u.GoodputOfQ, u.RateLimited)
			continue
		}
		within := u.Converged && u.ConvergeSec <= (2*cfg.Window).Seconds()
		met := within && u.LateOfQ >= 0.95 && u.RateLimited <= 3
		conv := "never converged"
		if u.Converged {
			conv = fmt.Sprintf("converged after %.1f s", u.ConvergeSec)
		}
		r.target(u.Name+": goodput ÷ Q within two rate windows", fmt.Sprintf("converged ≤ %s, then ≥ 0.95, ≤ 3 429s", 2*cfg.Window), met,
			"%s, then %.3f, %d 429s", conv, u.LateOfQ, u.RateLimited)
	}
	r.finish()
	return r, nil
}

func runUtilization(ctx context.Context, cfg UtilizationConfig, name string, auto bool, perMin int) (_ *UtilizationRun, err error) {
	q := float64(cfg.Limit) / cfg.Window.Seconds()
	tids := ids(1)
	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{
		Clients: simClients(tids), Limit: cfg.Limit, Window: cfg.Window, Scope: platformtest.ScopeClient,
		Latency: cfg.Latency, AutoCreate: true, LegacyRateLimitHeaders: cfg.LegacyHeaders,
	}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()
	ts := []tenants.Tenant{e.benchTenant(tids[0], laneSpec{ratePerMinute: perMin, auto: auto, concurrency: cfg.Concurrency})}
	if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{}, ts); err != nil {
		return nil, fmt.Errorf("bench: provision: %w", err)
	}
	// Counted from before the worker starts: a rate: auto lane reads the
	// limits as it starts.
	var limitsReads atomic.Int64
	e.sim.OnRequest(func(req platformtest.Request) {
		if strings.HasPrefix(req.Path, "/api/v2/organizations/limits/") {
			limitsReads.Add(1)
		}
	})
	w, err := e.startWorker(ctx, "bench-worker", ts, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if w != nil {
			err = errJoin(err, w.stop())
		}
	}()
	if err := waitPulling(ctx, e.js, []string{benchNames.Consumer(tids[0])}, 1, 15*time.Second); err != nil {
		return nil, err
	}
	d := cfg.Duration
	start := time.Now().Add(100 * time.Millisecond)
	const bucket = 100 * time.Millisecond
	rec := newRecorder(start, 1, d+time.Second, bucket, 0)
	e.observe(rec)
	var gen genResult
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		gen = runOpenLoop(ctx, []flow{{tenant: 0, rate: cfg.Offered * q}}, start, start.Add(d), 4, rec, e.publisher(benchNames, tids))
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u := &UtilizationRun{Name: name, Auto: auto, StartPerMin: perMin}
	if lanes := w.pool.Lanes(); len(lanes) == 1 {
		u.LearntFrom = lanes[0].RateSource
	}
	u.LimitsReads = int(limitsReads.Load())
	err = w.stop()
	w = nil
	if err != nil {
		return nil, err
	}
	if gen.Failed > 0 {
		return nil, fmt.Errorf("bench: %d publishes failed, first: %s", gen.Failed, gen.FirstErr)
	}
	u.OfferedPerSec = float64(rec.count(0, 0, d, countPublished)) / d.Seconds()
	u.GoodputOfQ = float64(rec.count(0, 0, d, countOK)) / d.Seconds() / q
	late := 2 * cfg.Window
	if late < d {
		u.LateOfQ = float64(rec.count(0, late, d, countOK)) / (d - late).Seconds() / q
	}
	u.RateLimited = rec.count(0, 0, d, count429)
	rates := rec.series(0, 0, d, bucket)
	if i, ok := converged(rates, int(cfg.MovingWindow/bucket), q, cfg.Tolerance); ok {
		u.Converged, u.ConvergeSec = true, (time.Duration(i) * bucket).Seconds()
	}
	u.GoodputSeries = rec.series(0, 0, d, time.Second)
	return u, nil
}
