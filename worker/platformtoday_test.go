package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Tests of how the worker meets today's Genesys Cloud (no inin-ratelimit-*
// headers, normalized 429 bodies with a limit object, the organization
// limits API, ININ-Correlation-Id on every answer).

// jsonLogs is a JSON log sink safe for concurrent writers.
type jsonLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *jsonLogs) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *jsonLogs) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// outboundRequests are the tenant's requests to the outbound API (jobs), not
// the lane's own limits reads.
func (e *env) outboundRequests(tenant string) []platformtest.Request {
	return e.sim.Requests(platformtest.RequestFilter{ClientID: "client_" + tenant, PathPrefix: "/api/v2/outbound/"})
}

func laneOf(p *Pool, id string) dispatcher.LaneReport {
	for _, r := range p.Lanes() {
		if r.Tenant == id {
			return r
		}
	}
	return dispatcher.LaneReport{}
}

func near(got, want float64) bool { return math.Abs(got-want) <= want*0.01 }

// A permanent failure's correlation id reaches the dead letter, the job's
// status record, its event and the failure's log line.
func TestCorrelationIDsReachEveryRecord(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	logs := &jsonLogs{}
	cfg := e.config("r1", newRecHooks(), ta)
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	e.start(cfg)
	events, err := e.nc.SubscribeSync(e.names.EventSubject("a", dispatcher.StateDead))
	if err != nil {
		t.Fatal(err)
	}

	e.sim.FailNext("client_a", 1, http.StatusNotFound)
	e.publish("a", getJob("gone", "c-gone"))
	st := e.waitStatus("a", "gone", dispatcher.StateDead, 10*time.Second)
	rs := e.outboundRequests("a")
	if len(rs) != 1 || rs[0].Status != 404 || rs[0].CorrelationID == "" {
		t.Fatalf("requests: %+v", rs)
	}
	want := rs[0].CorrelationID
	if st.CorrelationID != want {
		t.Errorf("status record correlation id %q, want %q", st.CorrelationID, want)
	}
	if got := e.deadLetter("a", platform.OpCampaignGet).Header.Get(dispatcher.HeaderCorrelation); got != want {
		t.Errorf("dead letter %s = %q, want %q", dispatcher.HeaderCorrelation, got, want)
	}
	msg, err := events.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ev event
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.CorrelationID != want {
		t.Errorf("event %s: correlation id %q, want %q (%v)", msg.Data, ev.CorrelationID, want, err)
	}
	found := false
	for _, l := range logs.lines() {
		if l["msg"] == condDeadLettered+" ("+ClassPermanent+")" {
			found = true
			if l["correlation_id"] != want {
				t.Errorf("log line %v: correlation_id %v, want %q", l, l["correlation_id"], want)
			}
		}
	}
	if !found {
		t.Error("no log line for the dead-lettered job")
	}
}

// rate: auto against today's platform: the lane reads the org's limits when
// it starts and paces by them from the first job on, with no 429.
func TestAutoRateLearnsQuotaFromLimitsAPI(t *testing.T) {
	const jobs = 15
	e := newEnv(t, platformtest.Config{Limit: 20, Window: 2 * time.Second}, "a") // 600/min
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RateAuto = true; t.RatePerMinute = 6000; t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))
	limits := e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/organizations/limits/"})
	eventually(t, "the lane to learn the quota", 5*time.Second, func() bool { return laneOf(p, "a").RateSource == RateSourceLimitsAPI })
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%02d", i), "c1"))
	}
	hooks.waitFor(t, "every job", 20*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == jobs })
	if n := e.sim.Stats("client_a").RateLimited; n != 0 {
		t.Errorf("%d 429s with rate: auto", n)
	}
	limits = e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/organizations/limits/"})
	if len(limits) != 1 || limits[0].Status != 200 {
		t.Errorf("limits reads: %+v, want one at start", limits)
	}
	rs := e.outboundRequests("a")
	if span := rs[len(rs)-1].At.Sub(rs[0].At); span < 1200*time.Millisecond {
		t.Errorf("%d requests within %s: not paced to the learnt 10/s quota", jobs, span)
	}
	if r := laneOf(p, "a").RatePerSec; !near(r, 10*autoHeadroom) {
		t.Errorf("lane rate %g/s, want %g (600/min less the headroom)", r, 10*autoHeadroom)
	}
}

