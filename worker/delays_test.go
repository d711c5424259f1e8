package worker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Jobs waiting out a delay never hold the tenant's other jobs back: with as
// many jobs in retry backoff (5xx) as the tenant's concurrency, its other
// jobs still run at its configured rate, and another tenant is unaffected.
// (With MaxAckPending = concurrency, as before, nats-server counted the
// backing-off jobs as out and delivered nothing else until their backoff
// ended.)
func TestJobsInBackoffDoNotHoldTheTenant(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a", "b")
	// The platform answers 503 to every request about campaign c-broken
	// and lets the simulator answer the rest.
	var mu sync.Mutex
	var brokenAt []time.Time
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/c-broken") {
			mu.Lock()
			brokenAt = append(brokenAt, time.Now())
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"code":"service.unavailable","message":"down"}`))
			return
		}
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	const conc = 2
	ta := e.tenant("a", func(t *tenants.Tenant) {
		t.APIBase, t.TokenURL = front.URL, front.URL+"/oauth/token"
		t.Concurrency, t.RatePerMinute, t.MaxAttempts = conc, 600, 10 // 10/s
	})
	tb := e.tenant("b", func(t *tenants.Tenant) { t.Concurrency, t.RatePerMinute = conc, 600 })
	e.provision(ta, tb)
	hooks := newRecHooks()
	cfg := e.config("r1", hooks, ta, tb)
	cfg.BackoffBase, cfg.BackoffMax = time.Minute, time.Minute // the broken jobs sleep for the whole test
	e.start(cfg)

	for i := range conc {
		e.publish("a", getJob(fmt.Sprintf("broken%d", i), "c-broken"))
	}
	hooks.waitFor(t, "every broken job to be in backoff", 10*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeRetried] >= conc })

	const jobs = 30
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("a%02d", i), "c-ok"))
		e.publish("b", getJob(fmt.Sprintf("b%02d", i), "c-ok"))
	}
	hooks.waitFor(t, "the other jobs", 20*time.Second, func(h *recHooks) bool {
		return h.finished["a"][OutcomeSucceeded] == jobs && h.finished["b"][OutcomeSucceeded] == jobs
	})
	rates := map[string]float64{}
	for _, tenant := range []string{"a", "b"} {
		var first, last time.Time
		rs := e.sim.Requests(platformtest.RequestFilter{ClientID: "client_" + tenant, PathPrefix: "/api/v2/outbound/campaigns/"})
		for _, r := range rs {
			if r.Status == http.StatusOK && strings.Contains(r.Path, "/c-ok") {
				if first.IsZero() {
					first = r.At
				}
				last = r.At
			}
		}
		// The tenant's calls between its first and last good job: the good
		// ones, and any retry of a broken one that fell in between (it uses
		// the tenant's quota like any call; the broken jobs' 503s reach the
		// front server, not the simulator, so count them there).
		calls := 0
		for _, r := range rs {
			if !r.At.Before(first) && !r.At.After(last) {
				calls++
			}
		}
		if tenant == "a" {
			mu.Lock()
			for _, at := range brokenAt {
				if !at.Before(first) && !at.After(last) {
					calls++
				}
			}
			mu.Unlock()
		}
		rates[tenant] = float64(calls-1) / last.Sub(first).Seconds()
		t.Logf("tenant %s: %d calls at %.2f/s beside %d jobs in backoff", tenant, calls, rates[tenant], conc)
	}
	// b, with no job in backoff, is the same run's baseline: on a loaded
	// machine a lane paced with burst 1 loses a little of its rate to late
	// wake-ups, a and b alike.
	baseline := min(10, rates["b"])
	if rates["a"] < 0.95*baseline {
		t.Errorf("tenant a made its calls at %.2f/s, want ≥ 0.95 of %.2f/s (its configured 10/s, or what tenant b got in the same run)", rates["a"], baseline)
	}
	if rates["b"] < 0.8*10 {
		t.Errorf("tenant b (no jobs in backoff) got only %.2f/s of its 10/s", rates["b"])
	}
	for i := range conc {
		if st := e.waitStatus("a", fmt.Sprintf("broken%d", i), dispatcher.StateRetrying, time.Second); st.Attempts < 1 {
			t.Errorf("broken%d: %+v", i, st)
		}
	}
}

// A consumer leader-elected advisory makes the tenant's lane pull anew at
// once (a pull request dies with the leader it was sent to), and nothing is
// lost on the way.
func TestLeaderAdvisoryRestartsThePull(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a", "b")
	ta, tb := e.tenant("a", nil), e.tenant("b", nil)
	e.provision(ta, tb)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta, tb))
	iter := func(id string) any {
		l := p.lane(id)
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.pullers[dispatcher.PriorityNormal.Index()].iter
	}
	eventually(t, "both lanes pulling", 5*time.Second, func() bool { return iter("a") != nil && iter("b") != nil })
	before, other := iter("a"), iter("b")
	adv := fmt.Sprintf(`{"type":%q,"stream":%q,"consumer":%q,"leader":"n2"}`, leaderAdvisoryType, e.names.JobsStream("a"), e.names.Consumer("a"))
	if err := e.nc.Publish("$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED."+e.names.JobsStream("a")+"."+e.names.Consumer("a"), []byte(adv)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lane a to pull anew", 5*time.Second, func() bool { it := iter("a"); return it != nil && it != before })
	if iter("b") != other {
		t.Error("lane b pulled anew on an advisory about a's consumer")
	}
	e.publish("a", getJob("after", "c1"))
	e.waitStatus("a", "after", dispatcher.StateSucceeded, 5*time.Second)
}
