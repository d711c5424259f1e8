package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/metrics/metricstest"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

func TestLabelsBoundedToTenantsAndOps(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.JobFinished("org_a", "campaign.start", worker.OutcomeSucceeded, time.Second)
	m.JobFinished("org_a", "no.such.op", worker.OutcomeDead, time.Second)
	m.JobFinished("org_a", "", worker.OutcomeDead, time.Second)
	m.TokenFetched("org_gone")
	m.TenantsChanged([]string{"org_a", "org_b"})
	m.JobFinished("org_b", "contacts.add", worker.OutcomeSucceeded, time.Second)
	m.JobFinished("org_z", "contacts.add", worker.OutcomeSucceeded, time.Second)
	m.PlatformResponse("org_z", 200, time.Millisecond)
	m.RateLimited("org_z", time.Minute)
	m.TokenFetched("org_z")

	fams := scrape(t, reg)
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_a", "op", "campaign.start", "outcome", "succeeded")
	wantValue(t, fams, 2, "orgdispatch_jobs_total", "tenant", "org_a", "op", metrics.UnknownOp, "outcome", "dead")
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_b", "op", "contacts.add", "outcome", "succeeded")
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", metrics.UnknownTenant, "op", "contacts.add", "outcome", "succeeded")
	wantValue(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", metrics.UnknownTenant, "status_class", "2xx")
	wantValue(t, fams, 1, "orgdispatch_rate_limited_total", "tenant", metrics.UnknownTenant)
	wantValue(t, fams, 1, "orgdispatch_token_fetches_total", "tenant", metrics.UnknownTenant)
	if dispatcher.ValidTenantID(metrics.UnknownTenant) {
		t.Errorf("%q is a valid tenant id: a tenant of that name would share its series", metrics.UnknownTenant)
	}

	// A tenant no longer run loses its series.
	m.TenantsChanged([]string{"org_b"})
	fams = scrape(t, reg)
	for _, fam := range fams {
		for _, s := range fam.GetMetric() {
			if v := label(s, "tenant"); v == "org_a" || v == "org_gone" {
				t.Errorf("%s has a series of %s, no longer a tenant", fam.GetName(), v)
			}
		}
	}
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_b", "op", "contacts.add", "outcome", "succeeded")
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// finishHooks passes the pool's events to the metrics and counts the jobs
// finished, for the test to wait on.
type finishHooks struct {
	*metrics.Metrics
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (h *finishHooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	h.Metrics.JobFinished(tenant, op, outcome, elapsed)
	h.mu.Lock()
	h.n++
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *finishHooks) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		got, ch := h.n, h.changed
		h.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d jobs finished after %s, want %d", got, timeout, n)
		}
	}
}

