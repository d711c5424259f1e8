package dispatcher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func TestDefaultPriority(t *testing.T) {
	for _, tc := range []struct {
		op, params string
		want       dispatcher.Priority
	}{
		{"campaign.stop", `{"campaign_id":"c"}`, dispatcher.PriorityUrgent},
		{"campaign.set_status", `{"campaign_id":"c","status":"off"}`, dispatcher.PriorityUrgent},
		{"campaign.set_status", `{"campaign_id":"c","status":"on"}`, dispatcher.PriorityNormal},
		{"campaign.start", `{"campaign_id":"c"}`, dispatcher.PriorityNormal},
		{"api.request", `{"method":"GET","path":"/api/v2/outbound/campaigns"}`, dispatcher.PriorityNormal},
		{"contacts.add", `{}`, dispatcher.PriorityBulk},
		{"contacts.remove", `{}`, dispatcher.PriorityBulk},
	} {
		if got := dispatcher.DefaultPriority(tc.op, json.RawMessage(tc.params)); got != tc.want {
			t.Errorf("DefaultPriority(%s, %s) = %s, want %s", tc.op, tc.params, got, tc.want)
		}
	}
	j := dispatcher.Job{ID: "j", Op: "contacts.add", Priority: "urgent"}
	if got := j.EffectivePriority(); got != dispatcher.PriorityUrgent {
		t.Errorf("an asked-for class: %s, want urgent", got)
	}
	bad := dispatcher.Job{ID: "j", Tenant: "t", Op: "campaign.get", Params: json.RawMessage(`{"campaign_id":"c"}`), Priority: "asap"}
	var ije *dispatcher.InvalidJobError
	if err := bad.Validate("t"); !errors.As(err, &ije) {
		t.Errorf("priority asap: %v, want an *InvalidJobError", err)
	}
}

func TestJobSubjects(t *testing.T) {
	n := dispatcher.MustNames("")
	for _, tc := range []struct {
		subject  string
		p        dispatcher.Priority
		explicit bool
		op       string
		routable bool
	}{
		{"orgdispatch.jobs.t.campaign.stop", dispatcher.PriorityNormal, false, "campaign.stop", true},
		{"orgdispatch.jobs.t.contacts.add", dispatcher.PriorityNormal, false, "contacts.add", true},
		{"orgdispatch.jobs.t.urgent.campaign.stop", dispatcher.PriorityUrgent, true, "campaign.stop", true},
		{"orgdispatch.jobs.t.bulk.contacts.add", dispatcher.PriorityBulk, true, "contacts.add", true},
		{"orgdispatch.jobs.t.campaign.get", dispatcher.PriorityNormal, false, "campaign.get", true},
		{"orgdispatch.jobs.t.bulk.campaign.get", dispatcher.PriorityBulk, true, "campaign.get", true},
		{"orgdispatch.jobs.t.urgent.campaign.set_status", dispatcher.PriorityUrgent, true, "campaign.set_status", true},
		{"orgdispatch.jobs.t.campaign.explode", dispatcher.PriorityNormal, false, "campaign.explode", true},
		{"orgdispatch.jobs.t.noop", dispatcher.PriorityNormal, false, "noop", false},
		{"orgdispatch.jobs.t.campaign.get.now", dispatcher.PriorityNormal, false, "campaign.get.now", false},
		{"orgdispatch.jobs.t.asap.campaign.get", dispatcher.PriorityNormal, false, "asap.campaign.get", false},
	} {
		_, p, explicit, op, err := n.ParseJobSubjectPriority(tc.subject)
		if err != nil || p != tc.p || explicit != tc.explicit || op != tc.op {
			t.Errorf("ParseJobSubjectPriority(%s) = %s %v %s %v, want %s %v %s", tc.subject, p, explicit, op, err, tc.p, tc.explicit, tc.op)
		}
		if _, op2, _ := n.ParseJobSubject(tc.subject); op2 != tc.op {
			t.Errorf("ParseJobSubject(%s) op %q, want %q", tc.subject, op2, tc.op)
		}
		if got := n.Routable(tc.subject); got != tc.routable {
			t.Errorf("Routable(%s) = %v, want %v", tc.subject, got, tc.routable)
		}
	}
	if got := n.JobSubjectOf("t", dispatcher.PriorityNormal, "contacts.add"); got != "orgdispatch.jobs.t.contacts.add" {
		t.Errorf("a normal job: %s, want the plain subject", got)
	}
	if got := n.JobSubjectOf("t", dispatcher.PriorityBulk, "contacts.add"); got != "orgdispatch.jobs.t.bulk.contacts.add" {
		t.Errorf("a bulk job: %s, want the bulk subject", got)
	}
	if got := n.JobSubjectOf("t", dispatcher.PriorityUrgent, "campaign.set_status"); got != "orgdispatch.jobs.t.urgent.campaign.set_status" {
		t.Errorf("set_status off: %s, want the urgent subject", got)
	}
}

