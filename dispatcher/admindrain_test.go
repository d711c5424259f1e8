package dispatcher_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// TestAdminClassBacklogsAndDrain publishes jobs on plain and class
// subjects and reads them back by class, with the time to drain at the
// configured rate (no lanes) and then at the lanes' rate.
func TestAdminClassBacklogsAndDrain(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := []tenants.Tenant{
		{ID: "org_a", Concurrency: 2, RatePerMinute: 60, QuotaScope: tenants.ScopeToken},
		{ID: "org_b", Concurrency: 2, RatePerMinute: 600, QuotaScope: tenants.ScopeOrg},
	}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}
	pub := func(subject string, n int) {
		t.Helper()
		for range n {
			if _, err := js.Publish(t.Context(), subject, []byte(`{}`)); err != nil {
				t.Fatalf("publish on %s: %v", subject, err)
			}
		}
	}
	pub(names.JobSubject("org_a", "campaign.start"), 3)                                       // the plain subject: normal
	pub(names.PriorityJobSubject("org_a", dispatcher.PriorityUrgent, "campaign.stop"), 1)     // urgent
	pub(names.PriorityJobSubject("org_a", dispatcher.PriorityBulk, "contacts.add"), 4)        // bulk
	pub(names.PriorityJobSubject("org_a", dispatcher.PriorityUrgent, "campaign.start"), 6)    // explicit
	pub(names.PriorityJobSubject("org_a", dispatcher.PriorityBulk, "campaign.get"), 5)        // explicit
	pub(names.PriorityJobSubject("org_b", dispatcher.PriorityNormal, "campaign.progress"), 2) // another tenant, maybe another shard

	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	list, err := admin.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a := findTenant(t, list, "org_a")
	wantClasses(t, a, 7, 3, 9)
	wantClasses(t, findTenant(t, list, "org_b"), 0, 2, 0)
	if a.DrainRateBasis != dispatcher.DrainRateConfigured || a.DrainRatePerSec != 1 {
		t.Errorf("org_a drains at %v/s (%s), want its configured 1/s", a.DrainRatePerSec, a.DrainRateBasis)
	}
	// 19 jobs at 1/s; a new urgent job is the 8th of its class at 7/10 of
	// the rate while all three hold jobs: 8/0.7 s ≈ 11.4 s, before the
	// others empty.
	wantSeconds(t, "org_a backlog", a.DrainSeconds, 19)
	wantSeconds(t, "org_a urgent", a.Class(dispatcher.PriorityUrgent).DrainSeconds,
		dispatcher.JobDrainSeconds(dispatcher.ClassCounts{7, 3, 9}, dispatcher.PriorityUrgent, 1, 0))
	wantSeconds(t, "org_a bulk", a.Class(dispatcher.PriorityBulk).DrainSeconds, 20)

	// The single-tenant view reads the same.
	one, err := admin.Tenant(t.Context(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	wantClasses(t, one, 7, 3, 9)
	wantSeconds(t, "org_a backlog (one tenant)", one.DrainSeconds, 19)

	// Two live replicas' lanes: their rates add up; a parked lane's does
	// not count.
	env := adminEnv{js: js, names: names}
	now := time.Now()
	for _, r := range []struct {
		id     string
		rate   float64
		parked bool
	}{{"r1", 2, false}, {"r2", 2, false}, {"r3", 50, true}} {
		env.put(t, names.ReplicasBucket(), r.id, dispatcher.Heartbeat{Replica: r.id, At: now, Pages: 1})
		state := dispatcher.LaneRunning
		if r.parked {
			state = dispatcher.LaneCredentialsRejected
		}
		env.put(t, names.LanesBucket(), dispatcher.LanePageKey(r.id, 0), dispatcher.LanePage{Replica: r.id, At: now, Lanes: []dispatcher.LaneReport{
			{Tenant: "org_a", State: state, Parked: r.parked, RatePerSec: r.rate, Concurrency: 2},
		}})
	}
	one, err = admin.Tenant(t.Context(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	if one.DrainRateBasis != dispatcher.DrainRateLanes || one.DrainRatePerSec != 4 {
		t.Errorf("org_a drains at %v/s (%s), want the two running lanes' 4/s", one.DrainRatePerSec, one.DrainRateBasis)
	}
	wantSeconds(t, "org_a backlog at the lanes' rate", one.DrainSeconds, 19.0/4)

	// A pause in force comes first.
	if _, err := admin.Pause(t.Context(), "org_a", time.Minute, "test"); err != nil {
		t.Fatal(err)
	}
	one, err = admin.Tenant(t.Context(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	if d := one.DrainSeconds; d == nil || *d < 19.0/4+55 || *d > 19.0/4+60 {
		t.Errorf("paused for a minute: drains in %v s, want about %v", deref(d), 60+19.0/4)
	}
}

// TestAdminClassBacklogsCostOneStreamInfoPerShard: a listing asks each
// jobs stream once for its info, the per-subject counts included, as many
// requests as before the counts; no request per tenant.
func TestAdminClassBacklogsCostOneStreamInfoPerShard(t *testing.T) {
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	var ts []tenants.Tenant
	for _, id := range []string{"org_a", "org_b", "org_c", "org_d", "org_e", "org_f", "org_g", "org_h"} {
		ts = append(ts, tenants.Tenant{ID: id, Concurrency: 1, RatePerMinute: 60})
	}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}, ts); err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts {
		if _, err := js.Publish(t.Context(), names.JobSubject(tn.ID, "campaign.start"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	streams, err := dispatcher.JobsStreams(t.Context(), js, names)
	if err != nil {
		t.Fatal(err)
	}
	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	if _, err := admin.Tenants(t.Context()); err != nil { // finds the streams
		t.Fatal(err)
	}
	var infos atomic.Int64
	sub, err := nc.Subscribe("$JS.API.STREAM.INFO.>", func(m *nats.Msg) {
		if names.IsJobsStream(strings.TrimPrefix(m.Subject, "$JS.API.STREAM.INFO.")) {
			infos.Add(1) // not the buckets' (reading a bucket asks for its status)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	list, err := admin.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	// A shard without a stream is looked up (one request), as before.
	if n, want := infos.Load(), int64(dispatcher.JobShards); n != want {
		t.Errorf("%d stream info requests for %d tenants in %d streams, want %d (one per shard)", n, len(ts), len(streams), want)
	}
	for _, tn := range ts {
		wantClasses(t, findTenant(t, list, tn.ID), 0, 1, 0)
	}
}

func wantClasses(t *testing.T, ts dispatcher.TenantStatus, urgent, normal, bulk uint64) {
	t.Helper()
	var got []string
	for _, c := range ts.Classes {
		got = append(got, string(c.Priority))
	}
	if strings.Join(got, ",") != "urgent,normal,bulk" {
		t.Fatalf("%s: classes %v, want urgent, normal, bulk", ts.ID, got)
	}
	if u, n, b := ts.Class(dispatcher.PriorityUrgent).Backlog, ts.Class(dispatcher.PriorityNormal).Backlog, ts.Class(dispatcher.PriorityBulk).Backlog; u != urgent || n != normal || b != bulk {
		t.Errorf("%s: backlog by class %d/%d/%d, want %d/%d/%d", ts.ID, u, n, b, urgent, normal, bulk)
	}
}

func wantSeconds(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || !near(*got, want) {
		t.Errorf("%s: drain %v s, want %v", what, deref(got), want)
	}
}

func deref(f *float64) any {
	if f == nil {
		return "null"
	}
	return *f
}
