package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// TestDeadlineAdmissionRefusesWithTheEstimate runs a real worker pool
// against the platform simulator: org_a goes at 30/min (0.5/s) with 12
// bulk jobs queued, so a bulk job due in 5 s is refused, over HTTP and
// through the Go client, with the estimate at the lane's rate; an urgent
// job due in 10 s (7 of every 10 requests while bulk waits) is taken. The
// tenant view shows the same estimates.
func TestDeadlineAdmissionRefusesWithTheEstimate(t *testing.T) {
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients:    []platformtest.ClientCred{{ID: "client_org_a", Secret: "secret_org_a", Org: "org_a"}},
		AutoCreate: true,
	})
	orgA := tenants.Tenant{
		ID: "org_a", ClientID: "client_org_a", ClientSecret: tenants.NewSecret("secret_org_a"),
		APIBase: sim.URL, TokenURL: sim.TokenURL(),
		RatePerMinute: 30, Burst: 1, Concurrency: 1, MaxAttempts: 5, QuotaScope: tenants.ScopeToken,
	}
	e := newEnv(t, withTenants(orgA, tenants.Tenant{ID: "org_b", Concurrency: 1}))

	bulk := func(id string, deadline time.Time) map[string]any {
		j := job("org_a", id)
		j["op"], j["params"], j["priority"] = "campaign.get", map[string]string{"campaign_id": "c1"}, "bulk"
		if !deadline.IsZero() {
			j["deadline"] = deadline.UTC().Format(time.RFC3339Nano)
		}
		return j
	}
	var queued []any
	for i := range 12 {
		queued = append(queued, bulk(fmt.Sprintf("q-%d", i), time.Time{}))
	}
	if a := e.call(t, "POST", "/v1/jobs", queued); a.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", a.status, a.body)
	}

	pool, err := worker.New(worker.Config{
		JS: e.js, Conn: e.nc, Names: e.names, Tenants: []tenants.Tenant{orgA}, ReplicaID: "replica-1",
		HeartbeatInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pool.Run: %v", err)
		}
	})

	// Wait for the lane's figures: the estimate is then at its rate.
	lanes, err := e.js.KeyValue(t.Context(), e.names.LanesBucket())
	if err != nil {
		t.Fatal(err)
	}
	w, err := lanes.WatchAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	timeout := time.After(10 * time.Second)
	var ts dispatcher.TenantStatus
	for ts.DrainRateBasis != dispatcher.DrainRateLanes {
		select {
		case <-w.Updates():
		case <-timeout:
			t.Fatalf("org_a's lane never reported: %+v", ts)
		}
		ts = dispatcher.TenantStatus{}
		e.call(t, "GET", "/v1/tenants/org_a", nil).decode(t, &ts)
	}
	if ts.DrainRatePerSec != 0.5 {
		t.Fatalf("org_a drains at %v/s, want its lane's 0.5/s", ts.DrainRatePerSec)
	}
	b := ts.Class(dispatcher.PriorityBulk)
	if b.Backlog < 10 || b.DrainSeconds == nil || *b.DrainSeconds < 20 {
		t.Fatalf("org_a's bulk class %+v: want 10 or more jobs and a new one done in 20 s or more", b)
	}

	// Over HTTP: 422 with the estimate.
	a := e.call(t, "POST", "/v1/jobs?admission=deadline", []any{bulk("late", time.Now().Add(5*time.Second))})
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("a bulk job due in 5 s: %d %s, want 422", a.status, a.body)
	}
	var refused api.ErrorResponse
	a.decode(t, &refused)
	r := refused.Deadline
	if r == nil || r.Tenant != "org_a" || r.JobID != "late" || r.Priority != dispatcher.PriorityBulk || r.RatePerSec != 0.5 ||
		r.Ahead < 10 || r.EstimateSeconds == nil || *r.EstimateSeconds < 20 || r.EstimatedDone == nil || !r.EstimatedDone.After(r.Deadline) {
		t.Fatalf("422 body %s: want org_a's bulk job late, 10 or more ahead at 0.5/s, done in 20 s or more, after its deadline", a.body)
	}
	if !strings.Contains(refused.Error, "estimated done in") || !strings.Contains(refused.Error, "bulk jobs ahead") || len(refused.NotPublished) != 1 {
		t.Errorf("422 error %q (not published %v): want the estimate and the jobs ahead, the job not published", refused.Error, refused.NotPublished)
	}
	if a := e.call(t, "GET", "/v1/jobs/late", nil); a.status != http.StatusNotFound {
		t.Errorf("the refused job: GET /v1/jobs/late %d %s, want 404 (never queued)", a.status, a.body)
	}

	// The Go client: the same refusal, as the Publisher's typed error.
	c, err := api.NewClient(e.url, e.token, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	late := dispatcher.Job{ID: "late-2", Tenant: "org_a", Op: "campaign.get", Params: []byte(`{"campaign_id":"c1"}`), Priority: "bulk"}
	deadline := time.Now().Add(5 * time.Second)
	late.Deadline = &deadline
	_, err = c.SubmitJobsWithinDeadline(t.Context(), late)
	var due *dispatcher.DeadlineUnreachableError
	if !errors.As(err, &due) || due.Tenant != "org_a" || due.Priority != dispatcher.PriorityBulk || due.Estimate < 20*time.Second || due.Unbounded || !due.Deadline.Equal(deadline) {
		t.Fatalf("client: %v, want a DeadlineUnreachableError for org_a's bulk job with an estimate of 20 s or more", err)
	}
	if !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "estimated done in") {
		t.Errorf("client error %q: want the 422 and the estimate", err)
	}

	// An urgent job takes 7 of every 10 requests while bulk waits: due in
	// 10 s it is in time. A bulk job due in an hour too.
	urgent := bulk("urgent", time.Now().Add(10*time.Second))
	urgent["priority"] = "urgent"
	if a := e.call(t, "POST", "/v1/jobs?admission=deadline", []any{urgent, bulk("later", time.Now().Add(time.Hour))}); a.status != http.StatusAccepted {
		t.Fatalf("an urgent job due in 10 s and a bulk one due in an hour: %d %s, want 202", a.status, a.body)
	}

	// Without a deadline, or with an unknown mode: 400, nothing published.
	if a := e.call(t, "POST", "/v1/jobs?admission=deadline", []any{bulk("no-deadline", time.Time{})}); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "no deadline") {
		t.Errorf("admission=deadline without a deadline: %d %s, want 400", a.status, a.body)
	}
	if a := e.call(t, "POST", "/v1/jobs?admission=soon", []any{bulk("x", time.Time{})}); a.status != http.StatusBadRequest {
		t.Errorf("admission=soon: %d %s, want 400", a.status, a.body)
	}
}
