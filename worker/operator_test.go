package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// An operator's pause (dispatcher.Pause from the API) stops the lane like a
// 429 does: the job waiting on the limiter is handed back, nothing is sent,
// and an early Resume brings everything back within seconds.
func TestOperatorPauseAndResume(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RatePerMinute = 60; t.Concurrency = 2 }) // 1/s
	e.provision(ta)
	reqs := watchRequests(e.sim)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))
	for i := range 3 {
		e.publish("a", getJob(fmt.Sprintf("j%d", i), fmt.Sprintf("c%d", i)))
	}
	// The first job goes at once; the second waits a second for the limiter.
	hooks.waitFor(t, "the first job", 10*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dispatcher.Pause(ctx, e.js, e.names, "a", time.Now().Add(time.Minute), "operator", "api"); err != nil {
		t.Fatal(err)
	}
	hooks.waitFor(t, "the lane to learn of the pause and hand the waiting job back", 5*time.Second, func(h *recHooks) bool {
		return len(h.pauses["a"]) > 0 && h.finished["a"][OutcomeHandedBack] >= 1
	})
	if lane := p.Lanes()[0]; lane.State != dispatcher.LanePaused || lane.PausedUntil.IsZero() {
		t.Errorf("lane during the pause: %+v", lane)
	}
	resumed := time.Now()
	if err := dispatcher.Resume(ctx, e.js, e.names, "a"); err != nil {
		t.Fatal(err)
	}
	hooks.waitFor(t, "every job after the resume", 15*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == 3 })
	if took := time.Since(resumed); took > 8*time.Second {
		t.Errorf("the jobs took %s after the resume", took)
	}
	rs := reqs.of("a")
	if len(rs) != 3 {
		t.Fatalf("%d requests, want 3", len(rs))
	}
	for _, r := range rs[1:] {
		if r.At.Before(resumed) {
			t.Errorf("request at %s, during the operator's pause", r.At.Format(time.StampMilli))
		}
	}
	if _, rec, err := dispatcher.PauseState(ctx, e.js, e.names, "a"); err != nil || rec != nil {
		t.Errorf("pause state after resume: %+v, %v", rec, err)
	}
}

// Org-scoped quotas are shared by the live replicas: two replicas each run
// at half the quota; when one stops (and deletes its heartbeat), the other
// takes the whole quota again.
func TestQuotaSharedByLiveReplicas(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.QuotaScope = tenants.ScopeOrg }) // 600/min
	e.provision(ta)
	p1, _ := e.start(e.config("r1", nil, ta))
	p2, stop2 := e.start(e.config("r2", nil, ta))
	rate := func(p *Pool) float64 { return p.Lanes()[0].RatePerSec }
	eventually(t, "both replicas at half the quota", 5*time.Second, func() bool { return rate(p1) == 5 && rate(p2) == 5 })
	if err, _ := stop2(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remaining replica at the whole quota", 5*time.Second, func() bool { return rate(p1) == 10 })
}

// rate: auto still paces by the legacy inin-ratelimit-* headers where a
// platform sends them (Genesys Cloud removed them in 2021; the simulator's
// legacy mode): a tenant configured far above its real quota learns it from
// the first answer and then sees no 429.
func TestAutoRateLearnsQuotaFromLegacyHeaders(t *testing.T) {
	const jobs = 20
	e := newEnv(t, platformtest.Config{Limit: 21, Window: 2 * time.Second, LegacyRateLimitHeaders: true}, "a") // ≈ 10/s; one request is the limits read
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RateAuto = true; t.RatePerMinute = 6000; t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%02d", i), "c1"))
	}
	hooks.waitFor(t, "every job", 20*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == jobs })
	stats := e.sim.Stats("client_a")
	if stats.RateLimited != 0 {
		t.Errorf("%d 429s with rate: auto", stats.RateLimited)
	}
	// Configured at 100/s, the 20 requests would take ≈ 0.2 s; paced to the
	// learnt 10/s (20 per 2 s window) they spread over most of the window.
	rs := e.outboundRequests("a")
	if len(rs) != jobs {
		t.Fatalf("%d API requests, want %d", len(rs), jobs)
	}
	if span := rs[len(rs)-1].At.Sub(rs[0].At); span < time.Second {
		t.Errorf("%d requests within %s: not paced to the learnt 10/s quota", jobs, span)
	}
	if r := p.Lanes()[0]; r.RatePerSec >= 100 || r.RateSource != RateSourceHeaders {
		t.Errorf("lane rate %g/s from %q: still the configured 100/s, or not from the headers", r.RatePerSec, r.RateSource)
	}
}

