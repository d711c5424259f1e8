package metrics_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/metrics/metricstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// TestTenantCollectorClassesAndDrain: the backlog by class and the time to
// drain at the configured rate (no worker runs), series only for classes
// holding jobs.
func TestTenantCollectorClassesAndDrain(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := []tenants.Tenant{{ID: "org_a", Concurrency: 1, RatePerMinute: 120}, {ID: "org_b", Concurrency: 1, RatePerMinute: 60}}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}
	for subject, n := range map[string]int{
		names.PriorityJobSubject("org_a", dispatcher.PriorityUrgent, "campaign.stop"):     2,
		names.PriorityJobSubject("org_a", dispatcher.PriorityBulk, "campaign.start"):      6,
		names.PriorityJobSubject("org_a", dispatcher.PriorityUrgent, "campaign.progress"): 1,
	} {
		for range n {
			if _, err := js.Publish(t.Context(), subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewTenantCollector(dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))))
	fams := scrape(t, reg)
	wantValue(t, fams, 3, "orgdispatch_tenant_class_backlog", "tenant", "org_a", "priority", "urgent")
	wantValue(t, fams, 6, "orgdispatch_tenant_class_backlog", "tenant", "org_a", "priority", "bulk")
	if _, ok := metricstest.Value(fams, "orgdispatch_tenant_class_backlog", "tenant", "org_a", "priority", "normal"); ok {
		t.Error("a series for org_a's normal class, which holds no job")
	}
	if _, ok := metricstest.Value(fams, "orgdispatch_tenant_class_drain_seconds", "tenant", "org_b", "priority", "normal"); ok {
		t.Error("a drain series for org_b, which holds no job")
	}
	// 9 jobs at 2/s.
	wantValue(t, fams, 4.5, "orgdispatch_tenant_drain_seconds", "tenant", "org_a")
	wantValue(t, fams, 0, "orgdispatch_tenant_drain_seconds", "tenant", "org_b")
	wantValue(t, fams, dispatcher.JobDrainSeconds(dispatcher.ClassCounts{3, 0, 6}, dispatcher.PriorityUrgent, 2, 0),
		"orgdispatch_tenant_class_drain_seconds", "tenant", "org_a", "priority", "urgent")
	wantValue(t, fams, 5, "orgdispatch_tenant_class_drain_seconds", "tenant", "org_a", "priority", "bulk")
	// No worker: scaling up from zero must see the backlog.
	wantValue(t, fams, 9, "orgdispatch_scalable_backlog")
	wantValue(t, fams, 1, "orgdispatch_replicas_wanted")
}

