package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// TestAuditTrail: pause, resume, dead-letter replay and delete, and refused
// token use are recorded with who (the token's name), what, when and why;
// GET /v1/audit shows them within the token's scope, and no record holds a
// token.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = scopedTokens(t) }))
	dl1 := e.storeDeadLetter(t, "org_a", "d1", "permanent")
	dl2 := e.storeDeadLetter(t, "org_a", "d2", "permanent")
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/v1/tenants/org_a/pause", api.PauseRequest{Duration: "5m", Reason: "maintenance window"}, 200},
		{"POST", "/v1/tenants/org_a/resume?reason=done+early", nil, 200},
		{"POST", fmt.Sprintf("/v1/dlq/%d/replay?reason=fixed+campaign", dl1), nil, 200},
		{"DELETE", fmt.Sprintf("/v1/dlq/%d?reason=obsolete", dl2), nil, 204},
	} {
		if a := e.call(t, c.method, c.path, c.body); a.status != c.want {
			t.Fatalf("%s %s: %d %s", c.method, c.path, a.status, a.body)
		}
	}
	// Refused: an unknown token, and crm-a beyond its scope.
	if a := e.callWith(t, "Bearer not-a-token-xyz", "GET", "/v1/tenants", nil); a.status != 401 {
		t.Fatalf("bad token: %d", a.status)
	}
	if a := e.callWith(t, "Bearer "+pubAToken, "POST", "/v1/tenants/org_b/pause", api.PauseRequest{Duration: "1m"}); a.status != 403 {
		t.Fatalf("crm-a pauses org_b: %d", a.status)
	}

	var resp api.AuditResponse
	e.call(t, "GET", "/v1/audit?limit=100", nil).decode(t, &resp)
	byAction := map[string]dispatcher.AuditRecord{}
	for _, r := range resp.Records {
		if _, seen := byAction[r.Action]; !seen { // newest first: keep the latest
			byAction[r.Action] = r
		}
	}
	check := func(action, actor, tenant, reason string) {
		t.Helper()
		r, ok := byAction[action]
		switch {
		case !ok:
			t.Errorf("no %s record in %+v", action, resp.Records)
		case r.Actor != actor || r.Tenant != tenant || !strings.Contains(r.Reason, reason) || r.Time.IsZero() || r.Seq == 0:
			t.Errorf("%s record = %+v, want actor %q tenant %q reason %q", action, r, actor, tenant, reason)
		}
	}
	check(dispatcher.AuditPause, api.LegacyTokenName, "org_a", "maintenance window")
	check(dispatcher.AuditResume, api.LegacyTokenName, "org_a", "done early")
	check(dispatcher.AuditDLQReplay, api.LegacyTokenName, "org_a", "fixed campaign")
	check(dispatcher.AuditDLQDelete, api.LegacyTokenName, "org_a", "obsolete")
	check(dispatcher.AuditRefused, "crm-a", "org_b", "may not pause")
	if byAction[dispatcher.AuditPause].Detail["until"] == "" || byAction[dispatcher.AuditDLQReplay].Detail["job_id"] != "d1" {
		t.Errorf("details: pause %v replay %v", byAction[dispatcher.AuditPause].Detail, byAction[dispatcher.AuditDLQReplay].Detail)
	}
	var unauth bool
	for _, r := range resp.Records {
		if r.Action == dispatcher.AuditRefused && r.Actor == "unauthenticated" && strings.Contains(r.Reason, "invalid bearer token") {
			unauth = true
		}
	}
	if !unauth {
		t.Errorf("no record of the unknown token: %+v", resp.Records)
	}
	a := e.call(t, "GET", "/v1/audit?limit=100", nil)
	for _, secret := range []string{"not-a-token-xyz", pubAToken, testToken} {
		if strings.Contains(string(a.body), secret) {
			t.Errorf("the audit trail holds a token")
		}
	}

	// Scope: the dashboard token reads everything; crm-a has no read of
	// org_b and sees org_a's only.
	var ro api.AuditResponse
	e.callWith(t, "Bearer "+readOnlyToken, "GET", "/v1/audit?tenant=org_a", nil).decode(t, &ro)
	if len(ro.Records) < 4 {
		t.Errorf("dashboard reads %d org_a records, want ≥ 4", len(ro.Records))
	}
	if a := e.callWith(t, "Bearer "+pubAToken, "GET", "/v1/audit?tenant=org_b", nil); a.status != 403 {
		t.Errorf("crm-a reads org_b's audit: %d", a.status)
	}
	var mine api.AuditResponse
	e.callWith(t, "Bearer "+pubAToken, "GET", "/v1/audit", nil).decode(t, &mine)
	for _, r := range mine.Records {
		if r.Tenant != "org_a" {
			t.Errorf("crm-a sees a record of %q", r.Tenant)
		}
	}
	// Paging oldest first.
	var page api.AuditResponse
	e.call(t, "GET", "/v1/audit?tenant=org_a&after=1&limit=2", nil).decode(t, &page)
	if len(page.Records) != 2 || page.Records[0].Seq >= page.Records[1].Seq || page.NextAfter != page.Records[1].Seq {
		t.Errorf("page after 1: %+v", page)
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?after=-1", "?tenant=a.b"} {
		if a := e.call(t, "GET", "/v1/audit"+bad, nil); a.status != 400 {
			t.Errorf("GET /v1/audit%s: %d", bad, a.status)
		}
	}
}

