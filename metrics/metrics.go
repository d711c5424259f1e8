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
//	orgdispatch_tenant_class_backlog{tenant,priority}        gauge    jobs of the class in the jobs stream (classes holding jobs only)
//	orgdispatch_tenant_drain_seconds{tenant}                 gauge    until everything held is done; +Inf: no lane can run
//	orgdispatch_tenant_class_drain_seconds{tenant,priority}  gauge    until a job of the class published now is done (classes holding jobs only)
//	orgdispatch_scalable_backlog                             gauge    backlog of saturated tenants (bound by concurrency, not rate)
//	orgdispatch_replicas_wanted                              gauge    replicas for every saturated tenant to reach its quota
//
// Label values are bounded, whatever arrives on the jobs subjects:
//
//   - op is one of platform.Ops(), or "unknown" for anything else (a job
//     published on a subject naming no known operation is dead-lettered as
//     invalid and counted as op="unknown").
//   - tenant, on the hook metrics, is one of the worker pool's tenants: the
//     pool tells Metrics its tenants (worker.TenantsObserver) when it starts
//     and on every reload. Events of any other tenant (a removed tenant's
//     last jobs, still draining) count under tenant="(unknown)", which is
//     not a valid tenant id; the series of a removed tenant are deleted.
//     Until it is told, Metrics takes every tenant as it comes.
//   - tenant, on the TenantCollector's gauges, is a tenant consumer of the
//     jobs stream: created by provisioning for configured tenants only, and
//     at most the stream's MaxConsumers.
//   - priority is one of dispatcher.Priorities() (a subject naming no class
//     counts in its op's default class), and the class series are sent only
//     for classes holding jobs: with T tenants at most 3T series each, and
//     as many as classes with jobs in practice; T for the rest.
//
// orgdispatch_replicas_wanted is the signal to scale worker replicas on
// (e.g. a KEDA ScaledObject with a Prometheus trigger, AverageValue 1): the
// replicas that let every tenant bound by its lanes' concurrency reach its
// quota at today's platform latency (dispatcher.TenantDrain.ReplicasWanted:
// ⌈replicas × quota ÷ done per second⌉ for a tenant whose slots are all
// taken), at
// least 1 while any backlog is dispatchable, so that scaling up from zero
// sees it. orgdispatch_scalable_backlog is the backlog of those tenants.
// Neither counts tenants held back by their own rate or quota (more
// replicas split an org-scoped quota and drain no faster) nor paused ones.
// orgdispatch_dispatchable_backlog (backlog of tenants not paused) is the
// earlier, blunter signal.
package metrics

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/orgdispatch/orgdispatch/platform"
)

// Label values that stand for anything unexpected.
const (
	// UnknownOp is the op label of a job whose subject names no known
	// operation.
	UnknownOp = "unknown"
	// UnknownTenant is the tenant label of events of a tenant the worker
	// pool does not run (parentheses: it can be no tenant's id).
	UnknownTenant = "(unknown)"
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

	// mu is held for reading while an event is counted, and for writing
	// while the tenants change, so that no event re-creates the series of
	// a tenant just removed.
	mu      sync.RWMutex
	tenants map[string]bool // nil: not told yet, every tenant counts as is
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

// TenantsChanged makes ids the tenants whose events count under their own
// tenant label (it implements worker.TenantsObserver): others count under
// UnknownTenant, and the series of tenants no longer among them are
// deleted.
func (m *Metrics) TenantsChanged(ids []string) {
	next := make(map[string]bool, len(ids))
	for _, id := range ids {
		next[id] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var removed []string
	for _, id := range m.tenantsSeen() {
		if !next[id] && id != UnknownTenant {
			removed = append(removed, id)
		}
	}
	for _, id := range removed {
		l := prometheus.Labels{"tenant": id}
		m.jobs.DeletePartialMatch(l)
		m.requests.DeletePartialMatch(l)
		m.requestDurations.DeletePartialMatch(l)
		m.rateLimited.DeletePartialMatch(l)
		m.tokenFetches.DeletePartialMatch(l)
	}
	m.tenants = next
}

// tenantsSeen lists the tenant labels of the hook metrics' series.
func (m *Metrics) tenantsSeen() []string {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.Collect(ch)
		close(ch)
	}()
	seen := map[string]bool{}
	for metric := range ch {
		var pb dto.Metric
		if metric.Write(&pb) != nil {
			continue
		}
		for _, lp := range pb.GetLabel() {
			if lp.GetName() == "tenant" {
				seen[lp.GetValue()] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// tenant is the tenant label of an event of tenant id; call it with mu held.
func (m *Metrics) tenant(id string) string {
	if m.tenants == nil || m.tenants[id] {
		return id
	}
	return UnknownTenant
}

// OpLabel is the op label of an operation: op itself if it is one of
// platform.Ops(), else UnknownOp.
func OpLabel(op string) string {
	if platform.KnownOp(op) {
		return op
	}
	return UnknownOp
}

// JobFinished counts one delivery's outcome.
func (m *Metrics) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.jobs.WithLabelValues(m.tenant(tenant), OpLabel(op), outcome).Inc()
}

// PlatformResponse counts a platform answer by status class and observes its
// latency. Status 0 (no answer) is class "error".
func (m *Metrics) PlatformResponse(tenant string, status int, elapsed time.Duration) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tenant = m.tenant(tenant)
	m.requests.WithLabelValues(tenant, StatusClass(status)).Inc()
	m.requestDurations.WithLabelValues(tenant).Observe(elapsed.Seconds())
}

// RateLimited counts a 429.
func (m *Metrics) RateLimited(tenant string, retryAfter time.Duration) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.rateLimited.WithLabelValues(m.tenant(tenant)).Inc()
}

// PauseChanged does nothing: pauses are cluster-wide, so
// orgdispatch_tenant_paused is read from NATS at scrape time by
// TenantCollector rather than from one replica's view.
func (m *Metrics) PauseChanged(tenant string, until time.Time) {}

// TokenFetched counts an access token fetch.
func (m *Metrics) TokenFetched(tenant string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.tokenFetches.WithLabelValues(m.tenant(tenant)).Inc()
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
