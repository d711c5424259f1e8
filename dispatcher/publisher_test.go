package dispatcher_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

type pubEnv struct {
	js    jetstream.JetStream
	names dispatcher.Names
	pub   *dispatcher.Publisher
}

func newPubEnv(t *testing.T, cfg dispatcher.StreamConfig, opts ...dispatcher.PublisherOption) pubEnv {
	t.Helper()
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, cfg, tenantList(4, 4))
	return pubEnv{js: js, names: names, pub: dispatcher.NewPublisher(js, names, opts...)}
}

func startJob(tenant, id string) dispatcher.Job {
	return dispatcher.Job{ID: id, Tenant: tenant, Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"camp-1"}`)}
}

func (e pubEnv) msgs(t *testing.T) uint64 {
	t.Helper()
	n, err := dispatcher.QueuedJobs(t.Context(), e.js, e.names)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e pubEnv) status(t *testing.T, tenant, id string) (dispatcher.JobStatus, bool) {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), dispatcher.StatusKey(tenant, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return dispatcher.JobStatus{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var st dispatcher.JobStatus
	if err := json.Unmarshal(entry.Value(), &st); err != nil {
		t.Fatal(err)
	}
	return st, true
}

func TestPublish(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	e := newPubEnv(t, dispatcher.StreamConfig{}, dispatcher.WithPublisherClock(func() time.Time { return now }))
	deadline := now.Add(time.Hour)
	job := startJob("org_1", "c0a8-42-7")
	job.Deadline = &deadline

	res, err := e.pub.Publish(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if res != (dispatcher.PublishResult{ID: "c0a8-42-7", Tenant: "org_1", Seq: 1, Priority: dispatcher.PriorityNormal}) {
		t.Fatalf("result %+v", res)
	}
	s, err := e.js.Stream(t.Context(), e.names.JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "orgdispatch.jobs.org_1.campaign.start" {
		t.Errorf("subject %s", m.Subject)
	}
	if got := m.Header.Get(dispatcher.HeaderJobID); got != "c0a8-42-7" {
		t.Errorf("%s header %q", dispatcher.HeaderJobID, got)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != "org_1:c0a8-42-7" {
		t.Errorf("Nats-Msg-Id %q", got)
	}
	tenant, _, err := e.names.ParseJobSubject(m.Subject)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dispatcher.ValidateTenantJob(tenant, m.Data)
	if err != nil {
		t.Fatalf("the stored job does not validate: %v", err)
	}
	if got.ID != job.ID || got.Op != job.Op || !bytes.Equal(got.Params, job.Params) || !got.Deadline.Equal(deadline) {
		t.Errorf("stored job %+v", got)
	}

	st, ok := e.status(t, "org_1", "c0a8-42-7")
	want := dispatcher.JobStatus{ID: "c0a8-42-7", Tenant: "org_1", Op: "campaign.start", State: dispatcher.StateQueued, Updated: now}
	if !ok || fmt.Sprintf("%+v", st) != fmt.Sprintf("%+v", want) {
		t.Errorf("status record %+v (found %v), want %+v", st, ok, want)
	}
}

func TestPublishDuplicate(t *testing.T) {
	e := newPubEnv(t, dispatcher.StreamConfig{})
	first, err := e.pub.Publish(t.Context(), startJob("org_1", "same"))
	if err != nil {
		t.Fatal(err)
	}
	// A worker picks the job up and records it.
	kv, err := e.js.KeyValue(t.Context(), e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	running, _ := json.Marshal(dispatcher.JobStatus{ID: "same", Tenant: "org_1", Op: "campaign.start", State: dispatcher.StateRunning, Attempts: 1})
	if _, err := kv.Put(t.Context(), dispatcher.StatusKey("org_1", "same"), running); err != nil {
		t.Fatal(err)
	}

	again, err := e.pub.Publish(t.Context(), startJob("org_1", "same"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Seq != first.Seq || first.Duplicate {
		t.Fatalf("first %+v, again %+v: want the second to be a duplicate of the first", first, again)
	}
	if n := e.msgs(t); n != 1 {
		t.Fatalf("%d messages in the stream, want 1", n)
	}
	if st, _ := e.status(t, "org_1", "same"); st.State != dispatcher.StateRunning {
		t.Errorf("a duplicate publish overwrote the worker's record: %+v", st)
	}
}

func TestPublishSameIDTwoTenants(t *testing.T) {
	e := newPubEnv(t, dispatcher.StreamConfig{})
	a, err := e.pub.Publish(t.Context(), startJob("org_1", "shared-key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.pub.Publish(t.Context(), startJob("org_2", "shared-key"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Duplicate || b.Duplicate {
		t.Fatalf("%+v %+v: tenants deduplicated each other", a, b)
	}
	if n := e.msgs(t); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	for _, tenant := range []string{"org_1", "org_2"} {
		if st, ok := e.status(t, tenant, "shared-key"); !ok || st.State != dispatcher.StateQueued {
			t.Errorf("%s: status %+v", tenant, st)
		}
	}
}

func TestPublishReplacesStaleStatus(t *testing.T) {
	// A record left from an earlier job with the same id (outside the
	// duplicate window) is replaced by the new job's.
	e := newPubEnv(t, dispatcher.StreamConfig{})
	kv, err := e.js.KeyValue(t.Context(), e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(dispatcher.JobStatus{ID: "k", Tenant: "org_1", Op: "campaign.stop", State: dispatcher.StateSucceeded})
	if _, err := kv.Put(t.Context(), dispatcher.StatusKey("org_1", "k"), old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.Publish(t.Context(), startJob("org_1", "k")); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.status(t, "org_1", "k"); st.State != dispatcher.StateQueued || st.Op != "campaign.start" {
		t.Errorf("status %+v, want the new job queued", st)
	}
}

func TestPublishInvalid(t *testing.T) {
	e := newPubEnv(t, dispatcher.StreamConfig{})
	big := make([]byte, 0, dispatcher.MaxJobBytes)
	big = append(big, `{"method":"POST","path":"/api/v2/outbound/x","body":"`...)
	big = append(big, bytes.Repeat([]byte("a"), dispatcher.MaxJobBytes)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		name string
		job  dispatcher.Job
		want string
	}{
		{"no tenant", dispatcher.Job{ID: "j", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"c"}`)}, "tenant is required"},
		{"bad tenant", startJob("org.1", "j"), `tenant "org.1"`},
		{"bad id", startJob("org_1", "a b"), `id "a b"`},
		{"unknown op", dispatcher.Job{ID: "j", Tenant: "org_1", Op: "campaign.delete"}, "unknown op"},
		{"bad params", dispatcher.Job{ID: "j", Tenant: "org_1", Op: "campaign.start", Params: json.RawMessage(`{"campaign":"c"}`)}, "campaign.start params"},
		{"too large", dispatcher.Job{ID: "j", Tenant: "org_1", Op: "api.request", Params: big}, "invalid job"},
		{"non-string contact data", dispatcher.Job{ID: "j", Tenant: "org_1", Op: "contacts.add",
			Params: json.RawMessage(`{"contact_list_id":"l1","contacts":[{"data":{"phone":"+1555"}},{"data":{"phone":"+1556","age":42}}]}`)},
			`contacts[1].data["age"]: want a string, got a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.pub.Publish(t.Context(), tc.job)
			var ije *dispatcher.InvalidJobError
			if !errors.As(err, &ije) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Publish = %v, want *InvalidJobError containing %q", err, tc.want)
			}
		})
	}
	if n := e.msgs(t); n != 0 {
		t.Fatalf("invalid jobs reached the stream: %d messages", n)
	}
}

