package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func tenantList(conc ...int) []tenants.Tenant {
	ts := make([]tenants.Tenant, len(conc))
	for i, c := range conc {
		ts[i] = tenants.Tenant{ID: fmt.Sprintf("org_%d", i+1), Concurrency: c}
	}
	return ts
}

func provision(t *testing.T, js jetstream.JetStream, names dispatcher.Names, cfg dispatcher.StreamConfig, ts []tenants.Tenant) {
	t.Helper()
	if err := dispatcher.Provision(t.Context(), js, names, cfg, ts); err != nil {
		t.Fatalf("Provision: %v", err)
	}
}

func consumerInfo(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(t.Context(), names.JobsStream(tenant), names.Consumer(tenant))
	if err != nil {
		t.Fatalf("consumer of %s: %v", tenant, err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestProvisionCreatesLayout(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(3, 7))

	// Each tenant's jobs stream listens on its tenants' subjects only, so a
	// job for a tenant that is not configured finds no stream.
	if dispatcher.ShardOf("org_1") == dispatcher.ShardOf("org_2") {
		t.Fatal("the test wants org_1 and org_2 in two shards")
	}
	if _, err := js.Stream(t.Context(), "ORGDISPATCH_JOBS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the single-stream layout's stream: %v, want none", err)
	}
	jobs, err := js.Stream(t.Context(), names.JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	if name := jobs.CachedInfo().Config.Name; name != fmt.Sprintf("ORGDISPATCH_JOBS_%02d", dispatcher.ShardOf("org_1")) {
		t.Errorf("org_1's jobs stream is %s", name)
	}
	jc := jobs.CachedInfo().Config
	if got := fmt.Sprint(jc.Subjects); got != "[orgdispatch.jobs.org_1.>]" {
		t.Errorf("jobs subjects %s", got)
	}
	if jc.Retention != jetstream.WorkQueuePolicy || jc.Storage != jetstream.FileStorage || jc.Discard != jetstream.DiscardNew {
		t.Errorf("jobs stream retention %v storage %v discard %v, want work queue, file, new", jc.Retention, jc.Storage, jc.Discard)
	}
	if !jc.DiscardNewPerSubject || jc.MaxMsgsPerSubject != tenants.DefaultMaxBacklog {
		t.Errorf("jobs stream discard new per subject %v, max per subject %d, want true, %d", jc.DiscardNewPerSubject, jc.MaxMsgsPerSubject, tenants.DefaultMaxBacklog)
	}
	if jc.Duplicates != 10*time.Minute || jc.MaxConsumers != 10_000 || jc.Replicas != 1 || jc.MaxMsgs != -1 || jc.MaxBytes != -1 || jc.MaxAge != 0 {
		t.Errorf("jobs stream dup %v consumers %d replicas %d msgs %d bytes %d age %v", jc.Duplicates, jc.MaxConsumers, jc.Replicas, jc.MaxMsgs, jc.MaxBytes, jc.MaxAge)
	}
	if jc.MaxMsgSize < dispatcher.MaxJobBytes || jc.MaxMsgSize > dispatcher.MaxJobBytes+64<<10 {
		t.Errorf("jobs stream MaxMsgSize %d, want a little over %d", jc.MaxMsgSize, dispatcher.MaxJobBytes)
	}

	dlq, err := js.Stream(t.Context(), "ORGDISPATCH_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	dc := dlq.CachedInfo().Config
	if fmt.Sprint(dc.Subjects) != "[orgdispatch.dlq.>]" || dc.Retention != jetstream.LimitsPolicy || dc.Storage != jetstream.FileStorage || dc.MaxAge != 14*24*time.Hour ||
		dc.MaxMsgsPerSubject != dispatcher.DefaultDLQMaxPerSubject || dc.Discard != jetstream.DiscardOld {
		t.Errorf("DLQ stream %v %v %v %v, per subject %d, discard %v", dc.Subjects, dc.Retention, dc.Storage, dc.MaxAge, dc.MaxMsgsPerSubject, dc.Discard)
	}

	for _, b := range []struct {
		name    string
		ttl     time.Duration
		storage jetstream.StorageType
	}{
		{"orgdispatch_job_status", 7 * 24 * time.Hour, jetstream.FileStorage},
		{"orgdispatch_replicas", 30 * time.Second, jetstream.MemoryStorage},
		{"orgdispatch_lanes", 30 * time.Second, jetstream.MemoryStorage},
		{"orgdispatch_pauses", 0, jetstream.FileStorage},
	} {
		kv, err := js.KeyValue(t.Context(), b.name)
		if err != nil {
			t.Errorf("bucket %s: %v", b.name, err)
			continue
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		si := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
		if st.TTL() != b.ttl || st.History() != 1 || si.Config.Storage != b.storage {
			t.Errorf("bucket %s: ttl %v history %d storage %v, want %v 1 %v", b.name, st.TTL(), st.History(), si.Config.Storage, b.ttl, b.storage)
		}
	}

	for i := range 2 {
		id := fmt.Sprintf("org_%d", i+1)
		for _, p := range dispatcher.Priorities() {
			if p != dispatcher.PriorityNormal {
				if _, err := dispatcher.EnsureClassConsumer(t.Context(), js, names, id, p); err != nil {
					t.Fatalf("%s consumer of %s: %v", p, id, err)
				}
			}
			cons, err := js.Consumer(t.Context(), names.JobsStream(id), names.PriorityConsumer(id, p))
			if err != nil {
				t.Fatalf("%s consumer of %s: %v", p, id, err)
			}
			c := cons.CachedInfo().Config
			if c.FilterSubject != "" || !slices.Equal(c.FilterSubjects, names.PriorityFilters(id, p)) ||
				c.AckPolicy != jetstream.AckExplicitPolicy || c.MaxAckPending != dispatcher.ConsumerMaxAckPending || c.AckWait != dispatcher.ConsumerAckWait ||
				c.MaxDeliver != -1 || c.DeliverPolicy != jetstream.DeliverAllPolicy {
				t.Errorf("%s consumer of %s: %+v", p, id, c)
			}
		}
		if c := consumerInfo(t, js, names, id).Config; c.Durable != "tenant_"+id || !slices.Contains(c.FilterSubjects, "orgdispatch.jobs."+id+".*.*") {
			t.Errorf("normal consumer of %s: %+v", id, c)
		}
	}
	// Each class takes its own subjects: the op's default class on the
	// plain subject, any class on its explicit one.
	for subject, want := range map[string]string{
		"orgdispatch.jobs.org_1.campaign.stop":              "tenant_org_1",
		"orgdispatch.jobs.org_1.contacts.add":               "tenant_org_1",
		"orgdispatch.jobs.org_1.contacts.remove":            "tenant_org_1",
		"orgdispatch.jobs.org_1.campaign.start":             "tenant_org_1",
		"orgdispatch.jobs.org_1.bulk.campaign.start":        "bulk_org_1",
		"orgdispatch.jobs.org_1.urgent.campaign.start":      "urgent_org_1",
		"orgdispatch.jobs.org_1.normal.contacts.add":        "tenant_org_1",
		"orgdispatch.jobs.org_1.urgent.campaign.set_status": "urgent_org_1",
	} {
		var got []string
		for _, p := range dispatcher.Priorities() {
			for _, f := range names.PriorityFilters("org_1", p) {
				if matchSubject(f, subject) {
					got = append(got, names.PriorityConsumer("org_1", p))
				}
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s is taken by %v, want %s alone", subject, got, want)
		}
	}
}

// matchSubject reports whether NATS filter f matches subject s.
func matchSubject(f, s string) bool {
	ft, st := strings.Split(f, "."), strings.Split(s, ".")
	for i, tok := range ft {
		switch {
		case tok == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case tok != "*" && tok != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

func TestProvisionStreamConfig(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("acme")
	provision(t, js, names, dispatcher.StreamConfig{
		MaxConsumers: 50, DuplicateWindow: time.Minute, DLQMaxAge: time.Hour, StatusTTL: 2 * time.Hour,
		ReplicasTTL: 10 * time.Second, MaxBytes: 1 << 20, MaxMsgs: 100,
	}, []tenants.Tenant{{ID: "a", Concurrency: 1, MaxBacklog: 7}})
	jobs, err := js.Stream(t.Context(), fmt.Sprintf("ACME_JOBS_%02d", dispatcher.ShardOf("a")))
	if err != nil {
		t.Fatal(err)
	}
	jc := jobs.CachedInfo().Config
	if jc.MaxConsumers != 50 || jc.Duplicates != time.Minute || jc.MaxBytes != 1<<20 || jc.MaxMsgs != 100 || jc.Subjects[0] != "acme.jobs.a.>" || jc.MaxMsgsPerSubject != 7 {
		t.Errorf("jobs stream %+v", jc)
	}
	dlq, err := js.Stream(t.Context(), "ACME_DLQ")
	if err != nil || dlq.CachedInfo().Config.MaxAge != time.Hour {
		t.Errorf("DLQ: %v", err)
	}
	for bucket, ttl := range map[string]time.Duration{"acme_job_status": 2 * time.Hour, "acme_replicas": 10 * time.Second, "acme_lanes": 10 * time.Second} {
		kv, err := js.KeyValue(t.Context(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := kv.Status(t.Context())
		if st.TTL() != ttl {
			t.Errorf("%s TTL %v, want %v", bucket, st.TTL(), ttl)
		}
	}
}

// consumerState is what provisioning must not disturb.
type consumerState struct {
	Config     jetstream.ConsumerConfig
	Created    time.Time
	Delivered  jetstream.SequenceInfo
	AckFloor   jetstream.SequenceInfo
	AckPending int
	Pending    uint64
}

func stateOf(info *jetstream.ConsumerInfo) consumerState {
	return consumerState{info.Config, info.Created, info.Delivered, info.AckFloor, info.NumAckPending, info.NumPending}
}

func publishRaw(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant, id string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"op":"campaign.start","params":{"campaign_id":"c"}}`, id)
	if _, err := js.Publish(t.Context(), names.JobSubject(tenant, "campaign.start"), []byte(body), jetstream.WithMsgID(dispatcher.MsgID(tenant, id))); err != nil {
		t.Fatal(err)
	}
}

// deliver fetches n jobs of tenant and acks the first ack of them.
func deliver(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant string, n, ack int) {
	t.Helper()
	c, err := js.Consumer(t.Context(), names.JobsStream(tenant), names.Consumer(tenant))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if got < ack {
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d jobs, want %d (%v)", got, n, batch.Error())
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := tenantList(4, 2)
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	for i := range 5 {
		publishRaw(t, js, names, "org_1", fmt.Sprintf("j%d", i))
	}
	deliver(t, js, names, "org_1", 3, 1) // 1 acked, 2 pending acks, 2 undelivered

	before := stateOf(consumerInfo(t, js, names, "org_1"))
	if before.AckPending != 2 || before.Pending != 2 || before.Delivered.Consumer != 3 {
		t.Fatalf("setup: %+v", before)
	}
	streamBefore, _ := js.Stream(t.Context(), names.JobsStream("org_1"))

	provision(t, js, names, dispatcher.StreamConfig{}, ts)

	after := stateOf(consumerInfo(t, js, names, "org_1"))
	if fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) {
		t.Errorf("re-provisioning changed the consumer:\nbefore %+v\nafter  %+v", before, after)
	}
	streamAfter, _ := js.Stream(t.Context(), names.JobsStream("org_1"))
	if b, a := streamBefore.CachedInfo(), streamAfter.CachedInfo(); a.State.Msgs != 4 || b.State.Msgs != a.State.Msgs || !b.Created.Equal(a.Created) {
		t.Errorf("stream state changed: %d → %d msgs", b.State.Msgs, a.State.Msgs)
	}
	// Dedup state survives too: a job published before is still a duplicate.
	ack, err := js.Publish(t.Context(), names.JobSubject("org_1", "campaign.start"), []byte(`{}`), jetstream.WithMsgID(dispatcher.MsgID("org_1", "j4")))
	if err != nil || !ack.Duplicate {
		t.Errorf("publish after re-provisioning: %+v %v, want a duplicate", ack, err)
	}
}

// A consumer of an earlier version (MaxAckPending = the tenant's
// concurrency, which let jobs waiting out a delay stop the tenant) is updated
// in place to ConsumerMaxAckPending, keeping its delivery state; a changed
// concurrency does not touch the consumer (it is each lane's own bound).
func TestProvisionUpgradesEarlierConsumers(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4, 2))
	old := dispatcher.ConsumerConfig(names, tenantList(4)[0])
	old.MaxAckPending = 4 // as the earlier version provisioned it
	if _, err := js.CreateOrUpdateConsumer(t.Context(), names.JobsStream("org_1"), old); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publishRaw(t, js, names, "org_1", fmt.Sprintf("j%d", i))
	}
	deliver(t, js, names, "org_1", 2, 1)
	before := consumerInfo(t, js, names, "org_1")
	if before.Config.MaxAckPending != 4 {
		t.Fatalf("setup: MaxAckPending %d", before.Config.MaxAckPending)
	}

	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(9, 2))

	after := consumerInfo(t, js, names, "org_1")
	if after.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending {
		t.Fatalf("MaxAckPending = %d, want %d", after.Config.MaxAckPending, dispatcher.ConsumerMaxAckPending)
	}
	seq := func(s jetstream.SequenceInfo) [2]uint64 { return [2]uint64{s.Consumer, s.Stream} }
	if seq(after.Delivered) != seq(before.Delivered) || seq(after.AckFloor) != seq(before.AckFloor) || after.NumAckPending != 1 || after.NumPending != 1 || !after.Created.Equal(before.Created) {
		t.Errorf("update lost delivery state: before %+v / %+v, after %+v / %+v", before.Delivered, before.AckFloor, after.Delivered, after.AckFloor)
	}
	if other := consumerInfo(t, js, names, "org_2"); other.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending {
		t.Errorf("org_2 MaxAckPending %d", other.Config.MaxAckPending)
	}
}

// TestServerKeepsPauseOnConsumerUpdate pins down the nats-server behaviour
// Provision relies on to never resume a paused tenant: a consumer update
// cannot change PauseUntil, whatever it carries.
func TestServerKeepsPauseOnConsumerUpdate(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4))
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := js.PauseConsumer(t.Context(), names.JobsStream("org_1"), "tenant_org_1", until); err != nil {
		t.Fatal(err)
	}
	cfg := dispatcher.ConsumerConfig(names, tenantList(5)[0])
	cfg.Description = "changed"
	other := time.Now().Add(time.Minute)
	for _, pause := range []*time.Time{nil, &other} {
		cfg.PauseUntil = pause
		if _, err := js.CreateOrUpdateConsumer(t.Context(), names.JobsStream("org_1"), cfg); err != nil {
			t.Fatal(err)
		}
		info := consumerInfo(t, js, names, "org_1")
		if info.Config.Description != "changed" {
			t.Fatalf("update not applied")
		}
		if !info.Paused || !info.Config.PauseUntil.Equal(until) {
			t.Fatalf("an update with PauseUntil %v changed the pause to %v (paused %v): Provision would resume paused tenants", pause, info.Config.PauseUntil, info.Paused)
		}
	}
}

func TestProvisionKeepsPause(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4, 4))
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := js.PauseConsumer(t.Context(), names.JobsStream("org_1"), "tenant_org_1", until); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		info := consumerInfo(t, js, names, "org_1")
		if !info.Paused || info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(until) {
			t.Fatalf("%s: paused %v until %v, want until %v", step, info.Paused, info.Config.PauseUntil, until)
		}
	}
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4, 4))
	check("unchanged")
	old := dispatcher.ConsumerConfig(names, tenantList(4)[0])
	old.MaxAckPending = 4 // an earlier version's consumer
	if _, err := js.UpdateConsumer(t.Context(), names.JobsStream("org_1"), old); err != nil {
		t.Fatal(err)
	}
	check("setup")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(6, 4))
	check("earlier consumer upgraded")
	if info := consumerInfo(t, js, names, "org_1"); info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending {
		t.Fatalf("MaxAckPending %d", info.Config.MaxAckPending)
	}
	if _, err := dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "org_1", Concurrency: 5}); err != nil {
		t.Fatal(err)
	}
	check("EnsureConsumer")
	if info := consumerInfo(t, js, names, "org_2"); info.Paused {
		t.Error("org_2 paused")
	}
}

func TestEnsureAndRemoveConsumer(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, nil)

	c, err := dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "late", Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.Name != "tenant_late" || info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending || !slices.Equal(info.Config.FilterSubjects, names.PriorityFilters("late", dispatcher.PriorityNormal)) {
		t.Fatalf("EnsureConsumer created %+v", info.Config)
	}
	publishRaw(t, js, names, "late", "j1")
	c, err = dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "late", Concurrency: 3})
	if err != nil || c.CachedInfo().NumPending != 1 {
		t.Fatalf("EnsureConsumer again: %v", err)
	}
	c, err = dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "late", Concurrency: 8})
	if err != nil || c.CachedInfo().Config.MaxAckPending != dispatcher.ConsumerMaxAckPending || c.CachedInfo().NumPending != 1 {
		t.Fatalf("EnsureConsumer with another concurrency: %v", err)
	}

	if err := dispatcher.RemoveConsumer(t.Context(), js, names, "late"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(t.Context(), names.JobsStream("late"), "tenant_late"); err == nil {
		t.Fatal("consumer still there")
	}
	if err := dispatcher.RemoveConsumer(t.Context(), js, names, "late"); err != nil {
		t.Fatalf("removing a missing consumer: %v", err)
	}
	// The tenant's queued job waits for it to come back.
	c, err = dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "late", Concurrency: 1})
	if err != nil || c.CachedInfo().NumPending != 1 {
		t.Fatalf("re-created consumer: %v, pending %d", err, c.CachedInfo().NumPending)
	}

	if err := dispatcher.RemoveConsumer(t.Context(), js, names, "a.b"); err == nil {
		t.Error("RemoveConsumer accepted an invalid id")
	}
	if _, err := dispatcher.EnsureConsumer(t.Context(), js, names, tenants.Tenant{ID: "x"}); err == nil || !strings.Contains(err.Error(), "concurrency 0") {
		t.Errorf("EnsureConsumer without concurrency: %v", err)
	}
}

func TestProvisionRejects(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	for _, tc := range []struct {
		cfg  dispatcher.StreamConfig
		ts   []tenants.Tenant
		want string
	}{
		{dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "a", Concurrency: 1}, {ID: "a", Concurrency: 2}}, "tenant a listed twice"},
		{dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "a*", Concurrency: 1}}, `invalid tenant id "a*"`},
		{dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "a"}}, "tenant a: concurrency 0"},
		{dispatcher.StreamConfig{MaxConsumers: 5}, tenantList(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), "tenants in one jobs stream need"},
	} {
		err := dispatcher.Provision(t.Context(), js, names, tc.cfg, tc.ts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Provision(%v) = %v, want %q", tc.ts, err, tc.want)
		}
	}
	if streams, err := dispatcher.JobsStreams(t.Context(), js, names); err != nil || len(streams) != 0 {
		t.Errorf("a rejected Provision created %d jobs streams (%v)", len(streams), err)
	}
}

func TestProvisionManyTenants(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := make([]tenants.Tenant, 200)
	for i := range ts {
		ts[i] = tenants.Tenant{ID: fmt.Sprintf("org_%d", i), Concurrency: 1 + i%5}
	}
	start := time.Now()
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	first := time.Since(start)
	start = time.Now()
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	again := time.Since(start)
	t.Logf("200 tenants: provisioned in %v, re-provisioned in %v", first, again)

	streams, err := dispatcher.JobsStreams(t.Context(), js, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != dispatcher.JobShards {
		t.Errorf("200 tenants in %d jobs streams, want all %d", len(streams), dispatcher.JobShards)
	}
	n := 0
	for info := range func(yield func(*jetstream.ConsumerInfo) bool) {
		for _, s := range streams {
			for info := range s.ListConsumers(t.Context()).Info() {
				if !yield(info) {
					return
				}
			}
		}
	} {
		tenant, _, ok := names.TenantOfClassConsumer(info.Name)
		var i int
		if _, err := fmt.Sscanf(tenant, "org_%d", &i); !ok || err != nil || info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending {
			t.Errorf("consumer %s: MaxAckPending %d", info.Name, info.Config.MaxAckPending)
		}
		n++
	}
	if n != 200 {
		t.Fatalf("%d consumers, want 200 (urgent and bulk ones come with their first jobs)", n)
	}
}

func BenchmarkProvision1000(b *testing.B) {
	ts := make([]tenants.Tenant, 1000)
	for i := range ts {
		ts[i] = tenants.Tenant{ID: fmt.Sprintf("org_%d", i), Concurrency: 4}
	}
	names := dispatcher.MustNames("")
	for b.Loop() {
		b.StopTimer()
		_, _, js := natstest.RunServer(b)
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, ts); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
