package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestSchedulesRoundTrip(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = scopedTokens(t) }))
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	a := e.call(t, "POST", "/v1/tenants/org_a/schedules", map[string]any{
		"name": "weekday-start", "cron": "0 0 9 * * 1-5", "time_zone": "America/Chicago", "job": job("org_a", "start"),
	})
	var sched dispatcher.Schedule
	a.decode(t, &sched)
	if a.status != http.StatusCreated || sched.Name != "weekday-start" || len(sched.Next) != 5 {
		t.Fatalf("POST schedule: %d %s", a.status, a.body)
	}
	for _, n := range sched.Next {
		if l := n.In(mustZone(t, "America/Chicago")); l.Hour() != 9 || l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
			t.Errorf("next fire %s is not 09:00 on a weekday in Chicago", l)
		}
	}
	if a := e.call(t, "POST", "/v1/tenants/org_a/schedules", map[string]any{"name": "weekday-start", "cron": "@daily", "job": job("org_a", "start")}); a.status != http.StatusConflict {
		t.Errorf("POST the same name again: %d %s, want 409", a.status, a.body)
	}

	// Through the Go client, with the org_a publish token.
	c, err := api.NewClient(e.url, pubAToken, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	j := dispatcher.Job{ID: "later", Op: "campaign.get", Params: []byte(`{"campaign_id":"c-1"}`)}
	if _, err := c.AddSchedule(t.Context(), "org_a", dispatcher.ScheduleSpec{Name: "later", RunAt: &at, Job: j}); err != nil {
		t.Fatal(err)
	}
	list, err := c.Schedules(t.Context(), "org_a")
	if err != nil || len(list) != 2 || list[0].Name != "later" || !list[0].RunAt.Equal(at) || list[1].Cron != "0 0 9 * * 1-5" {
		t.Fatalf("Schedules: %+v, %v", list, err)
	}
	one, err := c.Schedule(t.Context(), "org_a", "later")
	if err != nil || one.Job.ID != "later" || one.Job.Tenant != "org_a" {
		t.Errorf("Schedule: %+v, %v", one, err)
	}
	if err := c.CancelSchedule(t.Context(), "org_a", "later", "not needed"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Schedule(t.Context(), "org_a", "later"); !api.IsNotFound(err) {
		t.Errorf("after cancel: %v, want 404", err)
	}
	if err := c.CancelSchedule(t.Context(), "org_a", "later"); !api.IsNotFound(err) {
		t.Errorf("cancel again: %v, want 404", err)
	}

	// Scope: org_a's token cannot touch org_b's schedules; the read-only
	// token reads but cannot add or cancel.
	if _, err := c.Schedules(t.Context(), "org_b"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("org_a's token lists org_b's schedules: %v, want 403", err)
	}
	ro := func(method, path string, body any) answer {
		return e.callWith(t, "Bearer "+readOnlyToken, method, path, body)
	}
	if a := ro("GET", "/v1/tenants/org_a/schedules/weekday-start", nil); a.status != http.StatusOK {
		t.Errorf("read-only GET: %d %s", a.status, a.body)
	}
	if a := ro("DELETE", "/v1/tenants/org_a/schedules/weekday-start", nil); a.status != http.StatusForbidden {
		t.Errorf("read-only DELETE: %d %s, want 403", a.status, a.body)
	}
	if a := e.call(t, "DELETE", "/v1/tenants/org_a/schedules/weekday-start", nil); a.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", a.status, a.body)
	}

	// Both are in the audit trail.
	recs, err := e.admin.Audit(t.Context(), "org_a", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "schedule_add") || !strings.Contains(got, "schedule_cancel") {
		t.Errorf("audit actions %s, want schedule_add and schedule_cancel", got)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSchedulesRejectBadInput(t *testing.T) {
	e := newEnv(t)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		want       string
	}{
		{"bad cron", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "cron": "0 9 * * 1-5", "job": job("org_a", "j")}, 400, "want 6 fields"},
		{"cron field out of range", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "cron": "0 0 25 * * *", "job": job("org_a", "j")}, 400, "hour field"},
		{"unknown zone", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "cron": "@daily", "time_zone": "Europe/Atlantis", "job": job("org_a", "j")}, 400, "unknown time zone"},
		{"run_at in the past", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "run_at": past, "job": job("org_a", "j")}, 400, "not in the future"},
		{"run_at not RFC 3339", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "run_at": "tomorrow", "job": job("org_a", "j")}, 400, "malformed JSON"},
		{"both", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "run_at": soon, "cron": "@daily", "job": job("org_a", "j")}, 400, "not both"},
		{"neither", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "job": job("org_a", "j")}, 400, "want run_at or cron"},
		{"bad job", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "run_at": soon, "job": map[string]any{"id": "j", "op": "campaign.start"}}, 400, "params"},
		{"job of another tenant", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "run_at": soon, "job": job("org_b", "j")}, 400, "names tenant"},
		{"bad name", "/v1/tenants/org_a/schedules", map[string]any{"name": "a b", "run_at": soon, "job": job("org_a", "j")}, 400, "name"},
		{"unknown field", "/v1/tenants/org_a/schedules", map[string]any{"name": "s", "runat": soon, "job": job("org_a", "j")}, 400, "unknown field"},
		{"unknown tenant", "/v1/tenants/org_x/schedules", map[string]any{"name": "s", "run_at": soon, "job": job("org_x", "j")}, 404, "tenant not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, "POST", tc.path, tc.body)
			if a.status != tc.status || !strings.Contains(a.errorText(t), tc.want) {
				t.Errorf("%d %s, want %d with %q", a.status, a.body, tc.status, tc.want)
			}
		})
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1/tenants/org_x/schedules", "tenant not found"},
		{"GET", "/v1/tenants/org_a/schedules/nope", "no schedule"},
		{"DELETE", "/v1/tenants/org_a/schedules/nope", "no schedule"},
		{"DELETE", "/v1/tenants/org_x/schedules/nope", "tenant not found"},
	} {
		if a := e.call(t, tc.method, tc.path, nil); a.status != http.StatusNotFound || !strings.Contains(a.errorText(t), tc.want) {
			t.Errorf("%s %s: %d %s, want 404 with %q", tc.method, tc.path, a.status, a.body, tc.want)
		}
	}
	if n := e.jobsInStream(t); n != 0 {
		t.Errorf("%d jobs queued by refused schedules", n)
	}
}