func TestPublishFull(t *testing.T) {
	for _, cfg := range []dispatcher.StreamConfig{{MaxMsgs: 2}, {MaxBytes: 600}} {
		t.Run(fmt.Sprintf("msgs %d bytes %d", cfg.MaxMsgs, cfg.MaxBytes), func(t *testing.T) {
			e := newPubEnv(t, cfg)
			var full *dispatcher.FullError
			var queued int
			for i := range 10 {
				_, err := e.pub.Publish(t.Context(), startJob("org_1", fmt.Sprintf("j%d", i)))
				if errors.As(err, &full) {
					break
				}
				if err != nil {
					t.Fatalf("job %d: %v", i, err)
				}
				queued++
			}
			if full == nil {
				t.Fatal("the stream never refused a job")
			}
			if queued < 1 || full.Stream != e.names.JobsStream("org_1") || !strings.HasPrefix(full.Reason, "maximum ") {
				t.Fatalf("queued %d, then %v", queued, full)
			}
			// Queued jobs are kept and still delivered.
			if n := e.msgs(t); n != uint64(queued) {
				t.Fatalf("%d messages after refusal, want %d", n, queued)
			}
			deliver(t, e.js, e.names, "org_1", queued, queued)
			// Once drained, the stream accepts again.
			if _, err := e.pub.Publish(t.Context(), startJob("org_1", "after")); err != nil {
				t.Fatalf("publish after draining: %v", err)
			}
		})
	}
}

func TestPublishUnavailable(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	pub := dispatcher.NewPublisher(js, dispatcher.MustNames("")) // nothing provisioned
	_, err := pub.Publish(t.Context(), startJob("org_1", "j"))
	var unknown *dispatcher.UnknownTenantError
	if !errors.As(err, &unknown) || unknown.Tenant != "org_1" {
		t.Fatalf("Publish without a stream = %v, want *UnknownTenantError", err)
	}
	if !strings.Contains(err.Error(), "tenant org_1 is not configured") {
		t.Errorf("error does not name the tenant: %v", err)
	}
}

func TestPublishWithoutStatusBucket(t *testing.T) {
	var logs bytes.Buffer
	e := newPubEnv(t, dispatcher.StreamConfig{}, dispatcher.WithPublisherLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err := e.js.DeleteKeyValue(t.Context(), e.names.StatusBucket()); err != nil {
		t.Fatal(err)
	}
	res, err := e.pub.Publish(t.Context(), startJob("org_1", "j"))
	if err != nil || res.Seq != 1 {
		t.Fatalf("Publish = %+v, %v: a missing status bucket must not fail it", res, err)
	}
	if !strings.Contains(logs.String(), "status bucket unavailable") {
		t.Errorf("not logged at debug:\n%s", logs.String())
	}
	// The bucket comes back: the Publisher finds it.
	provision(t, e.js, e.names, dispatcher.StreamConfig{}, tenantList(4, 4))
	if _, err := e.pub.Publish(t.Context(), startJob("org_1", "j2")); err != nil {
		t.Fatal(err)
	}
	if st, ok := e.status(t, "org_1", "j2"); !ok || st.State != dispatcher.StateQueued {
		t.Errorf("status after the bucket came back: %+v %v", st, ok)
	}
}

func BenchmarkPublish(b *testing.B) {
	_, _, js := natstest.RunServer(b)
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(b.Context(), js, names, dispatcher.StreamConfig{}, tenantList(4)); err != nil {
		b.Fatal(err)
	}
	pub := dispatcher.NewPublisher(js, names)
	i := 0
	for b.Loop() {
		i++
		if _, err := pub.Publish(b.Context(), startJob("org_1", fmt.Sprintf("j%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}
