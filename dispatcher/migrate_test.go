package dispatcher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// legacyStream is the one jobs stream of the single-stream layout.
const legacyStream = "ORGDISPATCH_JOBS"

// buildLegacyLayout creates, by hand, what the version before the sharded
// layout provisioned for tenantIDs: the jobs stream ORGDISPATCH_JOBS on
// orgdispatch.jobs.>, one consumer per tenant, and the dead-letter stream
// and pauses bucket (whose configurations did not change).
func buildLegacyLayout(t *testing.T, js jetstream.JetStream, tenantIDs ...string) {
	t.Helper()
	ctx := t.Context()
	names := dispatcher.MustNames("")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:         legacyStream,
		Description:  "orgdispatch jobs, one subject per tenant and operation",
		Subjects:     []string{"orgdispatch.jobs.>"},
		Retention:    jetstream.WorkQueuePolicy,
		Storage:      jetstream.FileStorage,
		Discard:      jetstream.DiscardNew,
		Duplicates:   10 * time.Minute,
		MaxConsumers: 10_000,
		Replicas:     1,
		MaxMsgs:      -1,
		MaxBytes:     -1,
		MaxMsgSize:   dispatcher.MaxJobBytes + 16<<10,
	}); err != nil {
		t.Fatalf("legacy jobs stream: %v", err)
	}
	if _, err := js.CreateStream(ctx, dispatcher.DLQStreamConfig(names, dispatcher.StreamConfig{})); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: "orgdispatch_pauses", Description: "orgdispatch tenant pauses: why and by whom",
		History: 1, Storage: jetstream.FileStorage, Replicas: 1,
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range tenantIDs {
		if _, err := js.CreateConsumer(ctx, legacyStream, jetstream.ConsumerConfig{
			Durable:       "tenant_" + id,
			Description:   "orgdispatch jobs of tenant " + id,
			FilterSubject: "orgdispatch.jobs." + id + ".>",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       60 * time.Second,
			MaxDeliver:    -1,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			MaxAckPending: 10_000,
		}); err != nil {
			t.Fatalf("legacy consumer of %s: %v", id, err)
		}
	}
}

// publishLegacy queues n jobs j0…j<n-1> of tenant in the legacy stream the
// way the earlier Publisher did (job id header, tenant-scoped message id,
// expected stream ORGDISPATCH_JOBS).
func publishLegacy(t *testing.T, js jetstream.JetStream, tenant string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("j%d", i)
		m := nats.NewMsg("orgdispatch.jobs." + tenant + ".campaign.start")
		m.Data = fmt.Appendf(nil, `{"id":%q,"op":"campaign.start","params":{"campaign_id":"c"}}`, id)
		m.Header.Set(dispatcher.HeaderJobID, id)
		if _, err := js.PublishMsg(t.Context(), m, jetstream.WithMsgID(tenant+":"+id), jetstream.WithExpectStream(legacyStream)); err != nil {
			t.Fatalf("legacy publish %s of %s: %v", id, tenant, err)
		}
	}
}

// fetchLegacy fetches n of tenant's jobs from its legacy consumer and acks
// the first ack of them; the others stay delivered and unacknowledged.
func fetchLegacy(t *testing.T, js jetstream.JetStream, tenant string, n, ack int) []string {
	t.Helper()
	c, err := js.Consumer(t.Context(), legacyStream, "tenant_"+tenant)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var acked []string
	got := 0
	for m := range batch.Messages() {
		if got < ack {
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
			acked = append(acked, m.Headers().Get(dispatcher.HeaderJobID))
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d legacy jobs of %s, want %d (%v)", got, tenant, n, batch.Error())
	}
	return acked
}

// streamMsgs returns every message stream holds, in order.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	if len(out) != int(st.Msgs) {
		t.Fatalf("stream %s: read %d messages, it holds %d", stream, len(out), st.Msgs)
	}
	return out
}

