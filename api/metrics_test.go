package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orgdispatch/orgdispatch/metrics/metricstest"
)

// scrapeMetrics reads /metrics (no token: scrapers don't carry one) and
// parses it as the Prometheus text exposition format.
func (e *env) scrapeMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := e.callWith(t, "", "GET", "/metrics", nil)
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(a.body)))
	if err != nil {
		t.Fatalf("/metrics is not in the Prometheus exposition format: %v\n%s", err, a.body)
	}
	return fams
}

func expectSample(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if got, ok := metricstest.Value(fams, name, labels...); !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

// TestMetricsPageShowsRateLimitAndPause drives the hooks the worker calls on
// a 429 and pauses the tenant the way the worker does, then reads /metrics.
// (metrics_worker_test.go does the same with a real worker pool.)
func TestMetricsPageShowsRateLimitAndPause(t *testing.T) {
	e := newEnv(t)
	if a := e.call(t, "POST", "/v1/jobs", []any{job("org_a", "1"), job("org_a", "2"), job("org_b", "3")}); a.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	e.metrics.PlatformResponse("org_a", 429, 15*time.Millisecond)
	e.metrics.RateLimited("org_a", 60*time.Second)
	e.metrics.JobFinished("org_a", "campaign.start", "rate_limited", 20*time.Millisecond)
	e.metrics.PlatformResponse("org_b", 200, 15*time.Millisecond)
	e.metrics.TokenFetched("org_a")
	if _, err := e.admin.Pause(t.Context(), "org_a", time.Minute, "429 from platform, Retry-After 60s"); err != nil {
		t.Fatal(err)
	}

	fams := e.scrapeMetrics(t)
	expectSample(t, fams, 1, "orgdispatch_rate_limited_total", "tenant", "org_a")
	expectSample(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_a", "status_class", "429")
	expectSample(t, fams, 1, "orgdispatch_platform_requests_total", "tenant", "org_b", "status_class", "2xx")
	expectSample(t, fams, 1, "orgdispatch_platform_request_duration_seconds", "tenant", "org_a")
	expectSample(t, fams, 1, "orgdispatch_jobs_total", "tenant", "org_a", "op", "campaign.start", "outcome", "rate_limited")
	expectSample(t, fams, 1, "orgdispatch_token_fetches_total", "tenant", "org_a")
	expectSample(t, fams, 1, "orgdispatch_tenant_paused", "tenant", "org_a")
	expectSample(t, fams, 0, "orgdispatch_tenant_paused", "tenant", "org_b")
	expectSample(t, fams, 2, "orgdispatch_tenant_backlog", "tenant", "org_a")
	expectSample(t, fams, 0, "orgdispatch_tenant_in_flight", "tenant", "org_a")
	expectSample(t, fams, 1, "orgdispatch_dispatchable_backlog")
	if left, _ := metricstest.Value(fams, "orgdispatch_tenant_pause_remaining_seconds", "tenant", "org_a"); left <= 50 || left > 60 {
		t.Errorf("org_a pause remaining %v s, want about 60", left)
	}
}