// TestScalingSignalCountsConcurrencyBoundTenantsOnly runs a real worker
// pool against the simulator answering in 100 ms. org_rate (20/s,
// concurrency 8: its slots could do 80/s) is held back by its rate;
// org_slow (quota 100/s, concurrency 2: at most 20/s at 100 ms) by its
// concurrency. Only org_slow's backlog is scalable, and it wants
// ⌈100 × 2 ÷ (2 × 20)⌉ = 5 replicas, more as the test process's own
// overhead slows its answers.
func TestScalingSignalCountsConcurrencyBoundTenantsOnly(t *testing.T) {
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	sim := platformtest.NewServer(t, platformtest.Config{AutoCreate: true, Latency: 100 * time.Millisecond, Clients: []platformtest.ClientCred{
		{ID: "client_org_rate", Secret: "secret_org_rate", Org: "org_rate"},
		{ID: "client_org_slow", Secret: "secret_org_slow", Org: "org_slow"},
	}})
	tenant := func(id string, perMinute, conc int) tenants.Tenant {
		return tenants.Tenant{
			ID: id, ClientID: "client_" + id, ClientSecret: tenants.NewSecret("secret_" + id),
			APIBase: sim.URL, TokenURL: sim.TokenURL(),
			RatePerMinute: perMinute, Burst: 1, Concurrency: conc, MaxAttempts: 3, QuotaScope: tenants.ScopeOrg,
		}
	}
	ts := []tenants.Tenant{tenant("org_rate", 1200, 8), tenant("org_slow", 6000, 2)}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}
	const jobs = 600 // 30 s of work for either
	for _, tn := range ts {
		for i := range jobs {
			body := fmt.Sprintf(`{"id":"j%d","op":"campaign.get","params":{"campaign_id":"c1"}}`, i)
			if _, err := js.Publish(t.Context(), names.JobSubject(tn.ID, "campaign.get"), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewTenantCollector(admin))

	pool, err := worker.New(worker.Config{
		JS: js, Conn: nc, Names: names, Tenants: ts, ReplicaID: "r1",
		HeartbeatInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// Wait until both lanes have run for a few seconds (their done rates
	// are means over the seconds since they started), then read the
	// signal at each of the replica's next lane figures.
	lanes, err := js.KeyValue(t.Context(), names.LanesBucket())
	if err != nil {
		t.Fatal(err)
	}
	w, err := lanes.WatchAll(t.Context(), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	timeout := time.After(30 * time.Second)
	steady, checked := 0, 0
	for checked < 10 {
		select {
		case <-w.Updates():
		case <-timeout:
			t.Fatalf("checked the signal %d times in 30 s, want 10", checked)
		}
		st, err := admin.Tenants(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rate, slow := find(st, "org_rate"), find(st, "org_slow")
		if rate.Succeeded < 60 || slow.Succeeded < 60 {
			continue // 3 s at their rates
		}
		if steady++; steady < 2 {
			continue
		}
		checked++
		if rate.Saturated {
			t.Errorf("org_rate (rate-bound: %.1f/s done of %.1f/s, %d of %d slots) taken for saturated", rate.DonePerSec, rate.RatePerSec, rate.InFlight, rate.Concurrency)
		}
		// 100 ms answers give each replica's 2 slots at most 20/s: 5
		// replicas at least for 100/s; the test process's own overhead
		// (race detector, 2 cores, other packages' tests) makes it more:
		// what the lane's done rate says.
		if !slow.Saturated || slow.ReplicasWanted < 5 {
			t.Errorf("org_slow (%.1f/s done of %.1f/s): saturated %v, %d replicas wanted; want saturated, 5 or more",
				slow.DonePerSec, slow.RatePerSec, slow.Saturated, slow.ReplicasWanted)
		}
		if want := int(math.Ceil(slow.RatePerSec / slow.DonePerSec)); slow.DonePerSec > 0 && abs(slow.ReplicasWanted-want) > 1 {
			t.Errorf("org_slow: %d replicas wanted at %.1f/s done of its %.0f/s quota, want about %d", slow.ReplicasWanted, slow.DonePerSec, slow.RatePerSec, want)
		}
		// The scrape reads one listing for every figure: the scalable
		// backlog is org_slow's alone.
		fams := scrape(t, reg)
		slowBacklog, _ := metricstest.Value(fams, "orgdispatch_tenant_backlog", "tenant", "org_slow")
		rateBacklog, _ := metricstest.Value(fams, "orgdispatch_tenant_backlog", "tenant", "org_rate")
		scalable, _ := metricstest.Value(fams, "orgdispatch_scalable_backlog")
		wanted, _ := metricstest.Value(fams, "orgdispatch_replicas_wanted")
		dispatchable, _ := metricstest.Value(fams, "orgdispatch_dispatchable_backlog")
		if rateBacklog == 0 || slowBacklog == 0 {
			t.Fatalf("a backlog ran out (org_rate %v, org_slow %v): the test needs both", rateBacklog, slowBacklog)
		}
		if scalable != slowBacklog {
			t.Errorf("scalable backlog %v, want org_slow's %v (org_rate's %v must not count)", scalable, slowBacklog, rateBacklog)
		}
		if dispatchable != slowBacklog+rateBacklog {
			t.Errorf("dispatchable backlog %v, want both tenants' %v", dispatchable, slowBacklog+rateBacklog)
		}
		if wanted < 5 || math.Abs(wanted-float64(slow.ReplicasWanted)) > 1 {
			t.Errorf("replicas wanted %v, want 5 or more, org_slow's %d of the listing before (±1)", wanted, slow.ReplicasWanted)
		}
	}
}

func abs(n int) int { return max(n, -n) }

func find(ts []dispatcher.TenantStatus, id string) dispatcher.TenantStatus {
	for _, t := range ts {
		if t.ID == id {
			return t
		}
	}
	return dispatcher.TenantStatus{ID: id, DonePerSec: math.NaN()}
}