// queuedJobs counts the jobs in every jobs stream by "<tenant>/<job id>"
// (tenant from the subject, id from the body), checking that each is in its
// tenant's shard and kept its headers.
func queuedJobs(t *testing.T, js jetstream.JetStream, names dispatcher.Names) map[string]int {
	t.Helper()
	streams, err := dispatcher.JobsStreams(t.Context(), js, names)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range streams {
		name := s.CachedInfo().Config.Name
		for _, m := range streamMsgs(t, js, name) {
			tenant, _, err := names.ParseJobSubject(m.Subject)
			if err != nil {
				t.Fatalf("%s holds %s: %v", name, m.Subject, err)
			}
			var body struct{ ID string }
			if err := json.Unmarshal(m.Data, &body); err != nil || body.ID == "" {
				t.Fatalf("%s seq %d: body %q: %v", name, m.Sequence, m.Data, err)
			}
			if want := names.JobsStream(tenant); name != want {
				t.Errorf("job %s of %s is in %s, want %s", body.ID, tenant, name, want)
			}
			if got := m.Header.Get(jetstream.MsgIDHeader); got != dispatcher.MsgID(tenant, body.ID) {
				t.Errorf("job %s of %s: Nats-Msg-Id %q", body.ID, tenant, got)
			}
			if got := m.Header.Get(dispatcher.HeaderJobID); got != body.ID {
				t.Errorf("job %s of %s: %s header %q", body.ID, tenant, dispatcher.HeaderJobID, got)
			}
			out[tenant+"/"+body.ID]++
		}
	}
	return out
}

// wantJobs is "<tenant>/j<i>" for i < n, less the ids in skip.
func wantJobs(want map[string]int, tenant string, n int, skip []string) {
	for i := range n {
		if id := fmt.Sprintf("j%d", i); !slices.Contains(skip, id) {
			want[tenant+"/"+id] = 1
		}
	}
}

// checkJobs fails unless got has every job of want exactly once and no other.
func checkJobs(t *testing.T, got, want map[string]int) {
	t.Helper()
	var missing, doubled, extra []string
	for k := range want {
		switch n := got[k]; {
		case n == 0:
			missing = append(missing, k)
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", k, n))
		}
	}
	for k := range got {
		if want[k] == 0 {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(doubled)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(doubled)
		slices.Sort(extra)
		t.Errorf("jobs streams hold %d jobs, want %d: missing %v, doubled %v, unexpected %v", len(got), len(want), missing, doubled, extra)
	}
}

// checkUnknownDeadLetters fails unless the dead-letter stream holds exactly
// n jobs of tenant, each once, as unknown_tenant.
func checkUnknownDeadLetters(t *testing.T, js jetstream.JetStream, tenant string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range streamMsgs(t, js, "ORGDISPATCH_DLQ") {
		if m.Subject != "orgdispatch.dlq."+tenant+".campaign.start" {
			t.Errorf("dead letter on %s", m.Subject)
			continue
		}
		if c := m.Header.Get(dispatcher.HeaderErrorClass); c != "unknown_tenant" {
			t.Errorf("dead letter seq %d: %s %q, want unknown_tenant", m.Sequence, dispatcher.HeaderErrorClass, c)
		}
		if got := m.Header.Get(dispatcher.HeaderTenant); got != tenant {
			t.Errorf("dead letter seq %d: tenant header %q", m.Sequence, got)
		}
		if got := m.Header.Get(dispatcher.HeaderSubject); got != "orgdispatch.jobs."+tenant+".campaign.start" {
			t.Errorf("dead letter seq %d: original subject %q", m.Sequence, got)
		}
		var body struct{ ID string }
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("dead letter seq %d: body %q", m.Sequence, m.Data)
		}
		seen[body.ID]++
	}
	want := map[string]int{}
	wantJobs(want, "", n, nil)
	got := map[string]int{}
	for id, c := range seen {
		got["/"+id] = c
	}
	checkJobs(t, got, want)
}

