// Package metrics exposes orgdispatch's Prometheus metrics.
//
// Two sources feed them:
//
//   - Metrics implements worker.Hooks: the worker pool calls it on every job
//     outcome, platform answer, 429 and token fetch. Its methods only bump
//     counters and observe histograms, so they never block a lane. These
//     figures are per process (per worker replica); sum them across replicas
//     in queries.
//   - TenantCollector reads the cluster-wide tenant state from NATS (through
//     dispatcher.Admin.Tenants) at scrape time: pauses, backlog, in flight,
//     and orgdispatch_dispatchable_backlog, the autoscaling signal.
//
// Metric names:
//
//	orgdispatch_jobs_total{tenant,op,outcome}                counter  outcome: succeeded|retried|dead|rate_limited|handed_back
//	orgdispatch_platform_requests_total{tenant,status_class} counter  status_class: 2xx|3xx|4xx|429|5xx|error (no answer)
//	orgdispatch_platform_request_duration_seconds{tenant}    histogram
//	orgdispatch_rate_limited_total{tenant}                   counter  429 answers
//	orgdispatch_token_fetches_total{tenant}                  counter  access tokens fetched
//	orgdispatch_tenant_paused{tenant}                        gauge    1 while the tenant's consumer is paused
//	orgdispatch_tenant_pause_remaining_seconds{tenant}       gauge    0 when not paused
//	orgdispatch_tenant_backlog{tenant}                       gauge    jobs waiting
//	orgdispatch_tenant_in_flight{tenant}                     gauge    jobs delivered, not yet acknowledged
//	orgdispatch_dispatchable_backlog                         gauge    sum of the backlog of tenants that are not paused
//
// orgdispatch_dispatchable_backlog is the signal to scale worker replicas on
// (e.g. a KEDA ScaledObject with a Prometheus trigger): jobs of a paused
// tenant cannot run whatever the number of workers, so counting them would
// only add replicas that sit idle. A tenant with no live worker counts: that
// is the case scaling up from zero must see.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records the worker pool's events as Prometheus metrics. It
// implements worker.Hooks; every method is non-blocking and safe for
// concurrent use.
type Metrics struct {
	jobs             *prometheus.CounterVec
	requests         *prometheus.CounterVec
	requestDurations *prometheus.HistogramVec
	rateLimited      *prometheus.CounterVec
	tokenFetches     *prometheus.CounterVec
}

// RequestDurationBuckets are the platform request latency histogram's
// buckets, in seconds.
var RequestDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New creates the hook metrics and registers them with reg (nil: not
// registered, e.g. to collect them some other way). It panics if reg already
// holds metrics of the same names, like prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgdispatch_jobs_total",
			Help: "Job deliveries finished by this process, by tenant, operation and outcome (succeeded, retried, dead, rate_limited, handed_back).",
		}, []string{"tenant", "op", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgdispatch_platform_requests_total",
			Help: "Platform API requests answered, by tenant and status class (2xx, 3xx, 4xx, 429, 5xx; error = no answer: timeout or connection error).",
		}, []string{"tenant", "status_class"}),
		requestDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orgdispatch_platform_request_duration_seconds",
			Help:    "Platform API request latency, by tenant.",
			Buckets: RequestDurationBuckets,
		}, []string{"tenant"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgdispatch_rate_limited_total",
			Help: "429 answers from the platform, by tenant.",
		}, []string{"tenant"}),
		tokenFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgdispatch_token_fetches_total",
			Help: "OAuth access tokens fetched, by tenant.",
		}, []string{"tenant"}),
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.jobs.Describe(ch)
	m.requests.Describe(ch)
	m.requestDurations.Describe(ch)
	m.rateLimited.Describe(ch)
	m.tokenFetches.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.jobs.Collect(ch)
	m.requests.Collect(ch)
	m.requestDurations.Collect(ch)
	m.rateLimited.Collect(ch)
	m.tokenFetches.Collect(ch)
}

// JobFinished counts one delivery's outcome.
func (m *Metrics) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	m.jobs.WithLabelValues(tenant, op, outcome).Inc()
}

// PlatformResponse counts a platform answer by status class and observes its
// latency. Status 0 (no answer) is class "error".
func (m *Metrics) PlatformResponse(tenant string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(tenant, StatusClass(status)).Inc()
	m.requestDurations.WithLabelValues(tenant).Observe(elapsed.Seconds())
}

// RateLimited counts a 429.
func (m *Metrics) RateLimited(tenant string, retryAfter time.Duration) {
	m.rateLimited.WithLabelValues(tenant).Inc()
}

// PauseChanged does nothing: pauses are cluster-wide, so
// orgdispatch_tenant_paused is read from NATS at scrape time by
// TenantCollector rather than from one replica's view.
func (m *Metrics) PauseChanged(tenant string, until time.Time) {}

// TokenFetched counts an access token fetch.
func (m *Metrics) TokenFetched(tenant string) {
	m.tokenFetches.WithLabelValues(tenant).Inc()
}

// StatusClass is the status_class label of an HTTP status: "429" on its own
// (it drives pauses), "error" for 0 (no answer), else "2xx", "4xx" etc.
func StatusClass(status int) string {
	switch {
	case status == 429:
		return "429"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status/100) + "xx"
	}
	return "error"
}
