package api_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

const (
	pubAToken     = "pub-a-0123456789abcdef"
	readOnlyToken = "read-only-0123456789abcdef"
	metricsToken  = "metrics-0123456789abcdef"
)

func scopedTokens(t *testing.T) *api.Tokens {
	t.Helper()
	ts, err := api.NewTokens(
		api.Token{Name: "crm-a", Secret: pubAToken, Tenants: []string{"org_a"}, Rights: []api.Right{api.RightPublish, api.RightRead}},
		api.Token{Name: "dashboard", Secret: readOnlyToken + "\n", Tenants: []string{api.AllTenants}, Rights: []api.Right{api.RightRead}},
		api.Token{Name: "prometheus", Secret: metricsToken, Tenants: []string{api.AllTenants}, Rights: []api.Right{api.RightMetrics}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestScopedTokens: a publish-only token for org_a cannot publish for
// org_b, pause, or read org_b's tenant, jobs or dead letters; a read-only
// token cannot write; the full token (ORGDISPATCH_API_TOKEN) still can.
func TestScopedTokens(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = scopedTokens(t) }))
	as := func(token string) func(method, path string, body any) answer {
		return func(method, path string, body any) answer { return e.callWith(t, "Bearer "+token, method, path, body) }
	}
	pub, ro, full := as(pubAToken), as(readOnlyToken), as(testToken)
	dlA := e.storeDeadLetter(t, "org_a", "da", "permanent")
	dlB := e.storeDeadLetter(t, "org_b", "db", "permanent")
	if a := full("POST", "/v1/jobs", job("org_b", "b-1")); a.status != http.StatusAccepted {
		t.Fatalf("full token publishes for org_b: %d %s", a.status, a.body)
	}

	// publish-only for org_a
	if a := pub("POST", "/v1/jobs", job("org_a", "a-1")); a.status != http.StatusAccepted {
		t.Errorf("crm-a publishes for org_a: %d %s", a.status, a.body)
	}
	before := e.jobsInStream(t)
	for _, body := range []any{job("org_b", "b-2"), []any{job("org_a", "a-2"), job("org_b", "b-3")}} {
		a := pub("POST", "/v1/jobs", body)
		if a.status != http.StatusForbidden || !strings.Contains(a.errorText(t), "none was published") {
			t.Errorf("crm-a publishes for org_b: %d %s, want 403", a.status, a.body)
		}
	}
	if n := e.jobsInStream(t); n != before {
		t.Errorf("refused publishes left %d jobs, want %d", n, before)
	}
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/v1/tenants/org_a/pause", api.PauseRequest{Duration: "1m"}, 403},
		{"POST", "/v1/tenants/org_a/resume", nil, 403},
		{"POST", fmt.Sprintf("/v1/dlq/%d/replay", dlA), nil, 403},
		{"DELETE", fmt.Sprintf("/v1/dlq/%d", dlA), nil, 403},
		{"GET", "/v1/tenants/org_b", nil, 403},
		{"GET", "/v1/jobs/b-1", nil, 404},
		{"GET", "/v1/dlq?tenant=org_b", nil, 403},
		{"GET", fmt.Sprintf("/v1/dlq/%d", dlB), nil, 404},
		{"GET", "/v1/tenants/org_a", nil, 200},
		{"GET", "/v1/jobs/a-1", nil, 200},
		{"GET", fmt.Sprintf("/v1/dlq/%d", dlA), nil, 200},
	} {
		if a := pub(c.method, c.path, c.body); a.status != c.want {
			t.Errorf("crm-a %s %s: %d %s, want %d", c.method, c.path, a.status, a.body, c.want)
		}
	}
	var tl api.TenantsResponse
	pub("GET", "/v1/tenants", nil).decode(t, &tl)
	if len(tl.Tenants) != 1 || tl.Tenants[0].ID != "org_a" {
		t.Errorf("crm-a lists tenants %+v, want org_a only", tl.Tenants)
	}
	var dls api.DeadLettersResponse
	pub("GET", "/v1/dlq", nil).decode(t, &dls) // its only tenant by default
	if len(dls.DeadLetters) != 1 || dls.DeadLetters[0].Tenant != "org_a" {
		t.Errorf("crm-a lists dead letters %+v, want org_a's only", dls.DeadLetters)
	}

	// read-only on every tenant
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/jobs", job("org_a", "r-1")},
		{"POST", "/v1/tenants/org_a/pause", api.PauseRequest{Duration: "1m"}},
		{"POST", "/v1/tenants/org_a/resume", nil},
		{"POST", fmt.Sprintf("/v1/dlq/%d/replay", dlB), nil},
		{"DELETE", fmt.Sprintf("/v1/dlq/%d", dlB), nil},
	} {
		if a := ro(c.method, c.path, c.body); a.status != http.StatusForbidden {
			t.Errorf("dashboard %s %s: %d %s, want 403", c.method, c.path, a.status, a.body)
		}
	}
	ro("GET", "/v1/tenants", nil).decode(t, &tl)
	if len(tl.Tenants) != 2 {
		t.Errorf("dashboard lists %d tenants, want 2", len(tl.Tenants))
	}
	if a := ro("GET", "/v1/dlq", nil); a.status != http.StatusOK {
		t.Errorf("dashboard lists dead letters: %d %s", a.status, a.body)
	}
	if ts, _ := e.admin.Tenant(t.Context(), "org_a"); ts.Paused {
		t.Error("org_a paused by a refused request")
	}
	if _, err := e.admin.DeadLetter(t.Context(), dlB); err != nil {
		t.Errorf("org_b's dead letter gone after refused requests: %v", err)
	}

	// The full token still does everything.
	if a := full("POST", "/v1/tenants/org_b/pause", api.PauseRequest{Duration: "1m"}); a.status != http.StatusOK {
		t.Errorf("full token pauses org_b: %d %s", a.status, a.body)
	}
	if a := full("DELETE", fmt.Sprintf("/v1/dlq/%d", dlB), nil); a.status != http.StatusNoContent {
		t.Errorf("full token deletes: %d %s", a.status, a.body)
	}

	// Metrics stay open unless MetricsAuth.
	if a := e.callWith(t, "", "GET", "/metrics", nil); a.status != http.StatusOK {
		t.Errorf("/metrics without MetricsAuth: %d", a.status)
	}
}