// A deployment of the single-stream layout is upgraded by Provision: the
// old stream's jobs end up in their shards (each once, with their headers),
// a job of a tenant that is no longer configured becomes an unknown_tenant
// dead letter, the pauses in progress carry over to the new consumers, the
// old stream is deleted, and provisioning again changes nothing.
func TestProvisionUpgradesSingleStreamLayout(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	buildLegacyLayout(t, js, "org_1", "org_2", "gone")
	publishLegacy(t, js, "org_1", 300)
	publishLegacy(t, js, "org_2", 200)
	publishLegacy(t, js, "gone", 5)
	acked := fetchLegacy(t, js, "org_1", 30, 10) // 10 done, 20 held by a worker
	fetchLegacy(t, js, "org_2", 15, 0)
	fetchLegacy(t, js, "gone", 2, 0)

	// org_1 paused by the earlier dispatcher.Pause (consumer pause and a
	// record of why); org_2 with `nats consumer pause` (no record).
	until1 := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	until2 := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
	if _, err := js.PauseConsumer(t.Context(), legacyStream, "tenant_org_1", until1); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), "orgdispatch_pauses")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(dispatcher.PauseRecord{Tenant: "org_1", Until: until1, Reason: "maintenance", By: "ops", At: time.Now().UTC()})
	if _, err := kv.Put(t.Context(), "org_1", rec); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PauseConsumer(t.Context(), legacyStream, "tenant_org_2", until2); err != nil {
		t.Fatal(err)
	}

	ts := tenantList(4, 4)
	provision(t, js, names, dispatcher.StreamConfig{}, ts)

	if _, err := js.Stream(t.Context(), legacyStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the single-stream layout's stream after the upgrade: %v, want it deleted", err)
	}
	want := map[string]int{}
	wantJobs(want, "org_1", 300, acked)
	wantJobs(want, "org_2", 200, nil)
	checkJobs(t, queuedJobs(t, js, names), want)
	checkUnknownDeadLetters(t, js, "gone", 5)

	for _, tc := range []struct {
		tenant string
		until  time.Time
		reason string
		by     string
		queued uint64
	}{
		{"org_1", until1, "maintenance", "ops", 290},
		{"org_2", until2, "paused before the upgrade to sharded streams", "upgrade", 200},
	} {
		got, rec, err := dispatcher.PauseState(t.Context(), js, names, tc.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(tc.until) || rec == nil || rec.Reason != tc.reason || rec.By != tc.by {
			t.Errorf("%s after the upgrade: paused until %v (%+v), want until %v by %s: %s", tc.tenant, got, rec, tc.until, tc.by, tc.reason)
		}
		if info := consumerInfo(t, js, names, tc.tenant); info.NumPending != tc.queued || info.NumAckPending != 0 {
			t.Errorf("%s's new consumer: pending %d, ack pending %d; want %d, 0", tc.tenant, info.NumPending, info.NumAckPending, tc.queued)
		}
	}

	// Provisioning again is a no-op.
	before := map[string]consumerState{}
	for _, tn := range ts {
		before[tn.ID] = stateOf(consumerInfo(t, js, names, tn.ID))
	}
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	checkJobs(t, queuedJobs(t, js, names), want)
	checkUnknownDeadLetters(t, js, "gone", 5)
	for _, tn := range ts {
		if after := stateOf(consumerInfo(t, js, names, tn.ID)); fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before[tn.ID]) {
			t.Errorf("provisioning again changed %s's consumer:\nbefore %+v\nafter  %+v", tn.ID, before[tn.ID], after)
		}
	}

	// The moved jobs are delivered by the new consumers, and a job
	// published again by a producer retrying is still a duplicate.
	if err := dispatcher.Resume(t.Context(), js, names, "org_2"); err != nil {
		t.Fatal(err)
	}
	deliver(t, js, names, "org_2", 200, 200)
	ack, err := js.Publish(t.Context(), names.JobSubject("org_1", "campaign.start"), []byte(`{}`), jetstream.WithMsgID("org_1:j299"))
	if err != nil || !ack.Duplicate {
		t.Errorf("org_1's j299 published again after the upgrade: %+v, %v; want a duplicate", ack, err)
	}
}

// Two processes upgrading the same deployment at once (replicas starting
// together, or one resuming the upgrade of another) both succeed, and every
// job is moved exactly once.
func TestProvisionUpgradeConcurrent(t *testing.T) {
	srv, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	buildLegacyLayout(t, js, "org_1", "org_2")
	publishLegacy(t, js, "org_1", 300)
	publishLegacy(t, js, "org_2", 200)
	publishLegacy(t, js, "gone", 5)
	fetchLegacy(t, js, "org_1", 20, 0)

	ts := tenantList(4, 4)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		pjs, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = dispatcher.Provision(t.Context(), pjs, names, dispatcher.StreamConfig{}, ts) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Provision %d of 2 upgrading at once: %v", i+1, err)
		}
	}
	if _, err := js.Stream(t.Context(), legacyStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the single-stream layout's stream: %v, want it deleted", err)
	}
	want := map[string]int{}
	wantJobs(want, "org_1", 300, nil)
	wantJobs(want, "org_2", 200, nil)
	checkJobs(t, queuedJobs(t, js, names), want)
	checkUnknownDeadLetters(t, js, "gone", 5)
}