// A deployment of the version before classes: one consumer per tenant
// taking all its jobs (orgdispatch.jobs.<id>.>), paused, with jobs queued.
// Provision narrows it to the normal class, which keeps the jobs queued on
// plain subjects (in their order), and creates the bulk consumer, paused
// alike, for the jobs a newer Publisher queued on the bulk subject.
func TestProvisionUpgradesToClassConsumers(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	tn := tenants.Tenant{ID: "org_1", Concurrency: 2}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, dispatcher.JobsStreamConfig(names, dispatcher.StreamConfig{}, dispatcher.ShardOf(tn.ID), []string{names.TenantJobsFilter(tn.ID)}, 100_000)); err != nil {
		t.Fatal(err)
	}
	old := dispatcher.ConsumerConfig(names, tn)
	old.FilterSubjects, old.FilterSubject = nil, names.TenantJobsFilter(tn.ID)
	old.Description = "orgdispatch jobs of tenant org_1"
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	old.PauseUntil = &until
	if _, err := js.CreateConsumer(ctx, names.JobsStream(tn.ID), old); err != nil {
		t.Fatal(err)
	}
	for _, provisionBucket := range []string{names.PausesBucket()} {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: provisionBucket}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dispatcher.Pause(ctx, js, names, tn.ID, until, "maintenance", "ops"); err != nil {
		t.Fatal(err)
	}
	queue := map[string]int{
		names.JobSubject(tn.ID, "contacts.add"): 5, names.JobSubject(tn.ID, "campaign.start"): 3, names.JobSubject(tn.ID, "campaign.stop"): 2,
		names.PriorityJobSubject(tn.ID, dispatcher.PriorityBulk, "contacts.add"): 4,
	}
	for subject, n := range queue {
		for i := range n {
			if _, err := js.Publish(ctx, subject, []byte(`{}`), jetstream.WithMsgID(fmt.Sprintf("org_1:%s-%d", subject, i))); err != nil {
				t.Fatal(err)
			}
		}
	}

	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tn})

	if _, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, dispatcher.PriorityUrgent)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("urgent consumer with no urgent job: %v, want none", err)
	}
	for p, want := range map[dispatcher.Priority]uint64{dispatcher.PriorityNormal: 10, dispatcher.PriorityBulk: 4} {
		c, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, p))
		if err != nil {
			t.Fatalf("%s consumer after the upgrade: %v", p, err)
		}
		info := c.CachedInfo()
		if info.NumPending != want {
			t.Errorf("%s consumer: %d pending, want %d", p, info.NumPending, want)
		}
		if !slices.Equal(info.Config.FilterSubjects, names.PriorityFilters(tn.ID, p)) || info.Config.FilterSubject != "" {
			t.Errorf("%s consumer filters %q %v", p, info.Config.FilterSubject, info.Config.FilterSubjects)
		}
		if !info.Paused || info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(until) {
			t.Errorf("%s consumer: paused %v until %v, want until %v", p, info.Paused, info.Config.PauseUntil, until)
		}
	}
	if err := dispatcher.Resume(ctx, js, names, tn.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []dispatcher.Priority{dispatcher.PriorityNormal, dispatcher.PriorityBulk} {
		c, _ := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, p))
		if info, err := c.Info(ctx); err != nil || info.Paused {
			t.Errorf("%s consumer after Resume: paused %v (%v)", p, info != nil && info.Paused, err)
		}
	}
}

// A tenant's urgent and bulk consumers exist once their class has jobs:
// the Publisher creates one before its class's first job, paused like the
// tenant's normal consumer.
func TestClassConsumersCreatedWhenNeeded(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ctx := t.Context()
	tn := tenants.Tenant{ID: "org_1", Concurrency: 2}
	provision(t, js, names, dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}, []tenants.Tenant{tn})
	for _, p := range []dispatcher.Priority{dispatcher.PriorityUrgent, dispatcher.PriorityBulk} {
		if _, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, p)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("%s consumer after provisioning: %v, want none yet", p, err)
		}
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := dispatcher.Pause(ctx, js, names, tn.ID, until, "maintenance", "ops"); err != nil {
		t.Fatal(err)
	}
	pub := dispatcher.NewPublisher(js, names)
	job := dispatcher.Job{ID: "add-1", Tenant: tn.ID, Op: "contacts.add", Params: json.RawMessage(`{"contact_list_id":"l1","contacts":[{"data":{"phone":"+15551234"}}]}`)}
	if _, err := pub.Publish(ctx, job); err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, dispatcher.PriorityBulk))
	if err != nil {
		t.Fatalf("bulk consumer after a bulk job: %v", err)
	}
	info := c.CachedInfo()
	if info.NumPending != 1 || !info.Config.MemoryStorage || !info.Paused || !info.Config.PauseUntil.Equal(until) ||
		!slices.Equal(info.Config.FilterSubjects, names.PriorityFilters(tn.ID, dispatcher.PriorityBulk)) {
		t.Errorf("bulk consumer: pending %d, memory %v, paused %v until %v, filters %v", info.NumPending, info.Config.MemoryStorage, info.Paused, info.Config.PauseUntil, info.Config.FilterSubjects)
	}
	if _, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, dispatcher.PriorityUrgent)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("urgent consumer without an urgent job: %v, want none", err)
	}
	// Provisioning again keeps it (and creates no other).
	provision(t, js, names, dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}, []tenants.Tenant{tn})
	if _, err := js.Consumer(ctx, names.JobsStream(tn.ID), names.PriorityConsumer(tn.ID, dispatcher.PriorityBulk)); err != nil {
		t.Errorf("bulk consumer after provisioning again: %v", err)
	}
}
