package metrics

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// TenantSource lists the tenants' cluster-wide state; *dispatcher.Admin is
// one.
type TenantSource interface {
	Tenants(ctx context.Context) ([]dispatcher.TenantStatus, error)
}

// DefaultScrapeTimeout bounds one TenantCollector read of NATS.
const DefaultScrapeTimeout = 5 * time.Second

var (
	descPaused = prometheus.NewDesc("orgdispatch_tenant_paused",
		"1 while the tenant is paused cluster-wide (its consumer is paused), else 0.", []string{"tenant"}, nil)
	descPauseRemaining = prometheus.NewDesc("orgdispatch_tenant_pause_remaining_seconds",
		"Seconds until the tenant's pause ends; 0 when not paused.", []string{"tenant"}, nil)
	descBacklog = prometheus.NewDesc("orgdispatch_tenant_backlog",
		"Jobs of the tenant waiting to be delivered.", []string{"tenant"}, nil)
	descInFlight = prometheus.NewDesc("orgdispatch_tenant_in_flight",
		"Jobs of the tenant delivered to a worker and not yet acknowledged.", []string{"tenant"}, nil)
	descDispatchable = prometheus.NewDesc("orgdispatch_dispatchable_backlog",
		"Sum of the backlog of tenants that are not paused: the jobs workers could run now.", nil, nil)
	descClassBacklog = prometheus.NewDesc("orgdispatch_tenant_class_backlog",
		"Jobs of the tenant's priority class in its jobs stream (waiting, delayed or in flight); only classes holding jobs.", []string{"tenant", "priority"}, nil)
	descDrain = prometheus.NewDesc("orgdispatch_tenant_drain_seconds",
		"Seconds until every job the tenant holds is done at its current rate, after the rest of a pause; +Inf when no lane can run its jobs.", []string{"tenant"}, nil)
	descClassDrain = prometheus.NewDesc("orgdispatch_tenant_class_drain_seconds",
		"Seconds until a job of the class published now would be done (weighted sharing 7/2/1 between classes); only classes holding jobs.", []string{"tenant", "priority"}, nil)
	descScalable = prometheus.NewDesc("orgdispatch_scalable_backlog",
		"Backlog of tenants bound by their lanes' concurrency (saturated below their quota), which more workers would work off faster; not that of tenants held back by their rate.", nil, nil)
	descReplicasWanted = prometheus.NewDesc("orgdispatch_replicas_wanted",
		"Worker replicas needed for every saturated tenant to reach its quota at today's platform latency (at least 1 with any dispatchable backlog). Scale workers on this.", nil, nil)
)

// TenantCollector is a prometheus.Collector that reads every tenant's state
// from its source at scrape time. With dispatcher.Admin as the source a
// scrape costs one consumer listing (or none within the Admin's cache TTL),
// whatever the number of tenants.
type TenantCollector struct {
	src     TenantSource
	timeout time.Duration
}

// NewTenantCollector returns a collector reading src; register it with a
// prometheus.Registerer.
func NewTenantCollector(src TenantSource) *TenantCollector {
	return &TenantCollector{src: src, timeout: DefaultScrapeTimeout}
}

// Describe implements prometheus.Collector.
func (c *TenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPaused
	ch <- descPauseRemaining
	ch <- descBacklog
	ch <- descInFlight
	ch <- descDispatchable
	ch <- descClassBacklog
	ch <- descDrain
	ch <- descClassDrain
	ch <- descScalable
	ch <- descReplicasWanted
}

// Collect implements prometheus.Collector. When NATS cannot be read it
// reports an invalid metric, so the scrape says so instead of showing stale
// or zero figures.
func (c *TenantCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ts, err := c.src.Tenants(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDispatchable, fmt.Errorf("metrics: read tenants: %w", err))
		return
	}
	for _, t := range ts {
		paused, remaining := 0.0, 0.0
		if t.Paused {
			paused, remaining = 1, t.PauseRemainingSecond
		}
		ch <- prometheus.MustNewConstMetric(descDrain, prometheus.GaugeValue, secondsValue(t.DrainSeconds), t.ID)
		for _, c := range t.Classes {
			if c.Backlog == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descClassBacklog, prometheus.GaugeValue, float64(c.Backlog), t.ID, string(c.Priority))
			ch <- prometheus.MustNewConstMetric(descClassDrain, prometheus.GaugeValue, secondsValue(c.DrainSeconds), t.ID, string(c.Priority))
		}
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused, t.ID)
		ch <- prometheus.MustNewConstMetric(descPauseRemaining, prometheus.GaugeValue, remaining, t.ID)
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(t.Backlog), t.ID)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(t.InFlight), t.ID)
	}
	sig := dispatcher.Scaling(ts)
	ch <- prometheus.MustNewConstMetric(descDispatchable, prometheus.GaugeValue, float64(sig.DispatchableBacklog))
	ch <- prometheus.MustNewConstMetric(descScalable, prometheus.GaugeValue, float64(sig.ScalableBacklog))
	ch <- prometheus.MustNewConstMetric(descReplicasWanted, prometheus.GaugeValue, float64(sig.ReplicasWanted))
}

// secondsValue is a drain estimate as a gauge: +Inf for none (unbounded).
func secondsValue(s *float64) float64 {
	if s == nil {
		return math.Inf(1)
	}
	return *s
}
