package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

func init() {
	registerScenario(Scenario{
		Name:            "flood",
		Summary:         "one tenant publishes 10× its max_backlog while the others run the scale load; their goodput with and without",
		DefaultDuration: 30 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunFlood(ctx, FloodConfig{ScaleConfig: ScaleConfig{Options: o}})
		},
	})
}

// FloodConfig sizes the flood scenario: the scale load (ScaleConfig; its
// Duration is each run's window [30 s]) with one tenant flooding; zero
// fields take the defaults in brackets.
type FloodConfig struct {
	ScaleConfig
	// Backlog is the flooding tenant's max_backlog [200]; it publishes
	// Factor × Backlog jobs [10 ×] through dispatcher.Publisher from
	// Publishers goroutines [4], as fast as they go.
	Backlog    int
	Factor     int
	Publishers int
}

func (c FloodConfig) withDefaults() FloodConfig {
	c.Duration = c.duration(30 * time.Second)
	c.ScaleConfig = c.ScaleConfig.withDefaults()
	if c.Backlog <= 0 {
		c.Backlog = 200
	}
	if c.Factor <= 0 {
		c.Factor = 10
	}
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	return c
}

// floodPlan is a flood: tenant (by index) has max_backlog backlog and no
// steady load; when flood is set it publishes attempts jobs through
// dispatcher.Publisher from publishers goroutines, as fast as they go,
// from the start of the measuring window.
type floodPlan struct {
	tenant     int
	backlog    int
	attempts   int
	publishers int
	flood      bool
}

// floodOutcome is what the flooding tenant's publishes got.
type floodOutcome struct {
	Attempts int `json:"attempts"`
	Accepted int `json:"accepted"`
	// Refused were refused with *dispatcher.BacklogFullError; OtherErrors
	// failed otherwise (FirstOtherError says how).
	Refused         int     `json:"refused_backlog_full"`
	OtherErrors     int     `json:"other_errors"`
	FirstOtherError string  `json:"first_other_error,omitempty"`
	TookSec         float64 `json:"took_sec"`
	// BacklogAfter is the tenant's jobs queued or out (its consumer's
	// pending + ack pending) right after the flood.
	BacklogAfter int `json:"backlog_after"`
	// start and end of the flood since the recorder's epoch.
	start, end time.Duration
}