// TestRefusedRequestsAuditIsRateLimited: a flood of bad tokens, foreign
// Hosts and cross-site writes leaves a bounded number of audit records.
func TestRefusedRequestsAuditIsRateLimited(t *testing.T) {
	e := newEnv(t)
	for i := range 200 {
		switch i % 3 {
		case 0:
			e.callWith(t, fmt.Sprintf("Bearer bad-%d", i), "GET", "/v1/tenants", nil)
		case 1:
			e.rawCall(t, "GET", "/v1/tenants", "evil.example", "", nil)
		default:
			e.rawCall(t, "POST", "/v1/jobs", "", "{}", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"})
		}
	}
	var resp api.AuditResponse
	e.call(t, "GET", "/v1/audit?limit=500", nil).decode(t, &resp)
	if n := len(resp.Records); n == 0 || n > 25 {
		t.Errorf("200 refused requests left %d audit records, want 1-25", n)
	}
	for _, r := range resp.Records {
		if r.Action != dispatcher.AuditRefused {
			t.Errorf("record %+v", r)
		}
	}
	if a := e.call(t, "GET", "/v1/tenants", nil); a.status != http.StatusOK {
		t.Errorf("the right token after the flood: %d", a.status)
	}
}

// TestAuditForTokenOfSeveralTenants: a token of two tenants (not all) reads
// their records without naming one, and nothing of a third.
func TestAuditForTokenOfSeveralTenants(t *testing.T) {
	two, err := api.NewTokens(api.Token{Name: "ops-ab", Secret: "ops-ab-token-0123456789", Tenants: []string{"org_a", "org_b"}, Rights: []api.Right{api.RightRead, api.RightPause}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withTenants(tenants.Tenant{ID: "org_a", Concurrency: 1}, tenants.Tenant{ID: "org_b", Concurrency: 1}, tenants.Tenant{ID: "org_c", Concurrency: 1}),
		withAPIConfig(func(c *api.Config) { c.Tokens = two }))
	for _, id := range []string{"org_a", "org_b", "org_c", "org_a"} {
		if a := e.call(t, "POST", "/v1/tenants/"+id+"/pause", api.PauseRequest{Duration: "1m", Reason: "r-" + id}); a.status != 200 {
			t.Fatalf("pause %s: %d", id, a.status)
		}
	}
	as := func(q string) api.AuditResponse {
		var resp api.AuditResponse
		a := e.callWith(t, "Bearer ops-ab-token-0123456789", "GET", "/v1/audit"+q, nil)
		if a.status != 200 {
			t.Fatalf("GET /v1/audit%s: %d %s", q, a.status, a.body)
		}
		a.decode(t, &resp)
		return resp
	}
	var got []string
	for _, r := range as("").Records {
		got = append(got, r.Tenant)
	}
	if strings.Join(got, ",") != "org_a,org_b,org_a" {
		t.Errorf("latest records of ops-ab: %v, want org_a,org_b,org_a (newest first, no org_c)", got)
	}
	p1 := as("?after=1&limit=1")
	if len(p1.Records) != 1 || p1.Records[0].Tenant != "org_b" {
		t.Fatalf("page after 1: %+v", p1)
	}
	p2 := as(fmt.Sprintf("?after=%d&limit=5", p1.NextAfter))
	if len(p2.Records) != 1 || p2.Records[0].Tenant != "org_a" || p2.Records[0].Reason != "r-org_a" {
		t.Errorf("next page: %+v", p2)
	}
}