func TestMetricsAuth(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = scopedTokens(t); c.MetricsAuth = true }))
	for _, c := range []struct {
		authz string
		want  int
	}{
		{"", 401}, {"Bearer nope", 401}, {"Bearer " + readOnlyToken, 403}, {"Bearer " + pubAToken, 403},
		{"Bearer " + metricsToken, 200}, {"Bearer " + testToken, 200},
	} {
		a := e.callWith(t, c.authz, "GET", "/metrics", nil)
		if a.status != c.want {
			t.Errorf("/metrics with %q: %d, want %d", c.authz, a.status, c.want)
		}
		if c.want == 200 && !strings.Contains(string(a.body), "orgdispatch_tenant_backlog") {
			t.Errorf("/metrics: no tenant gauges:\n%.300s", a.body)
		}
	}
	if a := e.callWith(t, "Bearer "+metricsToken, "GET", "/v1/tenants", nil); a.status != http.StatusForbidden {
		t.Errorf("metrics token reads /v1/tenants: %d", a.status)
	}
	if _, err := api.New(api.Config{Admin: e.admin, Publisher: dispatcher.NewPublisher(e.js, e.names), MetricsAuth: true}); err == nil {
		t.Error("api.New accepted MetricsAuth without any token")
	}
}

func TestSetTokensReplacesScopedTokens(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = scopedTokens(t) }))
	next, err := api.NewTokens(api.Token{Name: "new", Secret: "new-token-0123456789", Tenants: []string{"org_b"}, Rights: []api.Right{api.RightRead}})
	if err != nil {
		t.Fatal(err)
	}
	e.server.SetTokens(next)
	for token, want := range map[string]int{pubAToken: 401, "new-token-0123456789": 200, testToken: 200} {
		if a := e.callWith(t, "Bearer "+token, "GET", "/v1/tenants/org_b", nil); a.status != want {
			t.Errorf("after SetTokens, token %.6s…: %d, want %d", token, a.status, want)
		}
	}
	e.server.SetTokens(nil) // an emptied file: only the full token is left, nothing opens
	if a := e.callWith(t, "", "GET", "/v1/tenants", nil); a.status != http.StatusUnauthorized {
		t.Errorf("after SetTokens(nil) without a token: %d", a.status)
	}
}

