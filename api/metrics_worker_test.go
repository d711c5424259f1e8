package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/metrics/metricstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// signalHooks passes the pool's events to the metrics and signals each job
// outcome.
type signalHooks struct {
	*metrics.Metrics
	finished chan string // outcomes
}

func (h signalHooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	h.Metrics.JobFinished(tenant, op, outcome, elapsed)
	select {
	case h.finished <- outcome:
	default:
	}
}

// TestMetricsPageShowsWorker429AndPause runs a real worker pool against the
// platform simulator: the platform answers one request with 429, the worker
// pauses the tenant, and /metrics (and /v1/tenants) show both.
func TestMetricsPageShowsWorker429AndPause(t *testing.T) {
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients:    []platformtest.ClientCred{{ID: "client_org_a", Secret: "secret_org_a", Org: "org_a"}},
		AutoCreate: true,
	})
	orgA := tenants.Tenant{
		ID: "org_a", ClientID: "client_org_a", ClientSecret: tenants.NewSecret("secret_org_a"),
		APIBase: sim.URL, TokenURL: sim.TokenURL(),
		RatePerMinute: 600, Burst: 1, Concurrency: 1, MaxAttempts: 5, QuotaScope: tenants.ScopeToken,
	}
	e := newEnv(t, withTenants(orgA, tenants.Tenant{ID: "org_b", Concurrency: 1}))
	sim.Throttle("client_org_a", 1, 45*time.Second)

	hooks := signalHooks{Metrics: e.metrics, finished: make(chan string, 16)}
	pool, err := worker.New(worker.Config{
		JS: e.js, Conn: e.nc, Names: e.names, Tenants: []tenants.Tenant{orgA}, ReplicaID: "replica-1",
		Hooks: hooks, HeartbeatInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pool.Run: %v", err)
		}
	})

	get := job("org_a", "get-1")
	get["op"] = "campaign.get"
	if a := e.call(t, "POST", "/v1/jobs", []any{get, job("org_b", "b-1")}); a.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	select {
	case outcome := <-hooks.finished:
		if outcome != worker.OutcomeRateLimited {
			t.Fatalf("first outcome %q, want %q", outcome, worker.OutcomeRateLimited)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the worker reported no outcome within 15s")
	}

	// The worker paused the tenant on the server before it handed the job
	// back, so the scrape sees the pause now.
	fams := e.scrapeMetrics(t)
	expectSample(t, fams, 1, "orgdispatch_rate_limited_total", "tenant", "org_a")
	expectSample(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "429")
	expectSample(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_a", "op", "campaign.get", "outcome", "rate_limited")
	expectSample(t, fams, 1, "orgdispatch_tenant_paused", "tenant", "org_a")
	expectSample(t, fams, 0, "orgdispatch_tenant_paused", "tenant", "org_b")
	if _, ok := metricstest.Value(fams, "orgdispatch_token_fetches_total", "tenant", "org_a"); !ok {
		t.Error("no token fetch counted for org_a")
	}
	if left, _ := metricstest.Value(fams, "orgdispatch_tenant_pause_remaining_seconds", "tenant", "org_a"); left <= 30 || left > 45 {
		t.Errorf("org_a pause remaining %v s, want about 45", left)
	}
	// org_a's job waits out the pause; org_b's is dispatchable.
	expectSample(t, fams, 1, "orgdispatch_dispatchable_backlog")

	// The tenant view names the 429 as the reason, and the lane's figures
	// arrive with one of the replica's next heartbeats: check at each.
	kv, err := e.js.KeyValue(t.Context(), e.names.ReplicasBucket())
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(t.Context(), "replica-1")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	timeout := time.After(10 * time.Second)
	var ts dispatcher.TenantStatus
	for {
		select {
		case <-w.Updates():
		case <-timeout:
			t.Fatalf("org_a never showed the 429 pause with the lane's figures: %+v", ts)
		}
		ts = dispatcher.TenantStatus{}
		e.call(t, "GET", "/v1/tenants/org_a", nil).decode(t, &ts)
		if ts.Paused && strings.Contains(ts.PauseReason, "429") && ts.PausedBy == "replica-1" && ts.RateLimited == 1 && ts.Replicas == 1 {
			return
		}
	}
}
