package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestClient(t *testing.T) {
	e := newEnv(t)
	c, err := api.NewClient(e.url+"/", testToken, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	params := json.RawMessage(`{"campaign_id":"c1"}`)
	res, err := c.SubmitJobs(ctx,
		dispatcher.Job{ID: "j1", Tenant: "org_a", Op: "campaign.start", Params: params},
		dispatcher.Job{ID: "j2", Tenant: "org_b", Op: "campaign.stop", Params: params})
	if err != nil || !slices.Equal(res.Accepted, []string{"j1", "j2"}) {
		t.Fatalf("SubmitJobs = %+v, %v", res, err)
	}
	res, err = c.SubmitJobs(ctx, dispatcher.Job{ID: "j1", Tenant: "org_a", Op: "campaign.start", Params: params})
	if err != nil || !slices.Equal(res.Duplicates, []string{"j1"}) {
		t.Errorf("SubmitJobs again = %+v, %v; want a duplicate", res, err)
	}
	_, err = c.SubmitJobs(ctx, dispatcher.Job{ID: "j3", Tenant: "org_a", Op: "nope"})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || len(apiErr.Errors) != 1 || !strings.Contains(err.Error(), "unknown op") {
		t.Errorf("SubmitJobs of an invalid job: %v", err)
	}

	list, err := c.Tenants(ctx)
	if err != nil || len(list) != 2 || list[0].Backlog != 1 {
		t.Errorf("Tenants = %+v, %v", list, err)
	}
	ts, err := c.Pause(ctx, "org_a", 2*time.Minute, "deploy")
	if err != nil || !ts.Paused || ts.PauseReason != "deploy" {
		t.Errorf("Pause = %+v, %v", ts, err)
	}
	ts, err = c.Tenant(ctx, "org_a")
	if err != nil || !ts.Paused {
		t.Errorf("Tenant = %+v, %v", ts, err)
	}
	ts, err = c.Resume(ctx, "org_a")
	if err != nil || ts.Paused {
		t.Errorf("Resume = %+v, %v", ts, err)
	}
	if _, err := c.Tenant(ctx, "org_zzz"); !api.IsNotFound(err) {
		t.Errorf("Tenant(unknown) = %v, want not found", err)
	}
	if _, err := c.Pause(ctx, "org_a", 48*time.Hour, ""); err == nil || api.IsNotFound(err) {
		t.Errorf("Pause for 48h = %v, want a 400", err)
	}

	kv, err := e.js.KeyValue(ctx, e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, dispatcher.StatusKey("org_a", "j1"), []byte(`{"id":"j1","tenant":"org_a","op":"campaign.start","state":"queued"}`)); err != nil {
		t.Fatal(err)
	}
	jobs, err := c.Job(ctx, "j1")
	if err != nil || len(jobs) != 1 || jobs[0].State != dispatcher.StateQueued {
		t.Errorf("Job = %+v, %v", jobs, err)
	}
	if _, err := c.Job(ctx, "zzz"); !api.IsNotFound(err) {
		t.Errorf("Job(unknown) = %v", err)
	}

	s1 := e.storeDeadLetter(t, "org_a", "d1", "permanent")
	s2 := e.storeDeadLetter(t, "org_b", "d2", "permanent")
	page, err := c.DeadLetters(ctx, "", 0, 0)
	if err != nil || len(page.DeadLetters) != 2 || page.NextAfter != s2 {
		t.Errorf("DeadLetters = %+v, %v", page, err)
	}
	page, err = c.DeadLetters(ctx, "org_b", 10, 0)
	if err != nil || len(page.DeadLetters) != 1 || page.DeadLetters[0].Seq != s2 {
		t.Errorf("DeadLetters(org_b) = %+v, %v", page, err)
	}
	page, err = c.DeadLetters(ctx, "", 1, s1)
	if err != nil || len(page.DeadLetters) != 1 || page.DeadLetters[0].Seq != s2 {
		t.Errorf("DeadLetters(after %d) = %+v, %v", s1, page, err)
	}
	dl, err := c.DeadLetter(ctx, s1)
	if err != nil || dl.JobID != "d1" {
		t.Errorf("DeadLetter = %+v, %v", dl, err)
	}
	rr, err := c.Replay(ctx, s1)
	if err != nil || rr.JobID != "d1" || rr.Seq != s1 {
		t.Errorf("Replay = %+v, %v", rr, err)
	}
	if err := c.DeleteDeadLetter(ctx, s2); err != nil {
		t.Errorf("DeleteDeadLetter: %v", err)
	}
	if err := c.DeleteDeadLetter(ctx, s2); !api.IsNotFound(err) {
		t.Errorf("DeleteDeadLetter again = %v, want not found", err)
	}
}

func TestClientAuthErrors(t *testing.T) {
	e := newEnv(t)
	for _, token := range []string{"", "wrong-token"} {
		c, err := api.NewClient(e.url, token, e.hc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Tenants(t.Context())
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
			t.Errorf("token %q: %v, want 401", token, err)
		}
		if token != "" && strings.Contains(err.Error(), token) {
			t.Errorf("error %q shows the token", err)
		}
	}
}

func TestNewClientValidatesURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "127.0.0.1:8080", "http://", "::"} {
		if _, err := api.NewClient(u, "", nil); err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
	if _, err := api.NewClient("", "", nil); err != nil {
		t.Errorf("NewClient with the default URL: %v", err)
	}
}
