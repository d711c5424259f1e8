package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// unreachableTokens is a RoundTripper for which the token endpoint does not
// answer (a network fault between one replica and the login host); API
// requests go through.
type unreachableTokens struct{ next http.RoundTripper }

func (u unreachableTokens) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/oauth/") {
		return nil, errors.New("dial tcp: connect: no route to host")
	}
	return u.next.RoundTrip(r)
}

// Issue 9, part 2: one replica whose lane is parked (its credentials
// rejected there, or the token endpoint unreachable from there) gets out of
// the way: it stops pulling, hands back what it held at once, and its peers
// stop counting it in the tenant's org-scoped quota. The tenant keeps ≥ 0.95
// of its configured rate, served by the healthy replica; no job is lost and
// none uses up an attempt.
func TestParkedReplicaLeavesTenantToHealthyOnes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		sick  func(e *env, t *tenants.Tenant, hc *http.Client)
	}{
		{"credentials rejected", dispatcher.LaneCredentialsRejected, func(e *env, t *tenants.Tenant, hc *http.Client) {
			t.ClientSecret = tenants.NewSecret("wrong secret on this replica")
		}},
		{"token endpoint unreachable", dispatcher.LaneTokenUnavailable, func(e *env, t *tenants.Tenant, hc *http.Client) {
			hc.Transport = unreachableTokens{hc.Transport}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const (
				perMinute = 1200 // 20/s, org-scoped: shared by the replicas that pull
				jobs      = 170
				skip      = 20  // successes before the measured interval
				measured  = 120 // intervals between successes measured: 6 s
			)
			e := newEnv(t, platformtest.Config{}, "a")
			healthy := e.tenant("a", func(t *tenants.Tenant) {
				t.RatePerMinute, t.Concurrency, t.QuotaScope = perMinute, 4, tenants.ScopeOrg
				// A burst of 4 lets a late wake-up (a loaded 2-core machine,
				// -race) catch up instead of losing the time; the average
				// over the interval stays the rate.
				t.Burst = 4
			})
			sick := healthy
			sickHC := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
			t.Cleanup(sickHC.Transport.(*http.Transport).CloseIdleConnections)
			tc.sick(e, &sick, sickHC)
			if tr, ok := sickHC.Transport.(unreachableTokens); ok {
				t.Cleanup(tr.next.(*http.Transport).CloseIdleConnections)
			}
			e.provision(healthy)
			reqs := watchRequests(e.sim)

			h1, h2 := newRecHooks(), newRecHooks()
			p1, _ := e.start(e.config("r1", h1, healthy))
			cfg2 := e.config("r2", h2, sick)
			cfg2.HTTPClient = sickHC
			// The production parking backoff (1 s doubling to 5 min): a
			// parked lane that kept pulling would hold the tenant's slots
			// (MaxAckPending) for that long with each job it handed back.
			cfg2.BackoffBase, cfg2.BackoffMax = DefaultBackoffBase, DefaultBackoffMax
			p2, _ := e.start(cfg2)
			// Both replicas live: each takes half the quota until one parks.
			eventually(t, "both replicas to see each other", 10*time.Second, func() bool {
				return p1.Lanes()[0].RatePerSec == perMinute/60/2 && p2.Lanes()[0].RatePerSec == perMinute/60/2
			})

			for i := range jobs {
				e.publish("a", getJob(fmt.Sprintf("j%03d", i), "c1"))
			}
			eventually(t, "r2's lane parked and r1 at the whole quota", 10*time.Second, func() bool {
				l2 := p2.Lanes()[0]
				return l2.Parked && l2.State == tc.state && p1.Lanes()[0].RatePerSec == perMinute/60
			})
			ok := func(r platformtest.Request) bool { return r.Status == http.StatusOK }
			rs := reqs.waitFor(t, "the measured successes", 30*time.Second, "a", func(rs []platformtest.Request) bool {
				return count(rs, ok) >= skip+measured+1
			})
			var okAt []time.Time
			for _, r := range rs {
				if ok(r) {
					okAt = append(okAt, r.At)
				}
			}
			span := okAt[skip+measured].Sub(okAt[skip])
			got := float64(measured) / span.Seconds()
			want := float64(perMinute) / 60
			t.Logf("tenant a: %.2f successful requests/s over %s with r2 parked (%s); configured %.0f/s: %.3f of it",
				got, span.Round(time.Millisecond), tc.state, want, got/want)
			if got < 0.95*want {
				t.Errorf("tenant a ran at %.2f requests/s with one replica parked, want ≥ 0.95 × %.0f", got, want)
			}

			// Nothing lost, nothing counted: every job succeeds on r1 at its
			// first attempt.
			h1.waitFor(t, "every job to succeed on r1", 30*time.Second, func(h *recHooks) bool {
				return h.finished["a"][OutcomeSucceeded] == jobs
			})
			for i := range jobs {
				st := e.waitStatus("a", fmt.Sprintf("j%03d", i), dispatcher.StateSucceeded, 5*time.Second)
				if st.Attempts != 1 {
					t.Errorf("job %s: attempts %d, want 1 (r2's hand-backs are free)", st.ID, st.Attempts)
				}
			}
			// r2 sent no API request, and held at most one pull's worth:
			// after parking it probes with token fetches, not jobs.
			if n := h2.count("a", OutcomeSucceeded); n != 0 {
				t.Errorf("r2 succeeded %d jobs without a token", n)
			}
			if n := h2.count("a", OutcomeHandedBack); n > 2*healthy.Concurrency {
				t.Errorf("r2 handed back %d jobs, want ≤ %d: a parked lane must stop pulling", n, 2*healthy.Concurrency)
			}
			t.Logf("r2 handed back %d jobs before it stopped pulling", h2.count("a", OutcomeHandedBack))
		})
	}
}

