package metrics_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/metrics/metricstest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// Metrics is what the worker pool reports to.
var _ worker.Hooks = (*metrics.Metrics)(nil)

// scrape serves reg the way /metrics does and parses the answer as the
// Prometheus text exposition format.
func scrape(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("scrape is not in the exposition format: %v\n%s", err, rec.Body)
	}
	return fams
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricstest.Value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such sample", name, labels)
		return
	}
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestHooksCountEvents(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.JobFinished("org_a", "campaign.start", worker.OutcomeSucceeded, time.Second)
	m.JobFinished("org_a", "campaign.start", worker.OutcomeSucceeded, time.Second)
	m.JobFinished("org_a", "campaign.start", worker.OutcomeRateLimited, time.Second)
	m.JobFinished("org_b", "contacts.add", worker.OutcomeDead, time.Second)
	m.PlatformResponse("org_a", 200, 20*time.Millisecond)
	m.PlatformResponse("org_a", 204, 30*time.Millisecond)
	m.PlatformResponse("org_a", 429, 10*time.Millisecond)
	m.PlatformResponse("org_a", 404, 10*time.Millisecond)
	m.PlatformResponse("org_a", 503, 10*time.Millisecond)
	m.PlatformResponse("org_a", 0, 10*time.Second)
	m.RateLimited("org_a", time.Minute)
	m.PauseChanged("org_a", time.Now().Add(time.Minute))
	m.TokenFetched("org_a")
	m.TokenFetched("org_a")

	fams := scrape(t, reg)
	wantValue(t, fams, 2, "orgdispatch_jobs_total", "tenant", "org_a", "op", "campaign.start", "outcome", "succeeded")
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_a", "op", "campaign.start", "outcome", "rate_limited")
	wantValue(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_b", "op", "contacts.add", "outcome", "dead")
	wantValue(t, fams, 2, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "2xx")
	wantValue(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "429")
	wantValue(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "4xx")
	wantValue(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "5xx")
	wantValue(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "error")
	wantValue(t, fams, 6, "orgdispatch_platform_request_duration_seconds", "tenant", "org_a")
	wantValue(t, fams, 1, "orgdispatch_rate_limited_total", "tenant", "org_a")
	wantValue(t, fams, 2, "orgdispatch_token_fetches_total", "tenant", "org_a")
	if got := fams["orgdispatch_platform_request_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); math.Abs(got-10.08) > 1e-9 {
		t.Errorf("latency sum = %v, want 10.08", got)
	}
}

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{
		0: "error", -1: "error", 200: "2xx", 201: "2xx", 299: "2xx", 304: "3xx", 400: "4xx",
		401: "4xx", 429: "429", 499: "4xx", 500: "5xx", 503: "5xx", 600: "error",
	} {
		if got := metrics.StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestTenantCollectorReadsNATS(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := []tenants.Tenant{{ID: "org_a", Concurrency: 2}, {ID: "org_b", Concurrency: 2}, {ID: "org_c", Concurrency: 1}}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}
	publish := func(tenant string, n int) {
		for range n {
			if _, err := js.Publish(t.Context(), names.JobSubject(tenant, "campaign.start"), []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("org_a", 3)
	publish("org_b", 2)
	publish("org_c", 4)
	// One of org_c's jobs is in flight.
	c, err := js.Consumer(t.Context(), names.JobsStream("org_c"), names.Consumer("org_c"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m := <-batch.Messages(); m == nil {
		t.Fatal("no org_c job delivered")
	}
	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	if _, err := admin.Pause(t.Context(), "org_b", 2*time.Minute, "test"); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewTenantCollector(admin))
	fams := scrape(t, reg)
	wantValue(t, fams, 0, "orgdispatch_tenant_paused", "tenant", "org_a")
	wantValue(t, fams, 1, "orgdispatch_tenant_paused", "tenant", "org_b")
	wantValue(t, fams, 0, "orgdispatch_tenant_pause_remaining_seconds", "tenant", "org_a")
	if got, _ := metricstest.Value(fams, "orgdispatch_tenant_pause_remaining_seconds", "tenant", "org_b"); got <= 100 || got > 120 {
		t.Errorf("org_b pause remaining = %v s, want about 120", got)
	}
	wantValue(t, fams, 3, "orgdispatch_tenant_backlog", "tenant", "org_a")
	wantValue(t, fams, 2, "orgdispatch_tenant_backlog", "tenant", "org_b")
	wantValue(t, fams, 3, "orgdispatch_tenant_backlog", "tenant", "org_c")
	wantValue(t, fams, 1, "orgdispatch_tenant_in_flight", "tenant", "org_c")
	wantValue(t, fams, 0, "orgdispatch_tenant_in_flight", "tenant", "org_a")
	// The paused tenant's 2 jobs are not dispatchable.
	wantValue(t, fams, 6, "orgdispatch_dispatchable_backlog")

	if _, err := admin.Resume(t.Context(), "org_b"); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, reg)
	wantValue(t, fams, 0, "orgdispatch_tenant_paused", "tenant", "org_b")
	wantValue(t, fams, 8, "orgdispatch_dispatchable_backlog")
}

type sourceFunc func(ctx context.Context) ([]dispatcher.TenantStatus, error)

func (f sourceFunc) Tenants(ctx context.Context) ([]dispatcher.TenantStatus, error) { return f(ctx) }

func TestTenantCollectorFailsLoudly(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewTenantCollector(sourceFunc(func(ctx context.Context) ([]dispatcher.TenantStatus, error) {
		return nil, errors.New("nats: timeout")
	})))
	metrics.New(reg).TokenFetched("org_a")
	_, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "nats: timeout") {
		t.Errorf("gather error = %v, want the source's error", err)
	}
	// The hook metrics are still served.
	fams := scrape(t, reg)
	wantValue(t, fams, 1, "orgdispatch_token_fetches_total", "tenant", "org_a")
	if _, ok := fams["orgdispatch_dispatchable_backlog"]; ok {
		t.Error("dispatchable backlog reported although the tenants could not be read")
	}
}