// Without the limits API (403: the OAuth client lacks the permission) rate:
// auto learns the quota from the first 429's limit object: one 429, then
// paced.
func TestAutoRateLearnsQuotaFrom429Limit(t *testing.T) {
	e := newEnv(t, platformtest.Config{Limit: 10, Window: 2 * time.Second}, "a") // 300/min
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RateAuto = true; t.RatePerMinute = 6000; t.Concurrency = 1 })
	e.provision(ta)
	e.sim.FailNext("client_a", 1, http.StatusForbidden) // the lane's first request: its limits read
	hooks := newRecHooks()
	cfg := e.config("r1", hooks, ta)
	cfg.DefaultRetryAfter = time.Second
	p, _ := e.start(cfg)
	eventually(t, "the limits read to fail", 5*time.Second, func() bool {
		rs := e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/organizations/limits/"})
		return len(rs) == 1 && rs[0].Status == 403
	})
	const jobs = 16
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%02d", i), "c1"))
	}
	hooks.waitFor(t, "every job", 30*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == jobs })
	if n := e.sim.Stats("client_a").RateLimited; n != 1 {
		t.Errorf("%d 429s, want exactly 1 (the one it learnt from)", n)
	}
	lr := laneOf(p, "a")
	if lr.RateSource != RateSource429 || !near(lr.RatePerSec, 5*autoHeadroom) {
		t.Errorf("lane rate %g/s from %q, want %g from %q", lr.RatePerSec, lr.RateSource, 5*autoHeadroom, RateSource429)
	}
}

// A 429 of an endpoint family's own limit pauses the tenant but does not
// lower its pace: the paced limit is the token's.
func TestAutoRateIgnoresOtherLimitsFor429Pace(t *testing.T) {
	e := newEnv(t, platformtest.Config{Limit: 60, Window: 2 * time.Second, EndpointLimits: []platformtest.EndpointLimit{{
		PathPrefix: "/api/v2/outbound/campaigns/", Limit: 3, Key: "outbound.campaigns.rate.per.minute", Namespace: "outbound",
	}}}, "a") // 1800/min overall, 90/min for campaigns
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RateAuto = true; t.RatePerMinute = 600; t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	cfg := e.config("r1", hooks, ta)
	p, _ := e.start(cfg)
	eventually(t, "the lane to learn the quota", 5*time.Second, func() bool { return laneOf(p, "a").RateSource == RateSourceLimitsAPI })
	const jobs = 5
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%02d", i), "c1"))
	}
	hooks.waitFor(t, "every job", 20*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == jobs })
	if n := e.sim.Stats("client_a").RateLimited; n == 0 {
		t.Fatal("no 429: the endpoint family's limit was never hit")
	}
	if lr := laneOf(p, "a"); lr.RateSource != RateSourceLimitsAPI || !near(lr.RatePerSec, 30*autoHeadroom) {
		t.Errorf("lane rate %g/s from %q after the campaigns limit's 429, want %g from %q", lr.RatePerSec, lr.RateSource, 30*autoHeadroom, RateSourceLimitsAPI)
	}
}

// A 503 with Retry-After is retried no sooner than it asked.
func TestTransientRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	cfg := e.config("r1", newRecHooks(), ta)
	cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 5*time.Second
	e.start(cfg)
	e.sim.FailNextRetryAfter("client_a", 1, http.StatusServiceUnavailable, 2*time.Second)
	e.publish("a", getJob("busy", "c1"))
	e.waitStatus("a", "busy", dispatcher.StateSucceeded, 10*time.Second)
	rs := e.outboundRequests("a")
	if len(rs) != 2 || rs[0].Status != 503 {
		t.Fatalf("requests: %+v", rs)
	}
	if gap := rs[1].At.Sub(rs[0].At); gap < 2*time.Second {
		t.Errorf("retried %s after a 503 with Retry-After: 2, want at least 2s", gap)
	}
}
