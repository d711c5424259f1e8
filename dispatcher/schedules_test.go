package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func schedStartJob(id string) dispatcher.Job {
	return dispatcher.Job{ID: id, Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"cmp-1"}`)}
}

func schedGetJob(id string) dispatcher.Job {
	return dispatcher.Job{ID: id, Op: "campaign.get", Params: json.RawMessage(`{"campaign_id":"cmp-1"}`)}
}

func TestScheduleAddRejects(t *testing.T) {
	e := newAdminEnv(t, "org_1")
	now := utc("2026-12-02T10:00:00Z")
	s := dispatcher.NewSchedules(e.js, e.names, dispatcher.WithScheduleClock(func() time.Time { return now }))
	past, soon := now.Add(-time.Second), now.Add(time.Hour)
	deadline := now.Add(time.Minute)
	withDeadline := schedStartJob("j")
	withDeadline.Deadline = &deadline
	other := schedStartJob("j")
	other.Tenant = "org_2"
	for _, tc := range []struct {
		name, tenant string
		spec         dispatcher.ScheduleSpec
		want         string
	}{
		{"neither", "org_1", dispatcher.ScheduleSpec{Name: "s", Job: schedStartJob("j")}, "want run_at or cron"},
		{"both", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &soon, Cron: "@daily", Job: schedStartJob("j")}, "not both"},
		{"run_at in the past", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &past, Job: schedStartJob("j")}, "not in the future"},
		{"run_at now", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &now, Job: schedStartJob("j")}, "not in the future"},
		{"run_at with a zone", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &soon, TimeZone: "UTC", Job: schedStartJob("j")}, "time_zone is for cron"},
		{"bad cron", "org_1", dispatcher.ScheduleSpec{Name: "s", Cron: "0 9 * * 1-5", Job: schedStartJob("j")}, "want 6 fields"},
		{"unknown zone", "org_1", dispatcher.ScheduleSpec{Name: "s", Cron: "0 0 9 * * 1-5", TimeZone: "America/Chicag", Job: schedStartJob("j")}, "unknown time zone"},
		{"never fires", "org_1", dispatcher.ScheduleSpec{Name: "s", Cron: "0 0 0 30 2 *", Job: schedStartJob("j")}, "never fires"},
		{"bad name", "org_1", dispatcher.ScheduleSpec{Name: "a.b", RunAt: &soon, Job: schedStartJob("j")}, "name"},
		{"bad job", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &soon, Job: dispatcher.Job{ID: "j", Op: "campaign.fly"}}, "unknown op"},
		{"job of another tenant", "org_1", dispatcher.ScheduleSpec{Name: "s", RunAt: &soon, Job: other}, "names tenant"},
		{"cron with a deadline", "org_1", dispatcher.ScheduleSpec{Name: "s", Cron: "@daily", Job: withDeadline}, "deadline"},
		{"cron id too long", "org_1", dispatcher.ScheduleSpec{Name: "s", Cron: "@daily", Job: schedStartJob(strings.Repeat("x", 112))}, "at most 111"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Add(t.Context(), tc.tenant, tc.spec)
			var inv *dispatcher.InvalidScheduleError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add: %v, want an *InvalidScheduleError with %q", err, tc.want)
			}
		})
	}
	// A line break in the expression cannot smuggle a header in: the
	// fields are joined by single spaces.
	inj, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "inj", Cron: "0 0 9 * *\r\nNats-Schedule-Target: orgdispatch.fired.00.org_2.normal.campaign.start\r\n1-5", Job: schedStartJob("j")})
	if err == nil {
		t.Errorf("Add with a header in the cron expression: %+v, want an error", inj)
	}
	got, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "spaced", Cron: " 0  0 9\t* *\r\n1-5 ", Job: schedStartJob("j")})
	if err != nil || got.Cron != "0 0 9 * * 1-5" {
		t.Errorf("Add with a spaced-out expression: %+v, %v; want cron 0 0 9 * * 1-5", got, err)
	}
	_, err = s.Add(t.Context(), "org_9", dispatcher.ScheduleSpec{Name: "s", RunAt: &soon, Job: schedStartJob("j")})
	var unknown *dispatcher.UnknownTenantError
	if !errors.As(err, &unknown) {
		t.Errorf("Add for an unknown tenant: %v, want *UnknownTenantError", err)
	}
}

func TestScheduleAddListGetCancel(t *testing.T) {
	e := newAdminEnv(t, "org_1", "org_2")
	now := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC) // a Friday, before DST in Chicago
	clock := func() time.Time { return now }
	s := dispatcher.NewSchedules(e.js, e.names, dispatcher.WithScheduleClock(clock))
	// The server checks @at against its own clock: keep it in the future.
	at := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	now = at.Add(-time.Hour) // run_at is checked against the injected clock
	if _, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "later", RunAt: &at, Job: schedGetJob("later")}); err != nil {
		t.Fatal(err)
	}
	now = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	got, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "weekday-start", Cron: "0 0 9 * * 1-5", TimeZone: "America/Chicago", Job: schedStartJob("start")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-03-06T15:00:00Z", "2026-03-09T14:00:00Z", "2026-03-10T14:00:00Z", "2026-03-11T14:00:00Z", "2026-03-12T14:00:00Z"}
	if fmt.Sprint(utcs(got.Next)) != fmt.Sprint(want) {
		t.Errorf("Add: next %v, want %v", utcs(got.Next), want)
	}
	_, err = s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "weekday-start", Cron: "@daily", Job: schedStartJob("start")})
	var exists *dispatcher.ScheduleExistsError
	if !errors.As(err, &exists) {
		t.Errorf("second Add of a name: %v, want *ScheduleExistsError", err)
	}

	list, err := s.List(t.Context(), "org_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "later" || list[1].Name != "weekday-start" {
		t.Fatalf("List: %+v, want later and weekday-start", list)
	}
	if l := list[0]; l.RunAt == nil || !l.RunAt.Equal(at) || l.Job.ID != "later" || l.Job.Tenant != "org_1" || l.Cron != "" {
		t.Errorf("later: %+v", l)
	}
	if w := list[1]; w.Cron != "0 0 9 * * 1-5" || w.TimeZone != "America/Chicago" || fmt.Sprint(utcs(w.Next)) != fmt.Sprint(want) || w.Job.Op != "campaign.start" {
		t.Errorf("weekday-start: %+v", w)
	}
	if other, err := s.List(t.Context(), "org_2"); err != nil || len(other) != 0 {
		t.Errorf("org_2's schedules: %+v, %v; want none", other, err)
	}
	if _, err := s.Get(t.Context(), "org_2", "weekday-start"); !isNotFound(err) {
		t.Errorf("org_2's weekday-start: %v, want *ScheduleNotFoundError", err)
	}
	var unknown *dispatcher.UnknownTenantError
	if _, err := s.List(t.Context(), "org_9"); !errors.As(err, &unknown) {
		t.Errorf("List of an unknown tenant: %v, want *UnknownTenantError", err)
	}

	// The raw message is what a NATS producer would set.
	st, err := e.js.Stream(t.Context(), e.names.SchedulesStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), "orgdispatch.schedules.org_1.weekday-start")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Nats-Schedule":                  "0 0 9 * * 1-5",
		"Nats-Schedule-Time-Zone":        "America/Chicago",
		"Nats-Schedule-Target":           e.names.FiredSubject("org_1", dispatcher.PriorityNormal, "campaign.start"),
		"Nats-Schedule-TTL":              "24h0m0s",
		"Orgdispatch-Schedule-Cron":      "0 0 9 * * 1-5",
		"Orgdispatch-Schedule-Time-Zone": "America/Chicago",
	} {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}

	if err := s.Cancel(t.Context(), "org_1", "weekday-start"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "org_1", "weekday-start"); !isNotFound(err) {
		t.Errorf("after Cancel: %v, want *ScheduleNotFoundError", err)
	}
	if err := s.Cancel(t.Context(), "org_1", "weekday-start"); !isNotFound(err) {
		t.Errorf("second Cancel: %v, want *ScheduleNotFoundError", err)
	}
	if err := s.Cancel(t.Context(), "org_9", "x"); !errors.As(err, &unknown) {
		t.Errorf("Cancel of an unknown tenant: %v, want *UnknownTenantError", err)
	}
	// The name is free again.
	if _, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "weekday-start", Cron: "@daily", Job: schedStartJob("start")}); err != nil {
		t.Errorf("Add after Cancel: %v", err)
	}
}

func isNotFound(err error) bool {
	var nf *dispatcher.ScheduleNotFoundError
	return errors.As(err, &nf)
}

func utcs(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format(time.RFC3339)
	}
	return out
}

// jobsOf reads what tenant's jobs stream holds for it, by subject.
func jobsOf(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant string) map[string]uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), names.JobsStream(tenant))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(names.TenantJobsFilter(tenant)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// waitJobs polls tenant's jobs until cond holds.
func waitJobs(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant string, timeout time.Duration, cond func(map[string]uint64) bool) map[string]uint64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := jobsOf(t, js, names, tenant)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s; %s's jobs: %v", timeout, tenant, got)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// A cancelled schedule never fires: a run_at and a per-second cron are
// cancelled at once; a sentinel run_at at the same second as the first
// fires (and so would they have), and only it reaches the jobs stream.
func TestScheduleCancelledNeverFires(t *testing.T) {
	e := newAdminEnv(t, "org_1")
	s := dispatcher.NewSchedules(e.js, e.names)
	at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	for _, spec := range []dispatcher.ScheduleSpec{
		{Name: "once", RunAt: &at, Job: schedStartJob("once")},
		{Name: "every-second", Cron: "* * * * * *", Job: schedStartJob("every")},
	} {
		if _, err := s.Add(t.Context(), "org_1", spec); err != nil {
			t.Fatal(err)
		}
		if err := s.Cancel(t.Context(), "org_1", spec.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "sentinel", RunAt: &at, Job: schedGetJob("sentinel")}); err != nil {
		t.Fatal(err)
	}
	got := waitJobs(t, e.js, e.names, "org_1", 10*time.Second, func(m map[string]uint64) bool { return len(m) > 0 })
	if time.Now().Before(at) {
		t.Errorf("the sentinel fired before its time")
	}
	want := map[string]uint64{"orgdispatch.jobs.org_1.normal.campaign.get": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("jobs after the sentinel fired: %v, want %v", got, want)
	}
	st, err := e.js.Stream(t.Context(), e.names.SchedulesStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the sentinel's fired copy: the schedules are gone (the sentinel's
	// with its fire), nothing else fired.
	if want := map[string]uint64{e.names.FiredSubject("org_1", dispatcher.PriorityNormal, "campaign.get"): 1}; fmt.Sprint(info.State.Subjects) != fmt.Sprint(want) {
		t.Errorf("schedules stream: %v, want %v", info.State.Subjects, want)
	}
}

// nats-server fires a cron schedule in its time zone: the pattern names
// the current hour in Asia/Kathmandu (UTC+05:45, so never the UTC hour),
// and fires every second of it. Each fired job lands on the tenant's class
// subject with the scheduler's headers, and each occurrence gets its own
// id.
func TestScheduleCronFiresInItsZone(t *testing.T) {
	e := newAdminEnv(t, "org_1")
	s := dispatcher.NewSchedules(e.js, e.names)
	loc, err := time.LoadLocation("Asia/Kathmandu")
	if err != nil {
		t.Fatal(err)
	}
	local := time.Now().Add(time.Second).In(loc)
	hours := fmt.Sprint(local.Hour())
	if local.Minute() == 59 && local.Second() > 50 {
		hours += "," + fmt.Sprint((local.Hour()+1)%24)
	}
	cron := "* * " + hours + " * * *"
	if _, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "tick", Cron: cron, TimeZone: "Asia/Kathmandu", Job: urgentJob("tick")}); err != nil {
		t.Fatal(err)
	}
	// The tenant's urgent consumer, whose class the job is in.
	c, err := e.js.Consumer(t.Context(), e.names.JobsStream("org_1"), e.names.PriorityConsumer("org_1", dispatcher.PriorityUrgent))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var nexts []time.Time
	deadline := time.Now().Add(15 * time.Second)
	for len(ids) < 3 && time.Now().Before(deadline) {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if m.Subject() != "orgdispatch.jobs.org_1.urgent.campaign.get" {
				t.Errorf("fired on %s, want the urgent class subject", m.Subject())
			}
			if got := m.Headers().Get("Nats-Scheduler"); got != "orgdispatch.schedules.org_1.tick" {
				t.Errorf("Nats-Scheduler %q", got)
			}
			next, err := time.Parse(time.RFC3339Nano, m.Headers().Get("Nats-Schedule-Next"))
			if err != nil {
				t.Fatal(err)
			}
			job, err := dispatcher.DecodeJob(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			occ, err := dispatcher.ScheduledJob(e.names, "org_1", job, m.Headers())
			if err != nil {
				t.Fatal(err)
			}
			if want := dispatcher.OccurrenceID("tick", next.Add(-time.Second)); occ.ID != want {
				t.Errorf("occurrence id %q, want %q (next %s)", occ.ID, want, next)
			}
			ids[occ.ID] = true
			nexts = append(nexts, next)
			_ = m.Ack()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
	if len(ids) < 3 {
		t.Fatalf("%d occurrences in 15 s of a per-second cron in its zone's current hour (%s), want 3", len(ids), cron)
	}
	for _, n := range nexts {
		if n.In(loc).Hour() != local.Hour() && !strings.Contains(hours, ",") {
			t.Errorf("next fire %s is outside Kathmandu hour %d", n.In(loc), local.Hour())
		}
	}
	if err := s.Cancel(t.Context(), "org_1", "tick"); err != nil {
		t.Fatal(err)
	}
}

func urgentJob(id string) dispatcher.Job {
	j := schedGetJob(id)
	j.Priority = "urgent"
	return j
}

// Provision gives existing jobs streams their source, and the schedules
// stream its settings; a second run changes nothing.
func TestProvisionSchedulesStream(t *testing.T) {
	e := newAdminEnv(t, "org_1")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, e.names.SchedulesStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowMsgSchedules || !cfg.AllowRollup || !cfg.AllowMsgTTL || cfg.Discard != jetstream.DiscardOld || cfg.Retention != jetstream.LimitsPolicy {
		t.Errorf("schedules stream config: %+v", cfg)
	}
	// A jobs stream of before schedules: no source. Provision adds it.
	js := e.js
	jobs, err := js.Stream(ctx, e.names.JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	old := jobs.CachedInfo().Config
	old.Sources = nil
	if _, err := js.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := dispatcher.Provision(ctx, js, e.names, dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "org_1", Concurrency: 2}}); err != nil {
		t.Fatal(err)
	}
	jobs, err = js.Stream(ctx, e.names.JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	src := jobs.CachedInfo().Config.Sources
	if len(src) != 1 || src[0].Name != e.names.SchedulesStream() || len(src[0].SubjectTransforms) != 1 ||
		src[0].SubjectTransforms[0].Source != e.names.FiredShardFilter(dispatcher.ShardOf("org_1")) || src[0].SubjectTransforms[0].Destination != "orgdispatch.jobs.>" {
		t.Errorf("jobs stream sources after Provision: %+v", src)
	}
}

// A dead-lettered cron occurrence is replayed under its occurrence's id.
func TestReplayScheduledOccurrence(t *testing.T) {
	e := newAdminEnv(t, "org_1")
	seq := e.deadLetter(t, "org_1", "campaign.start", jobBody("org_1", "start"), "permanent")
	// The worker's dead letter names the occurrence it ran.
	st, err := e.js.Stream(t.Context(), e.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(t.Context(), seq); err != nil {
		t.Fatal(err)
	}
	out := nats.NewMsg(m.Subject)
	out.Header, out.Data = m.Header, m.Data
	out.Header.Set(dispatcher.HeaderJobID, "start.20261207T150000Z")
	ack, err := e.js.PublishMsg(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dispatcher.NewAdmin(e.js, e.names).Replay(t.Context(), ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if res.JobID != "start.20261207T150000Z" {
		t.Errorf("replayed as %q, want the occurrence's id", res.JobID)
	}
	jobs, err := e.js.Stream(t.Context(), e.names.JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jobs.GetMsg(t.Context(), res.JobSeq)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := dispatcher.DecodeJob(got.Data); err != nil || j.ID != "start.20261207T150000Z" {
		t.Errorf("replayed job %+v, %v", j, err)
	}
}