// Jobs on junk subjects — operations that do not exist, tenants that are not
// configured — go through a real worker (against a real nats-server and the
// platform simulator) and leave the /metrics page with no more series than
// tenants × operations × outcomes allow.
func TestMetricsSeriesBoundedWithJunkSubjects(t *testing.T) {
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ids := []string{"org_a", "org_b"}
	sim := platformtest.NewServer(t, platformtest.Config{AutoCreate: true, Clients: []platformtest.ClientCred{
		{ID: "client_org_a", Secret: "secret_org_a", Org: "org_a"},
		{ID: "client_org_b", Secret: "secret_org_b", Org: "org_b"},
	}})
	var ts []tenants.Tenant
	for _, id := range ids {
		ts = append(ts, tenants.Tenant{
			ID: id, ClientID: "client_" + id, ClientSecret: tenants.NewSecret("secret_" + id),
			APIBase: sim.URL, TokenURL: sim.TokenURL(),
			RatePerMinute: 60_000, Burst: 50, Concurrency: 8, MaxAttempts: 3, QuotaScope: tenants.ScopeToken,
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	hooks := &finishHooks{Metrics: metrics.New(reg), changed: make(chan struct{})}
	reg.MustRegister(metrics.NewTenantCollector(dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))))
	pool, err := worker.New(worker.Config{
		JS: js, Conn: nc, Names: names, Tenants: ts, ReplicaID: "r1", Hooks: hooks,
		HeartbeatInterval: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	publish := func(subject, body string) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, []byte(body)); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
	const junkOps = 150
	delivered := 0
	for i, id := range ids {
		// A real job of each tenant, and one naming another tenant.
		publish(names.JobSubject(id, "campaign.get"), fmt.Sprintf(`{"id":"ok-%d","op":"campaign.get","params":{"campaign_id":"c1"}}`, i))
		publish(names.JobSubject(id, "campaign.get"), fmt.Sprintf(`{"id":"other-%d","tenant":"org_evil","op":"campaign.get","params":{"campaign_id":"c1"}}`, i))
		delivered += 2
	}
	for i := range junkOps {
		op := fmt.Sprintf("op%x", rand.Uint64())
		if i%3 == 0 {
			op += ".deeper.still"
		}
		publish(names.JobSubject(ids[i%2], op), fmt.Sprintf(`{"id":"junk-%d","op":%q,"params":{}}`, i, op))
		delivered++
		// Unknown tenants: no jobs stream takes their jobs.
		if _, err := js.Publish(t.Context(), names.JobSubject(fmt.Sprintf("org_junk_%d", i), "campaign.get"), []byte(`{"id":"x","op":"campaign.get","params":{"campaign_id":"c1"}}`), jetstream.WithRetryAttempts(0)); !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Fatalf("a job of an unknown tenant: %v, want no stream to take it", err)
		}
	}
	hooks.waitFor(t, delivered, 30*time.Second)

	fams := scrape(t, reg)
	ops := append(platform.Ops(), metrics.UnknownOp)
	outcomes := []string{worker.OutcomeSucceeded, worker.OutcomeRetried, worker.OutcomeDead, worker.OutcomeRateLimited, worker.OutcomeHandedBack}
	statusClasses := []string{"2xx", "3xx", "4xx", "429", "5xx", "error"}
	tenantLabels := append(slices.Clone(ids), metrics.UnknownTenant)
	// Each family's series at most: its tenants × its other labels' values.
	bound := map[string]int{
		"orgdispatch_jobs_total":                        len(tenantLabels) * len(ops) * len(outcomes),
		"orgdispatch_platform_requests_total":           len(tenantLabels) * len(statusClasses),
		"orgdispatch_platform_request_duration_seconds": len(tenantLabels),
		"orgdispatch_rate_limited_total":                len(tenantLabels),
		"orgdispatch_token_fetches_total":               len(tenantLabels),
		"orgdispatch_tenant_paused":                     len(ids),
		"orgdispatch_tenant_pause_remaining_seconds":    len(ids),
		"orgdispatch_tenant_backlog":                    len(ids),
		"orgdispatch_tenant_in_flight":                  len(ids),
		"orgdispatch_dispatchable_backlog":              1,
		"orgdispatch_tenant_class_backlog":              len(ids) * len(dispatcher.Priorities()),
		"orgdispatch_tenant_drain_seconds":              len(ids),
		"orgdispatch_tenant_class_drain_seconds":        len(ids) * len(dispatcher.Priorities()),
		"orgdispatch_scalable_backlog":                  1,
		"orgdispatch_replicas_wanted":                   1,
	}
	var classes []string
	for _, p := range dispatcher.Priorities() {
		classes = append(classes, string(p))
	}
	allowed := map[string][]string{"tenant": tenantLabels, "op": ops, "outcome": outcomes, "status_class": statusClasses, "priority": classes}
	series, most := 0, 0
	for name, fam := range fams {
		if !strings.HasPrefix(name, "orgdispatch_") {
			continue
		}
		b, known := bound[name]
		if !known {
			t.Errorf("family %s has no bound in this test: add it", name)
		}
		most += b
		series += len(fam.GetMetric())
		if len(fam.GetMetric()) > b {
			t.Errorf("%s: %d series, want at most %d", name, len(fam.GetMetric()), b)
		}
		for _, s := range fam.GetMetric() {
			for _, lp := range s.GetLabel() {
				if vals, ok := allowed[lp.GetName()]; ok && !slices.Contains(vals, lp.GetValue()) {
					t.Errorf("%s: %s=%q is none of %v", name, lp.GetName(), lp.GetValue(), vals)
				}
			}
		}
	}
	t.Logf("%d orgdispatch series after %d junk operations and %d unknown tenants; bound %d", series, junkOps, junkOps, most)
	// The junk was counted, under op="unknown".
	var junk float64
	for _, id := range ids {
		v, _ := metricstest.Value(fams, "orgdispatch_jobs_total", "tenant", id, "op", metrics.UnknownOp, "outcome", worker.OutcomeDead)
		junk += v
	}
	if junk != junkOps {
		t.Errorf("%v junk jobs counted as op=%q, want %d", junk, metrics.UnknownOp, junkOps)
	}
	for _, id := range ids {
		wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", id, "op", "campaign.get", "outcome", worker.OutcomeSucceeded)
		wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", id, "op", "campaign.get", "outcome", worker.OutcomeDead)
	}
}
