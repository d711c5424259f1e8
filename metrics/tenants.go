package metrics

import (
	"context"
	"fmt"
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
		"Sum of the backlog of tenants that are not paused: the jobs more workers could run now. Scale workers on this.", nil, nil)
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
	var dispatchable float64
	for _, t := range ts {
		paused, remaining := 0.0, 0.0
		if t.Paused {
			paused, remaining = 1, t.PauseRemainingSecond
		} else {
			dispatchable += float64(t.Backlog)
		}
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused, t.ID)
		ch <- prometheus.MustNewConstMetric(descPauseRemaining, prometheus.GaugeValue, remaining, t.ID)
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(t.Backlog), t.ID)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(t.InFlight), t.ID)
	}
	ch <- prometheus.MustNewConstMetric(descDispatchable, prometheus.GaugeValue, dispatchable)
}