// Update adds, changes and removes lanes while running, losing no message.
func TestUpdateTenants(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a", "b")
	ta, tb := e.tenant("a", nil), e.tenant("b", nil)
	e.provision(ta, tb)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))

	// Add b.
	ctx := context.Background()
	if err := p.Update(ctx, []tenants.Tenant{ta, tb}); err != nil {
		t.Fatal(err)
	}
	e.publish("b", getJob("b1", "c1"))
	e.waitStatus("b", "b1", dispatcher.StateSucceeded, 10*time.Second)

	// Change a: new rate and concurrency, new credentials.
	e.sim.AddClient(platformtest.ClientCred{ID: "client_a2", Secret: "secret_a2", Org: "a"})
	ta2 := ta
	ta2.RatePerMinute, ta2.Concurrency = 1200, 3
	ta2.ClientID, ta2.ClientSecret = "client_a2", tenants.NewSecret("secret_a2")
	if err := p.Update(ctx, []tenants.Tenant{ta2, tb}); err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Lanes() {
		if l.Tenant == "a" && l.RatePerSec != 20 {
			t.Errorf("lane a rate %g after the update, want 20", l.RatePerSec)
		}
	}
	e.publish("a", getJob("a1", "c1"))
	e.waitStatus("a", "a1", dispatcher.StateSucceeded, 10*time.Second)
	if n := e.sim.Stats("client_a2").Succeeded; n != 1 {
		t.Errorf("new credentials used for %d requests, want 1", n)
	}

	// Remove b: its lane stops; its queued job stays queued.
	if err := p.Update(ctx, []tenants.Tenant{ta2}); err != nil {
		t.Fatal(err)
	}
	if ls := p.Lanes(); len(ls) != 1 || ls[0].Tenant != "a" {
		t.Errorf("lanes after removing b: %+v", ls)
	}
	e.publish("b", getJob("b2", "c2"))
	e.publish("a", getJob("a2", "c2"))
	e.waitStatus("a", "a2", dispatcher.StateSucceeded, 10*time.Second)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(cctx, e.names.JobsStream("b"), e.names.Consumer("b"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 1 || info.NumAckPending != 0 {
		t.Errorf("b's consumer after its lane was removed: %d pending, %d unacked; want 1, 0", info.NumPending, info.NumAckPending)
	}
}

// While the token endpoint is down the lane parks with backoff: it hands its
// job back at once without using an attempt, stops pulling, and probes with
// token fetches on its own schedule, not with jobs; when the endpoint is
// back it pulls again and the job runs.
func TestTokenOutageParksLane(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 1; t.MaxAttempts = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))
	e.sim.SetTokenOutage(true)
	e.publish("a", getJob("j1", "c1"))
	hooks.waitFor(t, "a hand-back", 10*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeHandedBack] >= 1 })
	eventually(t, "the lane parked, not pulling", 10*time.Second, func() bool { return p.Lanes()[0].Parked })
	// A redelivery may still reach the iterator while it drains (it is
	// handed back again, free); after that, only probes.
	handedBack := hooks.count("a", OutcomeHandedBack)
	probes := e.sim.Stats("client_a").TokenErrors
	eventually(t, "3 more token probes", 10*time.Second, func() bool { return e.sim.Stats("client_a").TokenErrors >= probes+3 })
	if l := p.Lanes()[0]; l.State != dispatcher.LaneTokenUnavailable || !l.Parked {
		t.Errorf("lane during the outage: %+v", l)
	}
	if n := hooks.count("a", OutcomeHandedBack); n != handedBack || n > 2 {
		t.Errorf("%d hand-backs during the outage (%d when parked), want no more while parked: a parked lane probes with token fetches, not jobs", n, handedBack)
	}
	e.sim.SetTokenOutage(false)
	st := e.waitStatus("a", "j1", dispatcher.StateSucceeded, 10*time.Second)
	if st.Attempts != 1 || st.FreeDeliveries != handedBack {
		t.Errorf("status %+v: want attempt 1 after %d free deliveries", st, handedBack)
	}
	if l := p.Lanes()[0]; l.State != dispatcher.LaneRunning || l.Parked {
		t.Errorf("lane after the outage: %+v", l)
	}
}

// A job whose deadline has passed is dead-lettered as expired, unsent.
func TestExpiredJobIsDeadLettered(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	e.start(e.config("r1", nil, ta))
	job := getJob("late", "c1")
	past := time.Now().Add(-time.Second)
	job.Deadline = &past
	e.publish("a", job)
	st := e.waitStatus("a", "late", dispatcher.StateDead, 10*time.Second)
	if dl := e.deadLetter("a", "campaign.get"); dl.Header.Get(dispatcher.HeaderErrorClass) != ClassExpired {
		t.Errorf("dead letter class %q, status %+v", dl.Header.Get(dispatcher.HeaderErrorClass), st)
	}
	if n := len(e.apiRequests("a")); n != 0 {
		t.Errorf("%d platform requests for an expired job", n)
	}
}
