package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
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

// adminEnv is a provisioned NATS setup for the Admin tests.
type adminEnv struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names dispatcher.Names
}

func newAdminEnv(t *testing.T, ids ...string) adminEnv {
	t.Helper()
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := make([]tenants.Tenant, len(ids))
	for i, id := range ids {
		ts[i] = tenants.Tenant{ID: id, Concurrency: i + 2}
	}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return adminEnv{nc: nc, js: js, names: names}
}

func (e adminEnv) publish(t *testing.T, tenant, id string) {
	t.Helper()
	// Published the way the Publisher does: on the tenant's subject, with
	// the tenant-scoped message id.
	_, err := e.js.Publish(t.Context(), e.names.JobSubject(tenant, "campaign.start"), []byte(jobBody(tenant, id)),
		jetstream.WithMsgID(dispatcher.MsgID(tenant, id)))
	if err != nil {
		t.Fatalf("publish %s/%s: %v", tenant, id, err)
	}
}

func (e adminEnv) put(t *testing.T, bucket, key string, v any) {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), key, data); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

func findTenant(t *testing.T, list []dispatcher.TenantStatus, id string) dispatcher.TenantStatus {
	t.Helper()
	for _, ts := range list {
		if ts.ID == id {
			return ts
		}
	}
	t.Fatalf("tenant %s not in listing %+v", id, list)
	return dispatcher.TenantStatus{}
}