// An upgrade stopped midway (its process lost its connection while moving
// jobs: some moved and removed, some moved and still in the old stream,
// some fetched and not yet acknowledged) is finished by the next Provision
// with nothing lost and nothing moved twice.
func TestProvisionUpgradeResumes(t *testing.T) {
	srv, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	buildLegacyLayout(t, js, "org_1", "org_2")
	publishLegacy(t, js, "org_1", 300)
	publishLegacy(t, js, "org_2", 200)
	publishLegacy(t, js, "gone", 5)
	ts := tenantList(4, 4)

	// The first upgrader loses its connection once 50 of org_1's jobs are
	// in their shard.
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	seen := 0
	watch, err := nc.Subscribe(names.TenantJobsFilter("org_1"), func(*nats.Msg) {
		if seen++; seen == 50 {
			once.Do(func() { go nc.Close() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Unsubscribe() }()
	err = dispatcher.Provision(t.Context(), pjs, names, dispatcher.StreamConfig{}, ts)
	if err == nil {
		t.Fatal("the interrupted upgrade succeeded: the test did not interrupt it")
	}
	t.Logf("interrupted upgrade: %v", err)
	legacy, err := js.Stream(t.Context(), legacyStream)
	if err != nil {
		t.Fatalf("the old stream after an interrupted upgrade: %v", err)
	}
	if got := legacy.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"orgdispatch.upgrading.jobs"}) {
		t.Errorf("the old stream listens on %v after an interrupted upgrade, want only orgdispatch.upgrading.jobs", got)
	}
	left := legacy.CachedInfo().State.Msgs
	moved := len(queuedJobs(t, js, names))
	if left == 0 || moved < 50 {
		t.Fatalf("interrupted with %d jobs left in the old stream and %d moved: want it stopped midway", left, moved)
	}
	t.Logf("interrupted with %d jobs left in the old stream, %d in the shards", left, moved)

	// Jobs fetched by the first upgrader and not acknowledged come back
	// after the move's ack wait (30 s): the second waits for them.
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	if _, err := js.Stream(t.Context(), legacyStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the single-stream layout's stream: %v, want it deleted", err)
	}
	want := map[string]int{}
	wantJobs(want, "org_1", 300, nil)
	wantJobs(want, "org_2", 200, nil)
	checkJobs(t, queuedJobs(t, js, names), want)
	checkUnknownDeadLetters(t, js, "gone", 5)
	for _, tn := range ts {
		if info := consumerInfo(t, js, names, tn.ID); int(info.NumPending) != map[string]int{"org_1": 300, "org_2": 200}[tn.ID] {
			t.Errorf("%s's consumer: %d pending", tn.ID, info.NumPending)
		}
	}
}

// A tenant with more jobs of one operation in the old stream than its
// max_backlog is upgraded all the same: every job moves (a shard's
// per-subject limit would refuse those over it, and the upgrade, retried by
// ProvisionWhenReady before any worker starts, would never end), and the
// Publisher refuses the tenant's new jobs until its backlog is under the
// limit.
func TestProvisionUpgradeBacklogOverLimit(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	buildLegacyLayout(t, js, "org_1", "org_2")
	publishLegacy(t, js, "org_1", 30)
	publishLegacy(t, js, "org_2", 5)
	ts := []tenants.Tenant{{ID: "org_1", Concurrency: 4, MaxBacklog: 10}, {ID: "org_2", Concurrency: 4, MaxBacklog: 10}}

	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	want := map[string]int{}
	wantJobs(want, "org_1", 30, nil)
	wantJobs(want, "org_2", 5, nil)
	checkJobs(t, queuedJobs(t, js, names), want)
	if _, err := js.Stream(t.Context(), legacyStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the single-stream layout's stream: %v, want it deleted", err)
	}

	pub := dispatcher.NewPublisher(js, names)
	var full *dispatcher.BacklogFullError
	if _, err := pub.Publish(t.Context(), startJob("org_1", "new")); !errors.As(err, &full) || full.Limit != 10 || full.Backlog != 30 {
		t.Errorf("Publish for org_1 with 30 jobs moved in: %v, want *BacklogFullError (30 queued, limit 10)", err)
	}
	if _, err := pub.Publish(t.Context(), startJob("org_2", "new")); err != nil {
		t.Errorf("Publish for org_2: %v", err)
	}
	want["org_2/new"] = 1
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	checkJobs(t, queuedJobs(t, js, names), want)
}