func TestParseTokens(t *testing.T) {
	env := map[string]string{"CRM_TOKEN": "crm-secret-value-1234", "DASH": "dash-secret-value-5678", "PH": "REPLACE-WITH-A-LONG-RANDOM-TOKEN"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	files := map[string]string{"/run/secrets/dash": "file-secret-value-9999\n"}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
	good := `tokens:
  - name: crm
    token_env: CRM_TOKEN
    tenants: [org_a, org_b]
    rights: [publish, read]
  - name: dash
    token_file: /run/secrets/dash
    tenants: ["*"]
    rights: [read, metrics]
`
	ts, err := api.ParseTokens([]byte(good), lookup, read)
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	if got := strings.Join(ts.Names(), ","); got != "crm,dash" {
		t.Errorf("Names() = %q", got)
	}
	for _, c := range []struct{ name, doc, want string }{
		{"unknown key", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    tenant: [org_a]\n    rights: [read]\n", "field tenant not found"},
		{"inline token", "tokens:\n  - name: a\n    token: crm-secret-value-1234\n    tenants: [org_a]\n    rights: [read]\n", "field token not found"},
		{"no source", "tokens:\n  - name: a\n    tenants: [org_a]\n    rights: [read]\n", "exactly one of token_env and token_file"},
		{"both sources", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    token_file: /run/secrets/dash\n    tenants: [org_a]\n    rights: [read]\n", "exactly one"},
		{"unset env", "tokens:\n  - name: a\n    token_env: NOPE\n    tenants: [org_a]\n    rights: [read]\n", "NOPE is not set"},
		{"missing file", "tokens:\n  - name: a\n    token_file: /nope\n    tenants: [org_a]\n    rights: [read]\n", "token_file"},
		{"placeholder", "tokens:\n  - name: a\n    token_env: PH\n    tenants: [org_a]\n    rights: [read]\n", "placeholder"},
		{"bad right", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    tenants: [org_a]\n    rights: [admin]\n", `unknown right "admin"`},
		{"no rights", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    tenants: [org_a]\n", "rights"},
		{"no tenants", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    rights: [read]\n", "tenants"},
		{"bad tenant", "tokens:\n  - name: a\n    token_env: CRM_TOKEN\n    tenants: [org.a]\n    rights: [read]\n", `"org.a" is not a tenant id`},
		{"bad name", "tokens:\n  - name: a b\n    token_env: CRM_TOKEN\n    tenants: [org_a]\n    rights: [read]\n", "name"},
		{"same name", "tokens:\n  - {name: a, token_env: CRM_TOKEN, tenants: [org_a], rights: [read]}\n  - {name: a, token_env: DASH, tenants: [org_a], rights: [read]}\n", "used twice"},
		{"same token", "tokens:\n  - {name: a, token_env: CRM_TOKEN, tenants: [org_a], rights: [read]}\n  - {name: b, token_env: CRM_TOKEN, tenants: [org_a], rights: [read]}\n", `same token as "a"`},
		{"empty", "tokens: []\n", "no tokens"},
	} {
		_, err := api.ParseTokens([]byte(c.doc), lookup, read)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
			continue
		}
		for _, secret := range env {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows a token", c.name)
			}
		}
	}
}

// TestPlaceholderTokenRefused: the example's placeholder token, applied
// unchanged, stops the server from starting.
func TestPlaceholderTokenRefused(t *testing.T) {
	_, err := api.NewTokens(api.Token{Name: "x", Secret: "replace-with-a-long-random-token", Tenants: []string{"*"}, Rights: api.AllRights})
	if !errors.Is(err, api.ErrPlaceholderToken) {
		t.Errorf("NewTokens with a placeholder: %v, want ErrPlaceholderToken", err)
	}
	e := newEnv(t)
	_, err = api.New(api.Config{Admin: e.admin, Publisher: dispatcher.NewPublisher(e.js, e.names), Token: "REPLACE-WITH-A-LONG-RANDOM-TOKEN\n"})
	if !errors.Is(err, api.ErrPlaceholderToken) || strings.Contains(err.Error(), "REPLACE-WITH") {
		t.Errorf("api.New with the placeholder token: %v, want ErrPlaceholderToken without the token", err)
	}
}

// TestTokensWatcher: a changed tokens file replaces the scoped tokens; a
// broken one is ignored (the old tokens keep working).
func TestTokensWatcher(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/tokens.yaml"
	write := func(name, file string, tenants string) {
		t.Helper()
		doc := fmt.Sprintf("tokens:\n  - name: %s\n    token_file: %s\n    tenants: [%s]\n    rights: [read]\n", name, file, tenants)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(name, v string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("one", secret("one", "one-token-0123456789"), "org_a")
	first, err := api.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Tokens = first }))
	reloads := make(chan error, 10)
	w, err := api.NewTokensWatcher(api.TokensWatcherConfig{Path: path, Apply: e.server.SetTokens, Current: first, OnReload: func(err error) { reloads <- err }})
	if err != nil {
		t.Fatal(err)
	}
	status := func(token, tenant string) int {
		return e.callWith(t, "Bearer "+token, "GET", "/v1/tenants/"+tenant, nil).status
	}
	w.Check() // unchanged: nothing happens
	select {
	case err := <-reloads:
		t.Fatalf("reload of an unchanged file: %v", err)
	default:
	}
	// A rotated token file.
	secret("one", "one-token-rotated-999")
	w.Check()
	if err := <-reloads; err != nil {
		t.Fatal(err)
	}
	if got := status("one-token-0123456789", "org_a"); got != 401 {
		t.Errorf("old token after rotation: %d", got)
	}
	if got := status("one-token-rotated-999", "org_a"); got != 200 {
		t.Errorf("rotated token: %d", got)
	}
	// A new scope.
	write("one", dir+"/one", "org_b")
	w.Check()
	if err := <-reloads; err != nil {
		t.Fatal(err)
	}
	if a, b := status("one-token-rotated-999", "org_a"), status("one-token-rotated-999", "org_b"); a != 403 || b != 200 {
		t.Errorf("after the scope change: org_a %d, org_b %d", a, b)
	}
	// A broken file: rejected, the tokens in use stay.
	if err := os.WriteFile(path, []byte("tokens:\n  - name: one\n    token: inline\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Check()
	if err := <-reloads; err == nil {
		t.Fatal("a broken tokens file was accepted")
	}
	if got := status("one-token-rotated-999", "org_b"); got != 200 {
		t.Errorf("after a rejected file: %d", got)
	}
	// Run reloads on its own.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	w2, _ := api.NewTokensWatcher(api.TokensWatcherConfig{Path: path, Apply: e.server.SetTokens, Current: first, Interval: 10 * time.Millisecond, OnReload: func(err error) { reloads <- err }})
	go func() { done <- w2.Run(ctx) }()
	write("two", secret("two", "two-token-0123456789"), "org_a")
	for err := range reloads {
		if err == nil {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := status("two-token-0123456789", "org_a"); got != 200 {
		t.Errorf("token added while Run watched: %d", got)
	}
}
