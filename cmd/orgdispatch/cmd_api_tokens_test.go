package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAPICommandScopedTokens runs `orgdispatch api` with a tokens file and
// no ORGDISPATCH_API_TOKEN, /metrics behind a token: each token gets its
// scope, and the tokens never reach the log.
func TestAPICommandScopedTokens(t *testing.T) {
	dir := t.TempDir()
	dash := filepath.Join(dir, "dash-token")
	if err := os.WriteFile(dash, []byte("dash-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	doc := `tokens:
  - name: crm
    token_env: CRM_TOKEN
    tenants: [org_1]
    rights: [publish]
  - name: dashboard
    token_file: ` + dash + `
    tenants: ["*"]
    rights: [read, metrics]
`
	if err := os.WriteFile(tokens, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN":     "off",
		"ORGDISPATCH_STORE_DIR":       t.TempDir(),
		"ORGDISPATCH_TENANTS_FILE":    writeTenants(t, "http://127.0.0.1:1"),
		"ORGDISPATCH_HTTP_ADDR":       "127.0.0.1:0",
		"ORGDISPATCH_API_TOKENS_FILE": tokens,
		"ORGDISPATCH_METRICS_AUTH":    "true",
		"ORGDISPATCH_LOG_LEVEL":       "debug",
	})
	t.Setenv("CRM_TOKEN", "crm-token-0123456789")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutputLines()
	var errb lockedBuf
	done := make(chan error, 1)
	go func() { done <- runAPI(ctx, nil, out, &errb) }()
	base := out.waitLine(t, regexp.MustCompile(`HTTP +(http://127\.0\.0\.1:\d+)`), 15*time.Second)[1]
	call := func(token, method, path, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	job := `{"id":"j-1","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c-1"}}`
	for _, c := range []struct {
		token, method, path, body string
		want                      int
	}{
		{"crm-token-0123456789", "POST", "/v1/jobs", job, 202},
		{"crm-token-0123456789", "GET", "/v1/tenants/org_1", "", 403},
		{"crm-token-0123456789", "GET", "/metrics", "", 403},
		{"dash-token-0123456789", "GET", "/v1/tenants/org_1", "", 200},
		{"dash-token-0123456789", "POST", "/v1/tenants/org_1/resume", "", 403},
		{"dash-token-0123456789", "GET", "/metrics", "", 200},
		{"", "GET", "/metrics", "", 401},
		{"", "GET", "/v1/tenants", "", 401},
		{"", "GET", "/healthz", "", 200},
	} {
		if got := call(c.token, c.method, c.path, c.body); got != c.want {
			t.Errorf("%.4s… %s %s: %d, want %d", c.token, c.method, c.path, got, c.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("api: %v", err)
	}
	if s := errb.String(); strings.Contains(s, "crm-token-0123456789") || strings.Contains(s, "dash-token-0123456789") {
		t.Errorf("the log shows a token:\n%s", s)
	}
	if !strings.Contains(errb.String(), "dashboard") {
		t.Errorf("the log does not name the tokens in use:\n%s", errb.String())
	}
}
