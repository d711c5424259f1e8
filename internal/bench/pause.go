package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "pause",
		Summary:         "3 worker replicas; one 429 with Retry-After R pauses one tenant everywhere, and only it",
		DefaultDuration: 30 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunPause(ctx, PauseConfig{Options: o})
		},
	})
}

// PauseConfig sizes the pause scenario; zero fields take the defaults in
// brackets.
type PauseConfig struct {
	Options
	// Replicas is the number of worker replicas: each a worker.Pool on its
	// own NATS connection with its own replica id [3].
	Replicas int
	// Others is the number of other tenants [4].
	Others int
	// PausedPerMin is the paused tenant's quota (rate_per_minute, org
	// scope: shared by the replicas) [1800]; it offers PausedOffered times
	// that [2], so every replica always has its jobs waiting.
	PausedPerMin  int
	PausedOffered float64
	// OtherPerMin is each other tenant's quota [3000]; they offer
	// OtherOffered times it [0.8].
	OtherPerMin  int
	OtherOffered float64
	// RetryAfter is R, the Retry-After of the one 429 [3 s].
	RetryAfter time.Duration
	// Pauses is how many 429s are injected, evenly spread over the run
	// after a warm-up [3].
	Pauses int
	// Warmup is the time before the first 429 [5 s]: replicas learn of
	// each other through heartbeats.
	Warmup time.Duration
	// Latency of the simulator [5 ms].
	Latency time.Duration
	// Concurrency per tenant [4].
	Concurrency int
}

func (c PauseConfig) withDefaults() PauseConfig {
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
	def(&c.Replicas, 3)
	def(&c.Others, 4)
	def(&c.PausedPerMin, 1800)
	def(&c.OtherPerMin, 3000)
	if c.PausedOffered <= 0 {
		c.PausedOffered = 2
	}
	if c.OtherOffered <= 0 {
		c.OtherOffered = 0.8
	}
	defD(&c.RetryAfter, 3*time.Second)
	def(&c.Pauses, 3)
	defD(&c.Warmup, 5*time.Second)
	defD(&c.Latency, 5*time.Millisecond)
	def(&c.Concurrency, 4)
	// Only as many pauses as fit, each ending before the load does.
	if c.Warmup+c.RetryAfter >= c.Duration {
		c.Warmup = max(c.Duration/4, 0)
	}
	for c.Pauses > 1 && c.Warmup+time.Duration(c.Pauses-1)*pauseSpacing(c)+c.RetryAfter >= c.Duration {
		c.Pauses--
	}
	return c
}

// PauseEvent is what happened around one injected 429.
type PauseEvent struct {
	// AtSec is when the simulator answered the 429, since the load
	// started; AnswerMs how long after the request's arrival that was (the
	// simulator's latency).
	AtSec    float64 `json:"at_sec"`
	AnswerMs float64 `json:"answer_ms"`
	// InFlight counts the paused tenant's requests that arrived between
	// the 429's request and its answer: sent before anyone could know.
	InFlight int `json:"requests_while_429_answered"`
	// DuringPause counts the paused tenant's requests (from any replica)
	// the simulator received in (429, 429+R).
	DuringPause int `json:"requests_during_pause"`
	// DuringAtMs are those requests' times after the 429, in ms.
	DuringAtMs []float64 `json:"requests_during_pause_at_ms,omitempty"`
	// FirstAfterMs is the first request at or after 429+R, relative to
	// 429+R (nil: none before the run ended).
	FirstAfterMs *float64 `json:"first_after_deadline_ms"`
	// AllKnewMs is when the last replica learnt of the pause (its
	// Hooks.PauseChanged), after the 429's answer; nil if one never did.
	// DuringBeforeAllKnew counts the requests during the pause that came
	// before that: the window the pause's propagation leaves open.
	AllKnewMs           *float64 `json:"all_replicas_knew_ms"`
	DuringBeforeAllKnew int      `json:"requests_during_pause_before_all_knew"`
	// WorkerDeadlineMs is the earliest pause deadline a replica reported
	// (Hooks.PauseChanged), relative to 429+R.
	WorkerDeadlineMs *float64 `json:"worker_deadline_ms"`
	// Others' calls and jobs published during [429, 429+R).
	OthersServed    int     `json:"others_served"`
	OthersPublished int     `json:"others_published"`
	OthersRatio     float64 `json:"others_goodput_over_offered"`
}

