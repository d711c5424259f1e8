package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestTenants(t *testing.T) {
	e := newEnv(t)
	if a := e.call(t, "POST", "/v1/jobs", []any{job("org_b", "1"), job("org_b", "2")}); a.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	a := e.call(t, "GET", "/v1/tenants", nil)
	var list api.TenantsResponse
	a.decode(t, &list)
	if a.status != http.StatusOK || len(list.Tenants) != 2 || list.Tenants[0].ID != "org_a" || list.Tenants[1].ID != "org_b" {
		t.Fatalf("GET /v1/tenants: %d %s", a.status, a.body)
	}
	if list.DispatchableBacklog != 2 || time.Since(list.Now).Abs() > time.Minute {
		t.Errorf("dispatchable backlog %d, now %v; want 2 and the server's clock", list.DispatchableBacklog, list.Now)
	}
	if b := list.Tenants[1]; b.Backlog != 2 || b.Concurrency != 0 || b.State != dispatcher.StateNoWorkers {
		t.Errorf("org_b = %+v, want backlog 2, no workers (so concurrency 0)", b)
	}

	a = e.call(t, "GET", "/v1/tenants/org_b", nil)
	var one dispatcher.TenantStatus
	a.decode(t, &one)
	if a.status != http.StatusOK || one.ID != "org_b" || one.Backlog != 2 {
		t.Errorf("GET /v1/tenants/org_b: %d %s", a.status, a.body)
	}
	for _, id := range []string{"org_zzz", "bad%20id"} {
		a := e.call(t, "GET", "/v1/tenants/"+id, nil)
		if a.status != http.StatusNotFound {
			t.Errorf("GET /v1/tenants/%s: %d, want 404", id, a.status)
		}
		a.errorText(t)
	}
}

func TestPauseAndResume(t *testing.T) {
	e := newEnv(t)
	a := e.call(t, "POST", "/v1/tenants/org_a/pause", api.PauseRequest{Duration: "90s", Reason: "maintenance"})
	var ts dispatcher.TenantStatus
	a.decode(t, &ts)
	if a.status != http.StatusOK || !ts.Paused || ts.PauseReason != "maintenance" || ts.PausedBy != "api" || ts.State != dispatcher.LanePaused {
		t.Fatalf("pause: %d %s", a.status, a.body)
	}
	if left := time.Until(ts.PausedUntil); left < 80*time.Second || left > 90*time.Second {
		t.Errorf("paused until %v (%v from now), want about 90s", ts.PausedUntil, left)
	}
	a = e.call(t, "GET", "/v1/tenants/org_a", nil)
	ts = dispatcher.TenantStatus{}
	a.decode(t, &ts)
	if !ts.Paused || ts.PauseReason != "maintenance" {
		t.Errorf("GET after pause: %s", a.body)
	}
	// Pause and resume act on the consumer itself.
	c, err := e.js.Consumer(t.Context(), e.names.JobsStream("org_a"), e.names.Consumer("org_a"))
	if err != nil || !c.CachedInfo().Paused {
		t.Errorf("consumer not paused after POST pause (%v)", err)
	}

	// A paused tenant's jobs are not dispatchable.
	if a := e.call(t, "POST", "/v1/jobs", []any{job("org_a", "1"), job("org_b", "2")}); a.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}
	var list api.TenantsResponse
	e.call(t, "GET", "/v1/tenants", nil).decode(t, &list)
	if list.DispatchableBacklog != 1 {
		t.Errorf("dispatchable backlog with org_a paused = %d, want 1 (org_b's job)", list.DispatchableBacklog)
	}

	a = e.call(t, "POST", "/v1/tenants/org_a/resume", nil)
	ts = dispatcher.TenantStatus{}
	a.decode(t, &ts)
	if a.status != http.StatusOK || ts.Paused || ts.PauseReason != "" {
		t.Errorf("resume: %d %s", a.status, a.body)
	}
	c, err = e.js.Consumer(t.Context(), e.names.JobsStream("org_a"), e.names.Consumer("org_a"))
	if err != nil || c.CachedInfo().Paused {
		t.Errorf("consumer still paused after POST resume (%v)", err)
	}

	// Without a reason, the pause says an operator did it.
	a = e.call(t, "POST", "/v1/tenants/org_b/pause", `{"duration":"5m"}`)
	a.decode(t, &ts)
	if a.status != http.StatusOK || ts.PauseReason == "" {
		t.Errorf("pause without a reason: %d %s", a.status, a.body)
	}
}

func TestPauseBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, path, body string
		want             int
		mention          string
	}{
		{"no body", "/v1/tenants/org_a/pause", ``, 400, "JSON"},
		{"bad JSON", "/v1/tenants/org_a/pause", `{"duration":`, 400, "JSON"},
		{"no duration", "/v1/tenants/org_a/pause", `{"reason":"x"}`, 400, "duration is required"},
		{"bad duration", "/v1/tenants/org_a/pause", `{"duration":"soon"}`, 400, "soon"},
		{"number duration", "/v1/tenants/org_a/pause", `{"duration":90}`, 400, "JSON"},
		{"negative", "/v1/tenants/org_a/pause", `{"duration":"-1s"}`, 400, "more than 0"},
		{"zero", "/v1/tenants/org_a/pause", `{"duration":"0s"}`, 400, "more than 0"},
		{"too long", "/v1/tenants/org_a/pause", `{"duration":"25h"}`, 400, "at most 24h"},
		{"unknown field", "/v1/tenants/org_a/pause", `{"duration":"1m","until":"tomorrow"}`, 400, "until"},
		{"reason too long", "/v1/tenants/org_a/pause", `{"duration":"1m","reason":"` + strings.Repeat("r", 300) + `"}`, 400, "reason"},
		{"unknown tenant", "/v1/tenants/org_zzz/pause", `{"duration":"1m"}`, 404, "tenant not found"},
		{"invalid tenant", "/v1/tenants/no%20such/pause", `{"duration":"1m"}`, 404, "tenant not found"},
		{"resume unknown tenant", "/v1/tenants/org_zzz/resume", ``, 404, "tenant not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, "POST", tc.path, tc.body)
			if a.status != tc.want {
				t.Errorf("%d %s, want %d", a.status, a.body, tc.want)
			}
			if msg := a.errorText(t); !strings.Contains(msg, tc.mention) {
				t.Errorf("error %q, want it to mention %q", msg, tc.mention)
			}
		})
	}
	ts, err := e.admin.Tenant(t.Context(), "org_a")
	if err != nil || ts.Paused {
		t.Errorf("org_a paused by bad requests: %+v %v", ts, err)
	}
}
