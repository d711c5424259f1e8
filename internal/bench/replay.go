package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	registerScenario(Scenario{
		Name:            "replay",
		Summary:         "an org's live load at 0.5×Q, alone and while 1,000 of its dead letters are replayed (bulk class)",
		DefaultDuration: 30 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			return RunReplay(ctx, ReplayConfig{Options: o})
		},
	})
}

// ReplayConfig sizes the replay scenario; zero fields take the defaults in
// brackets.
type ReplayConfig struct {
	Options
	// Limit per Window is the org's quota Q [100 per 10 s].
	Limit  int
	Window time.Duration
	// LiveFactor is the live load as a multiple of Q [0.5].
	LiveFactor float64
	// DeadLetters is how many dead letters are replayed [1,000].
	DeadLetters int
	// ReplayAfter is when in the window the replay starts [2 s].
	ReplayAfter time.Duration
	// Concurrency is the tenant's concurrency [4]; Latency the simulator's
	// answer latency [50 ms]; Grace as in IsolationConfig [2 s].
	Concurrency int
	Latency     time.Duration
	Grace       time.Duration
}

func (c ReplayConfig) withDefaults() ReplayConfig {
	c.Duration = c.duration(30 * time.Second)
	if c.Limit <= 0 {
		c.Limit = 100
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.LiveFactor <= 0 {
		c.LiveFactor = 0.5
	}
	if c.DeadLetters <= 0 {
		c.DeadLetters = 1000
	}
	if c.ReplayAfter <= 0 {
		c.ReplayAfter = 2 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Latency <= 0 {
		c.Latency = 50 * time.Millisecond
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Second
	}
	return c
}

func (c ReplayConfig) q() float64 { return float64(c.Limit) / c.Window.Seconds() }

// ReplayMode is one mode's measurements.
type ReplayMode struct {
	Mode              string  `json:"mode"`
	Burst             int     `json:"burst"`
	LiveOfferedPerSec float64 `json:"live_offered_per_sec"`
	LiveGoodputPerSec float64 `json:"live_goodput_per_sec"`
	LiveGoodputRatio  float64 `json:"live_goodput_over_offered"`
	LiveLatency       Latency `json:"live_queue_to_call"`
	Replayed          int     `json:"replayed"`               // dead letters queued again
	ReplayTook        float64 `json:"replay_took_s"`          // how long replaying them took
	ReplayGoodput     float64 `json:"replay_goodput_per_sec"` // their calls answered 2xx, per second of the window after the replay began
	Total429          int     `json:"total_429"`
}

// ReplayFigures are the scenario's measurements.
type ReplayFigures struct {
	QPerSec float64      `json:"q_per_sec"`
	Modes   []ReplayMode `json:"modes"`
}

const (
	modeLiveOnly   = "live only (reference)"
	modeLiveReplay = "live + replay"
)

// RunReplay runs the replay scenario: the same live load twice on fresh
// servers, once alone and once while the tenant's dead letters are replayed.
func RunReplay(ctx context.Context, cfg ReplayConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	q := cfg.q()
	r := newReport("replay", "live goodput and latency while dead letters are replayed in the bulk class")
	r.set("quota Q", "%d requests per %s per OAuth client (fixed window, simulator) = %.1f/s, time-compressed; lane rate Q, concurrency %d; burst 1 (the default) and burst 2 (bulk waiting alone leaves a token banked for live work)", cfg.Limit, cfg.Window, q, cfg.Concurrency)
	r.set("live load", "one org, %.2g×Q = %.1f campaign.get jobs/s (normal class), steady open loop, per-job campaign (latency measured)", cfg.LiveFactor, cfg.LiveFactor*q)
	r.set("replay", "%d dead letters of the same org (campaign.get) stored before the window, all replayed through dispatcher.Admin.Replay from %s into the window: they queue in the bulk class", cfg.DeadLetters, cfg.ReplayAfter)
	r.set("measuring window", "%s per mode (+%s grace for latency), each mode on a fresh JetStream server and simulator; latency %s per answer", cfg.Duration, cfg.Grace, cfg.Latency)
	figs := ReplayFigures{QPerSec: q}
	for _, burst := range []int{1, 2} {
		for _, mode := range []string{modeLiveOnly, modeLiveReplay} {
			m, err := runReplayMode(ctx, cfg, mode, burst)
			if err != nil {
				return nil, fmt.Errorf("replay, mode %s, burst %d: %w", mode, burst, err)
			}
			figs.Modes = append(figs.Modes, *m)
		}
	}
	r.Figures = figs
	t := r.table("live jobs and the replay", "burst", "mode", "live offered/s", "live goodput/s", "live goodput÷offered", "live p50", "live p99", "replayed", "replay calls/s", "429s")
	for _, m := range figs.Modes {
		rep := "—"
		if m.Replayed > 0 {
			rep = fmt.Sprintf("%.2f", m.ReplayGoodput)
		}
		t.row(fmt.Sprint(m.Burst), m.Mode, fmt.Sprintf("%.2f", m.LiveOfferedPerSec), fmt.Sprintf("%.2f", m.LiveGoodputPerSec), fmtRatio(m.LiveGoodputRatio),
			fmtMs(m.LiveLatency.P50Ms), fmtMs(m.LiveLatency.P99Ms), fmt.Sprint(m.Replayed), rep, fmt.Sprint(m.Total429))
	}
	for i := 0; i+1 < len(figs.Modes); i += 2 {
		ref, rep := figs.Modes[i], figs.Modes[i+1]
		at := fmt.Sprintf(" (burst %d)", rep.Burst)
		r.target("live goodput ÷ offered during the replay"+at, "≥ 0.98 and ≥ the reference − 0.02", rep.LiveGoodputRatio >= 0.98 && rep.LiveGoodputRatio >= ref.LiveGoodputRatio-0.02,
			"%.3f (reference %.3f)", rep.LiveGoodputRatio, ref.LiveGoodputRatio)
		if rep.Burst >= 2 {
			ok, _ := p99Unchanged(rep.LiveLatency.P99Ms, ref.LiveLatency.P99Ms)
			r.target("live p99 queue-to-call during the replay unchanged"+at, "≤ max(1.25×, +5 ms) of the reference", ok, "%s during the replay vs %s without",
				fmtMs(rep.LiveLatency.P99Ms), fmtMs(ref.LiveLatency.P99Ms))
		} else {
			r.target("live p99 queue-to-call during the replay"+at, "≤ the reference + one rate interval + 25 ms", rep.LiveLatency.P99Ms != nil && ref.LiveLatency.P99Ms != nil && *rep.LiveLatency.P99Ms <= *ref.LiveLatency.P99Ms+1000/q+25,
				"%s (reference %s; one rate interval is %.0f ms)", fmtMs(rep.LiveLatency.P99Ms), fmtMs(ref.LiveLatency.P99Ms), 1000/q)
		}
		r.target("no 429 during the replay"+at, "0", rep.Total429 == 0, "%d", rep.Total429)
		r.note("burst %d: the replay took %.2f s to queue %d dead letters; they ran at %.2f calls/s beside the live %.2f/s (Q %.1f/s): bulk takes what live work leaves", rep.Burst, rep.ReplayTook, rep.Replayed, rep.ReplayGoodput, rep.LiveGoodputPerSec, q)
	}
	r.note("with burst 1 a live job cannot take a token bulk already took: while the replay keeps the limiter busy, a live job arriving between two tokens waits for the next one (half an interval on average, at most one); with burst 2, bulk waiting alone leaves one token banked (worker gate), so a live job goes at once")
	r.finish()
	return r, nil
}

func runReplayMode(ctx context.Context, cfg ReplayConfig, mode string, burst int) (_ *ReplayMode, err error) {
	q := cfg.q()
	tids := ids(1)
	e, err := newEnv(ctx, cfg.Dir, platformtest.Config{
		Limit: cfg.Limit, Window: cfg.Window, Scope: platformtest.ScopeClient,
		Latency: cfg.Latency, AutoCreate: true, Clients: simClients(tids),
	}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()
	ts := e.benchTenant(tids[0], laneSpec{ratePerMinute: int(math.Round(q * 60)), concurrency: cfg.Concurrency})
	ts.Burst = burst
	if err := dispatcher.Provision(ctx, e.js, benchNames, dispatcher.StreamConfig{}, []tenants.Tenant{ts}); err != nil {
		return nil, fmt.Errorf("bench: provision: %w", err)
	}
	var dlqSeqs []uint64
	if mode == modeLiveReplay {
		if dlqSeqs, err = storeDeadLetters(ctx, e, tids[0], cfg.DeadLetters); err != nil {
			return nil, err
		}
	}
	w, err := e.startWorker(ctx, "bench-worker", []tenants.Tenant{ts}, nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errJoin(err, w.stop())
		}
	}()
	if err := waitPulling(ctx, e.js, []string{benchNames.Consumer(tids[0])}, 1, 15*time.Second); err != nil {
		return nil, err
	}

	run := cfg.Duration + cfg.Grace
	live := cfg.LiveFactor * q
	start := time.Now().Add(100 * time.Millisecond)
	// Recorder tenant 0 is the live jobs, 1 the replayed ones (same org:
	// their calls name campaigns of index 1).
	rec := newRecorder(start, 2, run+time.Second, 100*time.Millisecond, uint64(live*run.Seconds()*1.05)+10)
	e.observe(rec)
	m := &ReplayMode{Mode: mode, Burst: burst}
	replayDone := make(chan error, 1)
	if len(dlqSeqs) > 0 {
		admin := dispatcher.NewAdmin(e.js, benchNames)
		go func() {
			select {
			case <-time.After(time.Until(start.Add(cfg.ReplayAfter))):
			case <-ctx.Done():
				replayDone <- ctx.Err()
				return
			}
			began := time.Now()
			for _, seq := range dlqSeqs {
				if _, err := admin.Replay(ctx, seq); err != nil {
					replayDone <- fmt.Errorf("replay dead letter %d: %w", seq, err)
					return
				}
				m.Replayed++
			}
			m.ReplayTook = time.Since(began).Seconds()
			replayDone <- nil
		}()
	} else {
		replayDone <- nil
	}
	var gen genResult
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		gen = runOpenLoop(ctx, []flow{{tenant: 0, rate: live, track: true}}, start, start.Add(run), 2, rec, e.publisher(benchNames, tids))
	})
	if err := <-replayDone; err != nil {
		return nil, err
	}
	stopped = true
	if err := w.stop(); err != nil {
		return nil, err
	}
	if gen.Failed > 0 {
		return nil, fmt.Errorf("bench: %d publishes failed, first: %s", gen.Failed, gen.FirstErr)
	}
	d := cfg.Duration
	served, unserved := rec.jobLatencies(0, 0, d)
	m.LiveOfferedPerSec = float64(rec.count(0, 0, d, countPublished)) / d.Seconds()
	m.LiveGoodputPerSec = float64(len(served)) / d.Seconds()
	m.LiveGoodputRatio = ratio(m.LiveGoodputPerSec, m.LiveOfferedPerSec)
	m.LiveLatency = summarize(served, unserved)
	if m.Replayed > 0 {
		m.ReplayGoodput = float64(rec.count(1, cfg.ReplayAfter, d, countOK)) / (d - cfg.ReplayAfter).Seconds()
	}
	m.Total429 = rec.count(0, 0, d, count429) + rec.count(1, 0, d, count429)
	return m, nil
}

