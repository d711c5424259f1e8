package dispatcher_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// TestPublishWithinDeadline: with no lane running, the estimate is at the
// tenant's configured rate (60/min), shared by weight between its classes,
// after the rest of a pause.
func TestPublishWithinDeadline(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "org_1", Concurrency: 1, RatePerMinute: 60}})
	now := time.Now()
	pub := dispatcher.NewPublisher(js, names, dispatcher.WithPublisherClock(func() time.Time { return now }))
	within := func(id string, p dispatcher.Priority, d time.Duration) dispatcher.Job {
		j := startJob("org_1", id)
		j.Priority = string(p)
		deadline := now.Add(d)
		j.Deadline = &deadline
		return j
	}
	queued := func() uint64 {
		t.Helper()
		n, err := dispatcher.QueuedJobs(t.Context(), js, names)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 9 {
		j := startJob("org_1", "bulk-"+string(rune('a'+i)))
		j.Priority = string(dispatcher.PriorityBulk)
		if _, err := pub.Publish(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}

	// The 10th bulk job at 1/s: done in 10 s.
	_, err := pub.PublishWithinDeadline(t.Context(), within("late", dispatcher.PriorityBulk, 5*time.Second))
	var late *dispatcher.DeadlineUnreachableError
	if !errors.As(err, &late) {
		t.Fatalf("a bulk job due in 5 s behind 9 others at 1/s: %v, want a DeadlineUnreachableError", err)
	}
	if late.Tenant != "org_1" || late.JobID != "late" || late.Priority != dispatcher.PriorityBulk || late.Ahead != 9 ||
		late.Estimate != 10*time.Second || late.RatePerSec != 1 || late.Unbounded || !late.Deadline.Equal(now.Add(5*time.Second)) {
		t.Errorf("refusal %+v, want org_1's bulk job late, 9 ahead, estimate 10s at 1/s", *late)
	}
	if msg := err.Error(); !strings.Contains(msg, "estimated done in 10s") || !strings.Contains(msg, "9 bulk jobs ahead") || !strings.Contains(msg, "5s after it") {
		t.Errorf("message %q does not state the estimate, the jobs ahead and by how much", msg)
	}
	if n := queued(); n != 9 {
		t.Errorf("%d jobs queued after the refusal, want 9", n)
	}

	// With time enough it is queued; an urgent job passes the bulk ones
	// (7 of every 8 requests): done in 8/7 s.
	if _, err := pub.PublishWithinDeadline(t.Context(), within("in-time", dispatcher.PriorityBulk, 11*time.Second)); err != nil {
		t.Fatalf("a bulk job due in 11 s: %v", err)
	}
	if _, err := pub.PublishWithinDeadline(t.Context(), within("urgent", dispatcher.PriorityUrgent, 2*time.Second)); err != nil {
		t.Fatalf("an urgent job due in 2 s: %v", err)
	}
	if d, err := pub.DrainEstimate(t.Context(), "org_1"); err != nil || d.Class(dispatcher.PriorityUrgent).Backlog != 1 || d.Class(dispatcher.PriorityBulk).Backlog != 10 {
		t.Errorf("DrainEstimate = %+v, %v; want 1 urgent and 10 bulk jobs", d, err)
	}

	// A pause in force comes first.
	if err := dispatcher.Pause(t.Context(), js, names, "org_1", now.Add(time.Minute), "test", "test"); err != nil {
		t.Fatal(err)
	}
	_, err = pub.PublishWithinDeadline(t.Context(), within("paused", dispatcher.PriorityUrgent, 30*time.Second))
	var paused *dispatcher.DeadlineUnreachableError
	if !errors.As(err, &paused) || paused.Pause != time.Minute || paused.Estimate <= time.Minute || !strings.Contains(err.Error(), "paused 1m0s more") {
		t.Fatalf("an urgent job due in 30 s during a minute's pause: %v, want refused with the pause in the estimate", err)
	}

	// Without a deadline there is nothing to admit on.
	var invalid *dispatcher.InvalidJobError
	if _, err := pub.PublishWithinDeadline(t.Context(), startJob("org_1", "no-deadline")); !errors.As(err, &invalid) {
		t.Errorf("a job without deadline: %v, want an InvalidJobError", err)
	}
	if _, err := pub.PublishWithinDeadline(t.Context(), within("after-the-pause", dispatcher.PriorityNormal, time.Hour)); err != nil {
		t.Errorf("a job due in an hour during a minute's pause: %v", err)
	}
	var unknown *dispatcher.UnknownTenantError
	j := within("y", dispatcher.PriorityNormal, time.Hour)
	j.Tenant = "org_nope"
	if _, err := pub.PublishWithinDeadline(t.Context(), j); !errors.As(err, &unknown) {
		t.Errorf("a tenant not configured: %v, want an UnknownTenantError", err)
	}
}