// PauseFigures are the pause scenario's measurements.
type PauseFigures struct {
	Events []PauseEvent `json:"events"`
	// Outside the pauses: the other tenants' goodput ÷ offered over the rest
	// of the run (the same run's baseline).
	OthersOutsideRatio float64 `json:"others_outside_goodput_over_offered"`
	// The paused tenant's goodput per second outside the pauses.
	PausedOutsidePerSec float64 `json:"paused_outside_per_sec"`
	Injected            int     `json:"injected"`
	Observed            int     `json:"observed_429s"`
}

// RunPause runs the pause scenario.
func RunPause(ctx context.Context, cfg PauseConfig) (_ *Report, err error) {
	cfg = cfg.withDefaults()
	r := newReport("pause", "pause precision across worker replicas")
	n := 1 + cfg.Others
	tids := ids(n)
	paused := tids[0]
	r.set("replicas", "%d worker.Pool replicas, each on its own NATS connection with its own replica id, in one process", cfg.Replicas)
	r.set("paused tenant", "%s: rate_per_minute %d (org scope: each replica paces 1/%d of it), offers %.3g× = %.1f jobs/s", paused, cfg.PausedPerMin, cfg.Replicas, cfg.PausedOffered, cfg.PausedOffered*float64(cfg.PausedPerMin)/60)
	r.set("other tenants", "%d, rate_per_minute %d each, offering %.3g× = %.1f jobs/s each", cfg.Others, cfg.OtherPerMin, cfg.OtherOffered, cfg.OtherOffered*float64(cfg.OtherPerMin)/60)
	r.set("429", "simulator Throttle(%s, 1, R = %s): exactly one 429 with Retry-After %d; %d times, every %s after a %s warm-up; no other quota", clientID(paused), cfg.RetryAfter, int(cfg.RetryAfter.Seconds()), cfg.Pauses, pauseSpacing(cfg).Round(10*time.Millisecond), cfg.Warmup)
	r.set("simulator", "latency %s, unlimited quota", cfg.Latency)
	r.set("measured by", "the simulator's own request log (OnRequest): every request's arrival time and client; the pause is [429 answered, 429 answered + R)")

	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{Clients: simClients(tids), Latency: cfg.Latency, AutoCreate: true}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()
	ts := make([]tenants.Tenant, n)
	for i, id := range tids {
		per := cfg.OtherPerMin
		if i == 0 {
			per = cfg.PausedPerMin
		}
		// Org scope, so that the replicas share the paused tenant's rate as
		// the report says (and take turns after the pause).
		ts[i] = e.benchTenant(id, laneSpec{ratePerMinute: per, concurrency: cfg.Concurrency, scope: tenants.ScopeOrg})
	}
	if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{}, ts); err != nil {
		return nil, fmt.Errorf("bench: provision: %w", err)
	}
	hs := make([]*hooks, cfg.Replicas) // one per replica: when each learnt of a pause
	var ws []*workerRun
	defer func() {
		for _, w := range ws {
			err = errJoin(err, w.stop())
		}
	}()
	for i := range cfg.Replicas {
		hs[i] = newHooks()
		w, err := e.startWorker(ctx, fmt.Sprintf("bench-replica-%d", i+1), ts, hs[i])
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	consumers := make([]string, n)
	for i, id := range tids {
		consumers[i] = benchNames.Consumer(id)
	}
	// Every replica pulls every tenant: each consumer has a pull waiting
	// from each replica.
	if err := waitPulling(ctx, e.js, consumers, cfg.Replicas, 15*time.Second); err != nil {
		return nil, err
	}

	d := cfg.Duration
	const bucket = 10 * time.Millisecond
	start := time.Now().Add(100 * time.Millisecond)
	rec := newRecorder(start, n, d+2*time.Second, bucket, 0)
	rec.keep(1 << 20)
	e.observe(rec)
	flows := []flow{{tenant: 0, rate: cfg.PausedOffered * float64(cfg.PausedPerMin) / 60}}
	for i := 1; i < n; i++ {
		rate := cfg.OtherOffered * float64(cfg.OtherPerMin) / 60
		flows = append(flows, flow{tenant: i, rate: rate, phase: time.Duration(float64(i) / float64(n) / rate * float64(time.Second))})
	}
	genDone := make(chan genResult, 1)
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		go func() { genDone <- runOpenLoop(ctx, flows, start, start.Add(d), 8, rec, e.publisher(benchNames, tids)) }()
	})
	// Inject the 429s on schedule.
	spacing := pauseSpacing(cfg)
	injected := 0
	for i := range cfg.Pauses {
		at := start.Add(cfg.Warmup + time.Duration(i)*spacing)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(at)):
			e.sim.Throttle(clientID(paused), 1, cfg.RetryAfter)
			injected++
		}
	}
	gen := <-genDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if gen.Failed > 0 {
		return nil, fmt.Errorf("bench: %d publishes failed, first: %s", gen.Failed, gen.FirstErr)
	}
	pauses := make([][]pauseSeen, len(hs))
	for i, h := range hs {
		_, pauses[i] = h.snapshot()
	}

	figs := PauseFigures{Injected: injected}
	var pausedTimes []time.Duration
	var limited []event
	for _, ev := range rec.eventsCopy() {
		if ev.Tenant != 0 {
			continue
		}
		pausedTimes = append(pausedTimes, ev.At)
		if ev.Status == 429 {
			limited = append(limited, ev)
		}
	}
	figs.Observed = len(limited)
	R := cfg.RetryAfter
	var inPause time.Duration
	othersOutServed, othersOutPub := 0, 0
	prevEnd := time.Duration(0)
	for _, ev := range limited {
		// The pause starts when the 429 is answered: Retry-After counts
		// from then, and no replica can know of it earlier. Requests that
		// arrived while the 429 was being answered were sent before.
		t429 := ev.Answered
		end := t429 + R
		pe := PauseEvent{AtSec: t429.Seconds(), AnswerMs: ms(ev.Answered - ev.At)}
		for _, t := range pausedTimes {
			if t > ev.At && t <= t429 {
				pe.InFlight++
			}
			if t > t429 && t < end {
				pe.DuringPause++
				pe.DuringAtMs = append(pe.DuringAtMs, ms(t-t429))
			}
			if t >= end && pe.FirstAfterMs == nil {
				v := ms(t - end)
				pe.FirstAfterMs = &v
			}
		}
		// When each replica learnt of the pause (its first report of it).
		knownAll, allKnew := time.Duration(0), true
		for _, replica := range pauses {
			learnt := time.Duration(-1)
			for _, ps := range replica {
				if ps.tenant != paused || ps.until.IsZero() {
					continue
				}
				if at := rec.since(ps.at); at >= t429-time.Millisecond && at < end {
					if learnt < 0 {
						learnt = at
					}
					v := ms(rec.since(ps.until) - end)
					if pe.WorkerDeadlineMs == nil || v < *pe.WorkerDeadlineMs {
						pe.WorkerDeadlineMs = &v
					}
				}
			}
			if learnt < 0 {
				allKnew = false
				continue
			}
			knownAll = max(knownAll, learnt-t429)
		}
		if allKnew {
			v := ms(knownAll)
			pe.AllKnewMs = &v
			for _, at := range pe.DuringAtMs {
				if at <= v {
					pe.DuringBeforeAllKnew++
				}
			}
		}
		for i := 1; i < n; i++ {
			pe.OthersServed += rec.count(i, t429, end, countOK)
			pe.OthersPublished += rec.count(i, t429, end, countPublished)
			othersOutServed += rec.count(i, prevEnd, t429, countOK)
			othersOutPub += rec.count(i, prevEnd, t429, countPublished)
		}
		figs.PausedOutsidePerSec += float64(rec.count(0, prevEnd, t429, countOK))
		inPause += R
		prevEnd = end
		pe.OthersRatio = ratio(float64(pe.OthersServed), float64(pe.OthersPublished))
		figs.Events = append(figs.Events, pe)
	}
	for i := 1; i < n; i++ {
		othersOutServed += rec.count(i, prevEnd, d, countOK)
		othersOutPub += rec.count(i, prevEnd, d, countPublished)
	}
	figs.PausedOutsidePerSec += float64(rec.count(0, prevEnd, d, countOK))
	figs.PausedOutsidePerSec /= (d - inPause).Seconds()
	figs.OthersOutsideRatio = ratio(float64(othersOutServed), float64(othersOutPub))
	r.Figures = figs

	t := r.table("per injected 429 (times from the simulator's log; the pause runs from the 429's answer for R)", "429 answered at", "arrived while it was answered", "all replicas knew after", "requests during pause", "first request after 429+R", "replica's pause deadline − (429+R)", "others served/published during pause", "others goodput÷offered")
	during, worstOffset, minOffset := 0, math.Inf(-1), math.Inf(1)
	othersServed, othersPub := 0, 0
	for _, pe := range figs.Events {
		first, wd := "none", "none"
		if pe.FirstAfterMs != nil {
			first = fmt.Sprintf("+%.1f ms", *pe.FirstAfterMs)
			worstOffset = math.Max(worstOffset, *pe.FirstAfterMs)
			minOffset = math.Min(minOffset, *pe.FirstAfterMs)
		} else {
			worstOffset = math.Inf(1)
		}
		if pe.WorkerDeadlineMs != nil {
			wd = fmt.Sprintf("%+.1f ms", *pe.WorkerDeadlineMs)
		}
		during += pe.DuringPause
		othersServed += pe.OthersServed
		othersPub += pe.OthersPublished
		dur := fmt.Sprint(pe.DuringPause)
		if len(pe.DuringAtMs) > 0 {
			dur += " (at +" + strings.Join(fmtList(pe.DuringAtMs, "%.1f"), ", +") + " ms)"
		}
		knew := "never"
		if pe.AllKnewMs != nil {
			knew = fmt.Sprintf("+%.1f ms", *pe.AllKnewMs)
		}
		t.row(fmt.Sprintf("%.3f s", pe.AtSec), fmt.Sprint(pe.InFlight), knew, dur, first, wd, fmt.Sprintf("%d/%d", pe.OthersServed, pe.OthersPublished), fmtRatio(pe.OthersRatio))
	}
	base := r.table("baseline: outside the pauses, same run", "others goodput÷offered", fmt.Sprintf("%s goodput/s", paused))
	base.row(fmtRatio(figs.OthersOutsideRatio), fmt.Sprintf("%.1f", figs.PausedOutsidePerSec))

	seen := len(figs.Events) == injected && injected > 0
	r.target("every injected 429 observed", fmt.Sprintf("%d", injected), seen, "%d", len(figs.Events))
	beforeKnew := 0
	for _, pe := range figs.Events {
		beforeKnew += pe.DuringBeforeAllKnew
	}
	r.target("requests for the paused tenant during the pause, all replicas", "0", seen && during == 0, "%d over %d pauses (%d of them before every replica knew of the pause)", during, len(figs.Events), beforeKnew)
	offsetsOK := seen && minOffset >= 0 && worstOffset <= 100
	r.target("first request after the pause, relative to 429 + R", "within [0, +100 ms]", offsetsOK, "%s … %s", fmtOffset(minOffset), fmtOffset(worstOffset))
	othersRatio := ratio(float64(othersServed), float64(othersPub))
	r.target("other tenants' goodput ÷ offered during the pauses", "≥ 0.98", seen && othersRatio >= 0.98, "%.3f (%d/%d; outside the pauses %.3f)", othersRatio, othersServed, othersPub, figs.OthersOutsideRatio)
	r.finish()
	return r, nil
}

func fmtList(vs []float64, format string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf(format, v)
	}
	return out
}

func fmtOffset(v float64) string {
	if math.IsInf(v, 0) {
		return "none"
	}
	return fmt.Sprintf("%+.1f ms", v)
}

// pauseSpacing spreads the pauses over the run after the warm-up.
func pauseSpacing(cfg PauseConfig) time.Duration {
	return max((cfg.Duration-cfg.Warmup)/time.Duration(max(cfg.Pauses, 1)), cfg.RetryAfter+time.Second)
}