// storeDeadLetters writes n dead letters of tenant (campaign.get of the
// shared campaign of recorder tenant 1) as the worker does, and returns
// their sequences.
func storeDeadLetters(ctx context.Context, e *env, tenant string, n int) ([]uint64, error) {
	params := jobParams(1, 0)
	seqs := make([]uint64, 0, n)
	for i := range n {
		id := fmt.Sprintf("dl-%d", i)
		body, err := json.Marshal(dispatcher.Job{ID: id, Tenant: tenant, Op: platform.OpCampaignGet, Params: params})
		if err != nil {
			return nil, err
		}
		m := nats.NewMsg(benchNames.DLQSubject(tenant, platform.OpCampaignGet))
		m.Data = body
		m.Header.Set(dispatcher.HeaderTenant, tenant)
		m.Header.Set(dispatcher.HeaderOp, platform.OpCampaignGet)
		m.Header.Set(dispatcher.HeaderJobID, id)
		m.Header.Set(dispatcher.HeaderErrorClass, "exhausted")
		m.Header.Set(dispatcher.HeaderError, "all 5 attempts failed (bench)")
		m.Header.Set(dispatcher.HeaderSubject, benchNames.JobSubject(tenant, platform.OpCampaignGet))
		ack, err := e.js.PublishMsg(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("bench: store dead letter: %w", err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs, nil
}