// setStatusWritable makes the status bucket refuse writes (its stream full,
// discarding new messages) or take them again: a real server-side fault.
func (e *env) setStatusWritable(writable bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, "KV_"+e.names.StatusBucket())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Discard = jetstream.DiscardNew
	cfg.MaxBytes = -1
	if !writable {
		cfg.MaxBytes = 1
	}
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		e.t.Fatalf("status bucket writable=%v: %v", writable, err)
	}
}

// Issue 9, part 3: a hand-back whose record cannot be written yet keeps the
// job (in progress) and tries again until it is stored, then naks: a slow
// or failing status bucket never turns a free delivery into an attempt.
// With one attempt allowed, a counted hand-back would dead-letter the job.
func TestSlowHandBackRecordIsNotAnAttempt(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 1; t.MaxAttempts = 1 })
	e.provision(ta)
	e.publish("a", getJob("j1", "c1"))
	e.sim.SetTokenOutage(true) // the lane parks and hands the job back
	e.setStatusWritable(false)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))

	eventually(t, "the hand-back record failing", 10*time.Second, func() bool { return p.lane("a").cond.Active("a", condRecordHandBack) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(ctx, e.names.JobsStream("a"), e.names.Consumer("a"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 || info.NumRedelivered != 0 {
		t.Errorf("while its record cannot be written: %d ack pending, %d redelivered; want the job held (1, 0)", info.NumAckPending, info.NumRedelivered)
	}
	if n := hooks.count("a", OutcomeHandedBack); n != 0 {
		t.Errorf("%d hand-backs finished before their record was stored", n)
	}

	e.setStatusWritable(true)
	hooks.waitFor(t, "the hand-back", 10*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeHandedBack] >= 1 })
	if p.lane("a").cond.Active("a", condRecordHandBack) {
		t.Error("condition still active after the record was stored")
	}
	e.sim.SetTokenOutage(false)
	st := e.waitStatus("a", "j1", dispatcher.StateSucceeded, 10*time.Second)
	if n := hooks.count("a", OutcomeHandedBack); st.Attempts != 1 || st.FreeDeliveries != n {
		t.Errorf("status %+v: want attempt 1 after %d free deliveries (its hand-backs)", st, n)
	}
}

// A parked replica that gets working credentials (a reload) pulls again at
// once, its heartbeat says so, and the replicas share the tenant's quota
// again.
func TestParkedReplicaResumesWithNewCredentials(t *testing.T) {
	const perMinute = 1200
	e := newEnv(t, platformtest.Config{}, "a")
	healthy := e.tenant("a", func(t *tenants.Tenant) { t.RatePerMinute, t.Concurrency, t.QuotaScope = perMinute, 4, tenants.ScopeOrg })
	sick := healthy
	sick.ClientSecret = tenants.NewSecret("wrong secret on this replica")
	e.provision(healthy)
	h1, h2 := newRecHooks(), newRecHooks()
	p1, _ := e.start(e.config("r1", h1, healthy))
	p2, _ := e.start(e.config("r2", h2, sick))
	for i := range 20 {
		e.publish("a", getJob(fmt.Sprintf("j%d", i), "c1"))
	}
	eventually(t, "r2 parked and r1 at the whole quota", 10*time.Second, func() bool {
		return p2.Lanes()[0].Parked && p1.Lanes()[0].RatePerSec == perMinute/60
	})
	h1.waitFor(t, "the first jobs on r1", 10*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeSucceeded] == 20 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p2.Update(ctx, []tenants.Tenant{healthy}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "r2 pulling again and both at half the quota", 10*time.Second, func() bool {
		l2 := p2.Lanes()[0]
		return !l2.Parked && l2.RatePerSec == perMinute/60/2 && p1.Lanes()[0].RatePerSec == perMinute/60/2
	})
	for i := range 40 {
		e.publish("a", getJob(fmt.Sprintf("k%d", i), "c1"))
	}
	h2.waitFor(t, "jobs on r2", 20*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeSucceeded] > 0 })
	for i := range 40 {
		e.waitStatus("a", fmt.Sprintf("k%d", i), dispatcher.StateSucceeded, 20*time.Second)
	}
	t.Logf("after the reload: r1 ran %d jobs, r2 %d", h1.count("a", OutcomeSucceeded)-20, h2.count("a", OutcomeSucceeded))
}
