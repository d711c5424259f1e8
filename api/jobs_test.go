package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestSubmitJobs(t *testing.T) {
	e := newEnv(t)

	a := e.call(t, "POST", "/v1/jobs", job("org_a", "j1"))
	var got api.SubmitResponse
	a.decode(t, &got)
	if a.status != http.StatusAccepted || !slices.Equal(got.Accepted, []string{"j1"}) || len(got.Duplicates) != 0 {
		t.Fatalf("single job: %d %s", a.status, a.body)
	}

	a = e.call(t, "POST", "/v1/jobs", []any{job("org_a", "j1"), job("org_b", "j1"), job("org_b", "j2")})
	got = api.SubmitResponse{}
	a.decode(t, &got)
	if a.status != http.StatusAccepted || !slices.Equal(got.Accepted, []string{"j1", "j2"}) || !slices.Equal(got.Duplicates, []string{"j1"}) {
		t.Fatalf("array: %d %s; want org_a's j1 a duplicate, org_b's j1 and j2 accepted", a.status, a.body)
	}
	if n := e.jobsInStream(t); n != 3 {
		t.Errorf("%d jobs in the stream, want 3", n)
	}
	org, err := e.admin.Tenant(t.Context(), "org_b")
	if err != nil || org.Backlog != 2 {
		t.Errorf("org_b backlog = %d (%v), want 2", org.Backlog, err)
	}
}

func TestSubmitJobsRejectsInvalidJobsAndPublishesNone(t *testing.T) {
	e := newEnv(t)
	body := []any{
		job("org_a", "ok1"),
		map[string]any{"id": "bad-op", "tenant": "org_a", "op": "campaign.explode"},
		job("org_zzz", "unknown-tenant"),
		map[string]any{"id": "no-tenant", "op": "campaign.start", "params": map[string]string{"campaign_id": "c"}},
		map[string]any{"id": "extra", "tenant": "org_a", "op": "campaign.start", "params": map[string]string{"campaign_id": "c"}, "color": "red"},
		map[string]any{"id": "no-params", "tenant": "org_a", "op": "campaign.start"},
		job("org_b", "ok2"),
	}
	a := e.call(t, "POST", "/v1/jobs", body)
	if a.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", a.status, a.body)
	}
	var got api.ErrorResponse
	a.decode(t, &got)
	var idx []int
	for _, ie := range got.Errors {
		idx = append(idx, ie.Index)
		if ie.Error == "" {
			t.Errorf("item %d has no error text", ie.Index)
		}
	}
	if !slices.Equal(idx, []int{1, 2, 3, 4, 5}) {
		t.Errorf("invalid items %v, want 1-5; %s", idx, a.body)
	}
	if len(got.Errors) == 5 {
		for i, want := range []string{"unknown op", `unknown tenant "org_zzz"`, "tenant is required", "color", "params"} {
			if !strings.Contains(got.Errors[i].Error, want) {
				t.Errorf("item %d error %q, want it to mention %q", got.Errors[i].Index, got.Errors[i].Error, want)
			}
		}
		if got.Errors[0].ID != "bad-op" {
			t.Errorf("item 1 id %q, want bad-op", got.Errors[0].ID)
		}
	}
	if n := e.jobsInStream(t); n != 0 {
		t.Errorf("%d jobs published from an invalid request, want none", n)
	}

	for _, bad := range []string{``, `   `, `{`, `[{"id":"x"`, `42`, `"job"`, `[]`, `{"id":"a","tenant":"org_a","op":"campaign.start","params":{"campaign_id":"c"}} {}`, `[1]`} {
		a := e.call(t, "POST", "/v1/jobs", bad)
		if a.status != http.StatusBadRequest {
			t.Errorf("body %q: %d, want 400", bad, a.status)
		}
		a.errorText(t)
	}
	if n := e.jobsInStream(t); n != 0 {
		t.Errorf("%d jobs published from bad bodies, want none", n)
	}
}

func TestSubmitJobsTooLarge(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) {
		c.MaxBodyBytes = 2000
		c.MaxJobsPerRequest = 3
	}))
	big := job("org_a", "big")
	big["params"] = map[string]string{"campaign_id": strings.Repeat("x", 3000)}
	a := e.call(t, "POST", "/v1/jobs", big)
	if a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: %d, want 413", a.status)
	}
	a.errorText(t)
	many := []any{job("org_a", "1"), job("org_a", "2"), job("org_a", "3"), job("org_a", "4")}
	a = e.call(t, "POST", "/v1/jobs", many)
	if a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("4 jobs with a limit of 3: %d, want 413", a.status)
	}
	if n := e.jobsInStream(t); n != 0 {
		t.Errorf("%d jobs published, want none", n)
	}
}

func TestSubmitJobsStreamFullIs503(t *testing.T) {
	// MaxMsgs bounds each jobs stream; org_a and org_b are in two.
	e := newEnv(t, withStreams(dispatcher.StreamConfig{MaxMsgs: 2}))
	a := e.call(t, "POST", "/v1/jobs", []any{job("org_a", "1"), job("org_a", "2"), job("org_a", "3"), job("org_a", "4")})
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("4 jobs into a stream of 2: %d %s, want 503", a.status, a.body)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	var got api.ErrorResponse
	a.decode(t, &got)
	if !slices.Equal(got.Accepted, []string{"1", "2"}) || !slices.Equal(got.NotPublished, []string{"3", "4"}) || got.Error == "" {
		t.Errorf("answer %s: want accepted 1, 2 and not published 3, 4", a.body)
	}
	if n := e.jobsInStream(t); n != 2 {
		t.Errorf("%d jobs in the stream, want the 2 that fitted", n)
	}
	a = e.call(t, "POST", "/v1/jobs", job("org_a", "5"))
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("one job into a full stream: %d, want 503", a.status)
	}
	a.decode(t, &got)
	if !slices.Equal(got.NotPublished, []string{"5"}) {
		t.Errorf("answer %s: want 5 not published", a.body)
	}
}

func TestGetJob(t *testing.T) {
	e := newEnv(t)
	kv, err := e.js.KeyValue(t.Context(), e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"org_b", "org_a"} {
		rec := fmt.Sprintf(`{"id":"j.1","tenant":%q,"op":"campaign.start","state":"succeeded","attempts":1,"updated":%q}`,
			tenant, time.Now().UTC().Format(time.RFC3339))
		if _, err := kv.Put(t.Context(), dispatcher.StatusKey(tenant, "j.1"), []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	a := e.call(t, "GET", "/v1/jobs/j.1", nil)
	var got api.JobResponse
	a.decode(t, &got)
	if a.status != http.StatusOK || got.ID != "j.1" || len(got.Jobs) != 2 || got.Jobs[0].Tenant != "org_a" || got.Jobs[1].State != dispatcher.StateSucceeded {
		t.Errorf("GET /v1/jobs/j.1: %d %s", a.status, a.body)
	}
	for _, id := range []string{"nope", "*", "%3E"} {
		a := e.call(t, "GET", "/v1/jobs/"+id, nil)
		if a.status != http.StatusNotFound {
			t.Errorf("GET /v1/jobs/%s: %d, want 404", id, a.status)
		}
		a.errorText(t)
	}
}