func TestAdminTenantsCombinesConsumersPausesAndHeartbeats(t *testing.T) {
	env := newAdminEnv(t, "org_a", "org_b", "org_c")
	env.publish(t, "org_a", "a1")
	env.publish(t, "org_a", "a2")
	env.publish(t, "org_c", "c1")

	now := time.Now()
	t1, t2 := now.Add(-3*time.Second), now.Add(-time.Second)
	env.put(t, env.names.ReplicasBucket(), "r1", dispatcher.Heartbeat{Replica: "r1", At: now, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_a", State: dispatcher.LaneRunning, Concurrency: 1, Succeeded: 5, Retried: 1, RateLimited: 2, RatePerSec: 2.5, RateSource: "limits API", DonePerSec: 1.5, LastError: "older", LastErrorAt: t1},
		{Tenant: "org_c", State: dispatcher.LaneRunning},
	}})
	env.put(t, env.names.ReplicasBucket(), "r2", dispatcher.Heartbeat{Replica: "r2", At: now, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_a", State: dispatcher.LaneCredentialsRejected, Concurrency: 1, Succeeded: 3, Dead: 4, RateLimited: 1, RatePerSec: 2.5, RateSource: "configured", DonePerSec: 0.5, LastError: "newer", LastErrorAt: t2},
	}})

	admin := dispatcher.NewAdmin(env.js, env.names)
	paused, err := admin.Pause(t.Context(), "org_c", 90*time.Second, "maintenance window")
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	if !paused.Paused || paused.PauseReason != "maintenance window" || paused.PausedBy != "api" {
		t.Errorf("Pause returned %+v, want paused by api for maintenance window", paused)
	}

	list, err := admin.Tenants(t.Context())
	if err != nil {
		t.Fatalf("tenants: %v", err)
	}
	if len(list) != 3 || list[0].ID != "org_a" || list[1].ID != "org_b" || list[2].ID != "org_c" {
		t.Fatalf("tenants = %+v, want org_a, org_b, org_c in order", list)
	}

	a := list[0]
	want := dispatcher.TenantStatus{
		ID: "org_a", State: dispatcher.LaneCredentialsRejected, Backlog: 2, Concurrency: 2,
		RatePerSec: 5, RateSources: []string{"configured", "limits API"}, DonePerSec: 2, Succeeded: 8, Retried: 1, Dead: 4, RateLimited: 3,
		LastError: "newer", LastErrorAt: t2.UTC(), Replicas: 2,
	}
	if !a.LastErrorAt.Equal(want.LastErrorAt) {
		t.Errorf("org_a last_error_at = %v, want %v", a.LastErrorAt, want.LastErrorAt)
	}
	a.LastErrorAt = want.LastErrorAt
	a.TenantDrain = dispatcher.TenantDrain{} // admindrain_test.go checks it
	if !reflect.DeepEqual(a, want) {
		t.Errorf("org_a =\n%+v\nwant\n%+v", a, want)
	}

	b := list[1]
	if b.State != dispatcher.StateNoWorkers || b.Replicas != 0 || b.Succeeded != 0 || b.Concurrency != 0 || b.Paused {
		t.Errorf("org_b = %+v, want no workers (so concurrency 0), not paused", b)
	}

	c := list[2]
	if !c.Paused || c.State != dispatcher.LanePaused || c.PauseReason != "maintenance window" || c.PausedBy != "api" || c.Backlog != 1 {
		t.Errorf("org_c = %+v, want paused (maintenance window, by api) with backlog 1", c)
	}
	if left := time.Until(c.PausedUntil); left <= 80*time.Second || left > 90*time.Second {
		t.Errorf("org_c paused until %v: %v from now, want about 90s", c.PausedUntil, left)
	}
	if c.PauseRemainingSecond <= 80 || c.PauseRemainingSecond > 90 {
		t.Errorf("org_c pause remaining = %v s, want about 90", c.PauseRemainingSecond)
	}

	// JSON names the dashboard and the CLI rely on.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id"`, `"state"`, `"paused"`, `"paused_until"`, `"pause_reason"`, `"paused_by"`, `"backlog"`, `"in_flight"`, `"concurrency"`, `"rate_per_sec"`, `"done_per_sec"`, `"succeeded"`, `"retried"`, `"dead"`, `"rate_limited"`, `"replicas"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("TenantStatus JSON %s lacks %s", data, key)
		}
	}

	// A minute later, with no heartbeat since, the replicas no longer count.
	later := dispatcher.NewAdmin(env.js, env.names, dispatcher.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
	stale, err := later.Tenant(t.Context(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	if stale.State != dispatcher.StateNoWorkers || stale.Replicas != 0 || stale.Succeeded != 0 || stale.Backlog != 2 {
		t.Errorf("org_a without live replicas = %+v, want no workers and no lane figures", stale)
	}

	resumed, err := admin.Resume(t.Context(), "org_c")
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if resumed.Paused || resumed.PauseReason != "" || resumed.State != dispatcher.LaneRunning {
		t.Errorf("after Resume: %+v, want running and not paused", resumed)
	}
	// Pause and Resume drop the cached listing: the next one shows the change.
	list, err = admin.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if findTenant(t, list, "org_c").Paused {
		t.Error("Tenants after Resume still shows org_c paused")
	}
}

func TestAdminTenantAndUnknownTenants(t *testing.T) {
	env := newAdminEnv(t, "org_a")
	admin := dispatcher.NewAdmin(env.js, env.names)
	ts, err := admin.Tenant(t.Context(), "org_a")
	if err != nil || ts.ID != "org_a" || ts.State != dispatcher.StateNoWorkers || ts.Concurrency != 0 {
		t.Errorf("Tenant(org_a) = %+v, %v", ts, err)
	}
	for _, id := range []string{"org_x", "bad id", ""} {
		if _, err := admin.Tenant(t.Context(), id); !errors.Is(err, dispatcher.ErrTenantNotFound) {
			t.Errorf("Tenant(%q) error = %v, want ErrTenantNotFound", id, err)
		}
		if _, err := admin.Pause(t.Context(), id, time.Minute, "x"); !errors.Is(err, dispatcher.ErrTenantNotFound) {
			t.Errorf("Pause(%q) error = %v, want ErrTenantNotFound", id, err)
		}
		if _, err := admin.Resume(t.Context(), id); !errors.Is(err, dispatcher.ErrTenantNotFound) {
			t.Errorf("Resume(%q) error = %v, want ErrTenantNotFound", id, err)
		}
	}
	if _, err := admin.Pause(t.Context(), "org_a", 0, "x"); err == nil {
		t.Error("Pause with a zero duration succeeded")
	}
	for id, want := range map[string]bool{"org_a": true, "org_x": false, "*": false} {
		got, err := admin.TenantExists(t.Context(), id)
		if err != nil || got != want {
			t.Errorf("TenantExists(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
	// A tenant added after a listing is found at once.
	if _, err := admin.Tenants(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.EnsureConsumer(t.Context(), env.js, env.names, tenants.Tenant{ID: "org_new", Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	if ok, err := admin.TenantExists(t.Context(), "org_new"); !ok || err != nil {
		t.Errorf("TenantExists(org_new) right after it was added = %v, %v", ok, err)
	}
}

func TestAdminTenantsCachesOneListing(t *testing.T) {
	env := newAdminEnv(t, "org_a")
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	admin := dispatcher.NewAdmin(env.js, env.names, dispatcher.WithClock(now), dispatcher.WithReplicaLiveness(time.Hour))

	list, err := admin.Tenants(t.Context())
	if err != nil || len(list) != 1 || list[0].Backlog != 0 {
		t.Fatalf("tenants = %+v, %v", list, err)
	}
	env.publish(t, "org_a", "j1")
	list, _ = admin.Tenants(t.Context())
	if list[0].Backlog != 0 {
		t.Errorf("within the cache TTL backlog = %d, want the cached 0", list[0].Backlog)
	}
	clock.Add(int64(dispatcher.DefaultTenantsCacheTTL))
	list, _ = admin.Tenants(t.Context())
	if list[0].Backlog != 1 {
		t.Errorf("after the cache TTL backlog = %d, want 1", list[0].Backlog)
	}
}

// TestAdminTenantsIsOneListing checks the cost of a listing with more
// tenants than one page of consumer infos (256): a paged listing and no
// request per tenant.
func TestAdminTenantsIsOneListing(t *testing.T) {
	env := newAdminEnv(t)
	// Tenant consumers as Provision makes them, but in memory: 300 of them
	// on file storage take seconds to create.
	var ts []tenants.Tenant
	for i := range 300 {
		ts = append(ts, tenants.Tenant{ID: fmt.Sprintf("org_%03d", i), Concurrency: 1})
	}
	if err := dispatcher.Provision(t.Context(), env.js, env.names, dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}, ts); err != nil {
		t.Fatal(err)
	}
	var lists, infos atomic.Int64
	sub, err := env.nc.Subscribe("$JS.API.CONSUMER.>", func(m *nats.Msg) {
		switch {
		case strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.LIST."):
			lists.Add(1)
		case strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.INFO."):
			infos.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	admin := dispatcher.NewAdmin(env.js, env.names, dispatcher.WithTenantsCacheTTL(0))
	list, err := admin.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 300 {
		t.Fatalf("got %d tenants, want 300", len(list))
	}
	// Our own requests reach the subscription before their answers reach us
	// (one connection, in order), so a flush round trip makes them counted.
	if err := env.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	// One listing per jobs stream: 300 tenants are fewer than a page in
	// each of the 16.
	if n := lists.Load(); n != dispatcher.JobShards {
		t.Errorf("%d consumer list requests, want %d (one per jobs stream)", n, dispatcher.JobShards)
	}
	if n := infos.Load(); n != 0 {
		t.Errorf("%d consumer info requests, want none", n)
	}
}

func TestAdminJob(t *testing.T) {
	env := newAdminEnv(t, "org_a", "org_b")
	admin := dispatcher.NewAdmin(env.js, env.names)
	at := time.Now().UTC().Truncate(time.Second)
	for _, st := range []dispatcher.JobStatus{
		{ID: "j.1", Tenant: "org_b", Op: "campaign.start", State: dispatcher.StateDead, Attempts: 3, Error: "boom", Updated: at},
		{ID: "j.1", Tenant: "org_a", Op: "campaign.stop", State: dispatcher.StateSucceeded, Attempts: 1, Updated: at},
		{ID: "j.10", Tenant: "org_a", Op: "campaign.stop", State: dispatcher.StateQueued, Updated: at},
		{ID: "x.j.1", Tenant: "org_a", Op: "campaign.stop", State: dispatcher.StateQueued, Updated: at},
	} {
		env.put(t, env.names.StatusBucket(), dispatcher.StatusKey(st.Tenant, st.ID), st)
	}
	got, err := admin.Job(t.Context(), "j.1")
	if err != nil {
		t.Fatalf("Job: %v", err)
	}
	if len(got) != 2 || got[0].Tenant != "org_a" || got[0].State != dispatcher.StateSucceeded ||
		got[1].Tenant != "org_b" || got[1].State != dispatcher.StateDead || got[1].Error != "boom" {
		t.Errorf("Job(j.1) = %+v, want org_a succeeded and org_b dead, nothing else", got)
	}
	for _, id := range []string{"nope", "*", ">", "j.*", ""} {
		if _, err := admin.Job(t.Context(), id); !errors.Is(err, dispatcher.ErrJobNotFound) {
			t.Errorf("Job(%q) error = %v, want ErrJobNotFound", id, err)
		}
	}
}

// deadLetter stores a dead letter the way the worker does.
func (e adminEnv) deadLetter(t *testing.T, tenant, op, body string, class string) uint64 {
	t.Helper()
	m := nats.NewMsg(e.names.DLQSubject(tenant, op))
	m.Data = []byte(body)
	m.Header.Set(dispatcher.HeaderTenant, tenant)
	m.Header.Set(dispatcher.HeaderOp, op)
	m.Header.Set(dispatcher.HeaderErrorClass, class)
	m.Header.Set(dispatcher.HeaderError, "platform said 404")
	m.Header.Set(dispatcher.HeaderHTTPStatus, "404")
	m.Header.Set(dispatcher.HeaderAttempts, "2")
	m.Header.Set(dispatcher.HeaderFirstAttempt, "2026-01-02T03:04:05Z")
	m.Header.Set(dispatcher.HeaderLastAttempt, "2026-01-02T03:05:05.5Z")
	m.Header.Set(dispatcher.HeaderSubject, e.names.JobSubject(tenant, op))
	ack, err := e.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatalf("store dead letter: %v", err)
	}
	return ack.Sequence
}

func jobBody(tenant, id string) string {
	return fmt.Sprintf(`{"id":%q,"tenant":%q,"op":"campaign.start","params":{"campaign_id":"c1"}}`, id, tenant)
}

func TestAdminDeadLetters(t *testing.T) {
	env := newAdminEnv(t, "org_a", "org_b")
	admin := dispatcher.NewAdmin(env.js, env.names, dispatcher.WithDeadLetterBodyLimit(40))
	a1 := env.deadLetter(t, "org_a", "campaign.start", jobBody("org_a", "a1"), "permanent")
	b1 := env.deadLetter(t, "org_b", "campaign.start", jobBody("org_b", "b1"), "permanent")
	a2 := env.deadLetter(t, "org_a", "campaign.start", `{"id":"a2"}`, "invalid")

	all, err := admin.DeadLetters(t.Context(), "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Seq != a1 || all[1].Seq != b1 || all[2].Seq != a2 {
		t.Fatalf("all dead letters = %+v, want seqs %d %d %d", all, a1, b1, a2)
	}
	d := all[0]
	if d.Tenant != "org_a" || d.Op != "campaign.start" || d.JobID != "a1" || d.ErrorClass != "permanent" ||
		d.Error != "platform said 404" || d.HTTPStatus != 404 || d.Attempts != 2 ||
		!d.FirstAttempt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		!d.LastAttempt.Equal(time.Date(2026, 1, 2, 3, 5, 5, 5e8, time.UTC)) || d.DeadAt.IsZero() {
		t.Errorf("dead letter = %+v", d)
	}
	if full := jobBody("org_a", "a1"); !d.BodyTruncated || d.Body != full[:40] || d.BodyBytes != len(full) {
		t.Errorf("body = %q (truncated %v, %d bytes), want the first 40 bytes of %d", d.Body, d.BodyTruncated, d.BodyBytes, len(full))
	}

	onlyA, err := admin.DeadLetters(t.Context(), "org_a", 0, 0)
	if err != nil || len(onlyA) != 2 || onlyA[0].Seq != a1 || onlyA[1].Seq != a2 {
		t.Errorf("org_a dead letters = %+v, %v", onlyA, err)
	}
	page, err := admin.DeadLetters(t.Context(), "org_a", 1, a1)
	if err != nil || len(page) != 1 || page[0].Seq != a2 {
		t.Errorf("page after %d = %+v, %v; want just %d", a1, page, err, a2)
	}
	end, err := admin.DeadLetters(t.Context(), "org_a", 1, a2)
	if err != nil || len(end) != 0 {
		t.Errorf("page after the last = %+v, %v; want empty", end, err)
	}
	if got, err := admin.DeadLetters(t.Context(), "org_zzz", 0, 0); err != nil || len(got) != 0 {
		t.Errorf("dead letters of a tenant with none = %+v, %v", got, err)
	}
	if _, err := admin.DeadLetters(t.Context(), "bad id", 0, 0); err == nil {
		t.Error("DeadLetters with an invalid tenant id succeeded")
	}

	one, err := admin.DeadLetter(t.Context(), b1)
	if err != nil || one.JobID != "b1" || one.Tenant != "org_b" {
		t.Errorf("DeadLetter(%d) = %+v, %v", b1, one, err)
	}

	if err := admin.DeleteDeadLetter(t.Context(), b1); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := admin.DeadLetter(t.Context(), b1); !errors.Is(err, dispatcher.ErrDeadLetterNotFound) {
		t.Errorf("after delete: %v, want ErrDeadLetterNotFound", err)
	}
	for _, seq := range []uint64{b1, 0, 999} {
		if err := admin.DeleteDeadLetter(t.Context(), seq); !errors.Is(err, dispatcher.ErrDeadLetterNotFound) {
			t.Errorf("DeleteDeadLetter(%d) = %v, want ErrDeadLetterNotFound", seq, err)
		}
	}
}

func TestAdminReplay(t *testing.T) {
	env := newAdminEnv(t, "org_a")
	admin := dispatcher.NewAdmin(env.js, env.names)
	ctx := t.Context()

	// The job ran once (its id is in the duplicate window), then was
	// dead-lettered; a consumer took it off the work queue.
	env.publish(t, "org_a", "a1")
	drainJobs(t, env, "org_a", 1)
	seq := env.deadLetter(t, "org_a", "campaign.start", jobBody("org_a", "a1"), "exhausted")
	env.put(t, env.names.StatusBucket(), dispatcher.StatusKey("org_a", "a1"),
		dispatcher.JobStatus{ID: "a1", Tenant: "org_a", Op: "campaign.start", State: dispatcher.StateDead, Attempts: 5})

	res, err := admin.Replay(ctx, seq)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Duplicate || res.Tenant != "org_a" || res.JobID != "a1" || res.MsgID != dispatcher.ReplayMsgID("org_a", "a1", seq) {
		t.Errorf("replay result = %+v", res)
	}
	stream, err := env.js.Stream(ctx, env.names.JobsStream("org_a"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, res.JobSeq)
	if err != nil {
		t.Fatalf("replayed job not in the jobs stream: %v", err)
	}
	if m.Subject != env.names.PriorityJobSubject("org_a", dispatcher.PriorityBulk, "campaign.start") || string(m.Data) != jobBody("org_a", "a1") ||
		m.Header.Get(nats.MsgIdHdr) != res.MsgID {
		t.Errorf("replayed message: subject %s, id %s, body %s", m.Subject, m.Header.Get(nats.MsgIdHdr), m.Data)
	}
	if _, err := admin.DeadLetter(ctx, seq); !errors.Is(err, dispatcher.ErrDeadLetterNotFound) {
		t.Errorf("dead letter after replay: %v, want deleted", err)
	}
	if st, err := admin.Job(ctx, "a1"); err != nil || len(st) != 1 || st[0].State != dispatcher.StateQueued {
		t.Errorf("status after replay = %+v, %v; want queued", st, err)
	}
	if _, err := admin.Replay(ctx, seq); !errors.Is(err, dispatcher.ErrDeadLetterNotFound) {
		t.Errorf("second replay: %v, want ErrDeadLetterNotFound", err)
	}

	// A body that can never run is not replayed, and stays.
	bad := env.deadLetter(t, "org_a", "campaign.start", `{"id":"a2","op":"campaign.start"}`, "invalid")
	var invalid *dispatcher.InvalidJobError
	if _, err := admin.Replay(ctx, bad); !errors.As(err, &invalid) {
		t.Errorf("replay of an invalid job: %v, want *InvalidJobError", err)
	}
	if _, err := admin.DeadLetter(ctx, bad); err != nil {
		t.Errorf("invalid dead letter after a refused replay: %v, want kept", err)
	}
	// A body naming another tenant is refused too.
	other := env.deadLetter(t, "org_a", "campaign.start", jobBody("org_b", "a3"), "invalid")
	if _, err := admin.Replay(ctx, other); !errors.As(err, &invalid) {
		t.Errorf("replay of another tenant's job: %v, want *InvalidJobError", err)
	}
}

// drainJobs takes n of a tenant's jobs off the work queue and acks them.
func drainJobs(t *testing.T, env adminEnv, tenant string, n int) {
	t.Helper()
	c, err := env.js.Consumer(t.Context(), env.names.JobsStream(tenant), env.names.Consumer(tenant))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Fatalf("drained %d jobs, want %d", got, n)
	}
}

func TestAdminReady(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	admin := dispatcher.NewAdmin(js, names)
	if err := admin.Ready(context.Background()); err == nil {
		t.Error("Ready before provisioning succeeded")
	}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Ready(t.Context()); err != nil {
		t.Errorf("Ready after provisioning: %v", err)
	}
}