// publish runs the flood for tenant tid on e.
func (p *floodPlan) publish(ctx context.Context, e *env, tid string, rec *recorder) floodOutcome {
	pub := dispatcher.NewPublisher(e.js, e.names)
	out := floodOutcome{Attempts: p.attempts}
	var next, accepted, refused, other atomic.Int64
	var firstErr sync.Once
	params := jobParams(p.tenant, 0)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range p.publishers {
		wg.Go(func() {
			for next.Add(1) <= int64(p.attempts) && ctx.Err() == nil {
				id := fmt.Sprintf("flood-%d", jobCounter.Add(1))
				_, err := pub.Publish(ctx, dispatcher.Job{ID: id, Tenant: tid, Op: platform.OpCampaignGet, Params: params})
				var full *dispatcher.BacklogFullError
				switch {
				case err == nil:
					accepted.Add(1)
					rec.published(p.tenant, 0, time.Now())
				case errors.As(err, &full):
					refused.Add(1)
				default:
					other.Add(1)
					firstErr.Do(func() { out.FirstOtherError = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	t1 := time.Now()
	out.Accepted, out.Refused, out.OtherErrors = int(accepted.Load()), int(refused.Load()), int(other.Load())
	out.TookSec = t1.Sub(t0).Seconds()
	out.start, out.end = rec.since(t0), rec.since(t1)
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := e.js.Consumer(ictx, e.names.JobsStream(tid), e.names.Consumer(tid)); err == nil {
		info := c.CachedInfo()
		out.BacklogAfter = int(info.NumPending) + info.NumAckPending
	} else {
		out.BacklogAfter = -1
	}
	return out
}

// FloodFigures are the flood scenario's measurements.
type FloodFigures struct {
	Tenants int     `json:"tenants"`
	PerSec  float64 `json:"offered_per_tenant_per_sec"`
	// FloodTenant floods; MaxBacklog is its max_backlog; SameShard counts
	// the other tenants whose jobs share its jobs stream.
	FloodTenant string       `json:"flood_tenant"`
	MaxBacklog  int          `json:"max_backlog"`
	SameShard   int          `json:"same_shard_tenants"`
	Flood       floodOutcome `json:"flood"`
	// The other tenants, without and with the flood (two runs on fresh
	// envs in the same invocation).
	Without FloodRun `json:"without_flood"`
	With    FloodRun `json:"with_flood"`
	// GoodputRatio is the other tenants' mean delivered rate with the flood
	// ÷ without; SameShardRatio likewise for those sharing its stream.
	GoodputRatio   float64 `json:"goodput_with_over_without"`
	SameShardRatio float64 `json:"same_shard_goodput_with_over_without"`
	// The worker runs' full figures (the other tenants only; no baseline).
	WithoutScale ScaleFigures `json:"without_flood_scale"`
	WithScale    ScaleFigures `json:"with_flood_scale"`
}

// FloodRun is what the other tenants got in one run.
type FloodRun struct {
	// Published and Failed count their publishes (async JetStream, the
	// scale load's) over the run; Late those given up at the schedule's
	// end.
	Published int `json:"published"`
	Failed    int `json:"failed"`
	Late      int `json:"late"`
	// Delivered ÷ offered over the window, across the other tenants.
	RateMin      float64 `json:"rate_min"`
	RateMedian   float64 `json:"rate_median"`
	RateMax      float64 `json:"rate_max"`
	RateMean     float64 `json:"rate_mean"`
	WithinTol    int     `json:"tenants_within_3pct"`
	WithinMedian int     `json:"tenants_within_3pct_of_median"`
	// SameShardMean is the mean rate of the tenants sharing the flooding
	// tenant's stream; DuringMedian the others' median rate over the whole
	// seconds the flood lasted (in the run without, the same seconds of
	// its window).
	SameShardMean float64 `json:"same_shard_rate_mean"`
	DuringMedian  float64 `json:"rate_median_during_flood"`
}

// RunFlood runs the flood scenario: the scale load without the flood, then
// with it, each on a fresh env.
func RunFlood(ctx context.Context, cfg FloodConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.checkNATS(); err != nil {
		return nil, err
	}
	n := cfg.Tenants
	if n < 2 {
		return nil, errors.New("bench: flood: needs at least 2 tenants")
	}
	tids := ids(n)
	target := cfg.target()
	plan := floodPlan{tenant: 0, backlog: cfg.Backlog, attempts: cfg.Factor * cfg.Backlog, publishers: cfg.Publishers}
	r := newReport("flood", fmt.Sprintf("%s floods %d× its max_backlog while %d tenants run their steady load, %s consumer storage, %s", tids[plan.tenant], cfg.Factor, n-1, storageName(cfg.ConsumerStorage), target.desc()))
	r.Machine.NATSMode = target.desc()
	cfg.describe(r)
	r.set("flood", "%s: max_backlog %d, no steady load; publishes %d jobs (%d×) through dispatcher.Publisher from %d goroutines as fast as they go, from the window's start", tids[plan.tenant], plan.backlog, plan.attempts, cfg.Factor, plan.publishers)
	r.set("runs", "two, each on a fresh server (external: a fresh prefix): without the flood, then with it; the same tenants, load and window")

	figs := FloodFigures{Tenants: n, PerSec: cfg.PerSec, FloodTenant: tids[plan.tenant], MaxBacklog: plan.backlog}
	shard := dispatcher.ShardOf(tids[plan.tenant])
	for i, id := range tids {
		if i != plan.tenant && dispatcher.ShardOf(id) == shard {
			figs.SameShard++
		}
	}
	without, err := runScaleWorker(ctx, cfg.ScaleConfig, &plan)
	if err != nil {
		return nil, fmt.Errorf("flood: run without the flood: %w", err)
	}
	withPlan := plan
	withPlan.flood = true
	with, err := runScaleWorker(ctx, cfg.ScaleConfig, &withPlan)
	if err != nil {
		return nil, fmt.Errorf("flood: run with the flood: %w", err)
	}
	if target.URL != "" {
		r.Machine.NATSServer = with.serverVersion
	}
	figs.Flood = *with.flood
	// The seconds the flood lasted, relative to the window's start, for
	// both runs.
	during := [2]time.Duration{with.flood.start - with.w0, with.flood.end - with.w0}
	figs.Without = floodRunFigures(without, plan.tenant, shard, during)
	figs.With = floodRunFigures(with, plan.tenant, shard, during)
	figs.WithoutScale, figs.WithScale = without.figs, with.figs
	figs.GoodputRatio = ratio(figs.With.RateMean, figs.Without.RateMean)
	figs.SameShardRatio = ratio(figs.With.SameShardMean, figs.Without.SameShardMean)
	r.Figures = figs

	f := figs.Flood
	ft := r.table("the flooding tenant's publishes (dispatcher.Publisher)", "tenant", "max_backlog", "attempts", "accepted", "refused: BacklogFullError", "other errors", "took", "backlog after")
	ft.row(figs.FloodTenant, fmt.Sprint(figs.MaxBacklog), fmt.Sprint(f.Attempts), fmt.Sprint(f.Accepted), fmt.Sprint(f.Refused), fmt.Sprint(f.OtherErrors), fmt.Sprintf("%.2f s", f.TookSec), fmt.Sprint(f.BacklogAfter))
	others := n - 1
	ot := r.table(fmt.Sprintf("the other %d tenants: publishes, and delivered rate ÷ offered over the window", others), "run", "published", "failed", "given up", "min", "median", "max", "mean", "within ±3 % of offered", "within ±3 % of median", fmt.Sprintf("mean, %d on its stream", figs.SameShard), "median during the flood")
	for _, row := range []struct {
		name string
		fr   FloodRun
	}{{"without the flood", figs.Without}, {"with the flood", figs.With}} {
		fr := row.fr
		ot.row(row.name, fmt.Sprint(fr.Published), fmt.Sprint(fr.Failed), fmt.Sprint(fr.Late), fmtRatio(fr.RateMin), fmtRatio(fr.RateMedian), fmtRatio(fr.RateMax), fmtRatio(fr.RateMean),
			fmt.Sprintf("%d/%d", fr.WithinTol, others), fmt.Sprintf("%d/%d", fr.WithinMedian, others), fmtRatio(fr.SameShardMean), fmtRatio(fr.DuringMedian))
	}
	gt := r.table("the other tenants' goodput, with the flood ÷ without", "all others (mean rate)", "on the flooding tenant's stream (mean rate)")
	gt.row(fmtRatio(figs.GoodputRatio), fmtRatio(figs.SameShardRatio))
	rt := r.table("resources over the window", "run", "process CPU", "nats-server CPU", "worker CPU (labelled)", "RSS peak (VmHWM)")
	for _, row := range []struct {
		name string
		s    ScaleFigures
	}{{"without the flood", figs.WithoutScale}, {"with the flood", figs.WithScale}} {
		natsCPU := "not measured"
		if row.s.NATSServerCPUFrom != "" {
			natsCPU = fmt.Sprintf("%.2f cores", row.s.NATSServerCores)
		}
		rt.row(row.name, fmt.Sprintf("%.2f cores", row.s.ProcessCores), natsCPU, fmt.Sprintf("%.2f cores", row.s.WorkerLabelledCores), fmt.Sprintf("%.0f MB", row.s.HWMMB))
	}
	if f.OtherErrors > 0 {
		r.note("the flooding tenant's first other error: %s", f.FirstOtherError)
	}
	if f.BacklogAfter > plan.backlog {
		r.note("the flooding tenant's backlog went %d over its max_backlog, with %d goroutines publishing through one dispatcher.Publisher: its admission let more in than the limit", f.BacklogAfter-plan.backlog, plan.publishers)
	}
	noteCleanup(r, append(figs.WithoutScale.CleanupErrors, figs.WithScale.CleanupErrors...))

	failed := figs.With.Failed + figs.Without.Failed
	r.target("every other tenant's publishes succeeded (both runs)", "0 failed", failed == 0, "%d failed of %d", failed, figs.With.Published+figs.Without.Published)
	r.target("the flooding tenant held to its max_backlog: the rest refused with BacklogFullError", fmt.Sprintf("backlog ≤ %d, no other error", plan.backlog),
		f.BacklogAfter >= 0 && f.BacklogAfter <= plan.backlog && f.Refused > 0 && f.OtherErrors == 0,
		"backlog %d after the flood; %d accepted, %d refused, %d other errors", f.BacklogAfter, f.Accepted, f.Refused, f.OtherErrors)
	r.target("the other tenants' goodput unchanged (mean rate, with ÷ without)", "≥ 0.97", figs.GoodputRatio >= 0.97, "%.3f (%.3f ÷ %.3f)", figs.GoodputRatio, figs.With.RateMean, figs.Without.RateMean)
	r.finish()
	return r, nil
}

// floodRunFigures sums up the tenants other than flooder in one run; during
// is the flood's span relative to the window's start.
func floodRunFigures(run *scaleRun, flooder, shard int, during [2]time.Duration) FloodRun {
	g := run.figs.Generator
	fr := FloodRun{Published: g.Published, Failed: g.Failed + int(run.pubErrs), Late: g.Late}
	var rates, durings []float64
	sameSum, same := 0.0, 0
	// Whole seconds covering the flood (at least one).
	a := run.w0 + during[0].Truncate(time.Second)
	b := max(run.w0+(during[1]+time.Second-1).Truncate(time.Second), a+time.Second)
	for i, x := range run.rates {
		if i == flooder {
			continue
		}
		rates = append(rates, x)
		durings = append(durings, float64(run.rec.count(i, a, b, countOK))/(b-a).Seconds()/run.figs.PerSec)
		if run.shards[i] == shard {
			sameSum += x
			same++
		}
	}
	st := rateStats(rates)
	fr.RateMin, fr.RateMedian, fr.RateMax, fr.RateMean, fr.WithinTol, fr.WithinMedian = st.min, st.median, st.max, st.mean, st.withinOffered, st.withinMedian
	if same > 0 {
		fr.SameShardMean = sameSum / float64(same)
	}
	fr.DuringMedian = percentileF(durings, 0.5)
	return fr
}
