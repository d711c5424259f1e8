package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// TestServeDefaultRefusesCrossSiteWrites runs a default `serve` (no token,
// loopback) and plays a malicious web page against it through the
// operator's browser: a text/plain POST that needs no preflight (an
// api.request DELETE of a campaign, a 24 h pause), a foreign Origin, and a
// DNS-rebinding Host. Every write is refused and nothing is queued or
// paused; the dashboard and the CLI keep working.
func TestServeDefaultRefusesCrossSiteWrites(t *testing.T) {
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients:    []platformtest.ClientCred{{ID: "client_org_1", Secret: "secret_org_1", Org: "org_1"}},
		AutoCreate: true,
	})
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN":      "off",
		"ORGDISPATCH_STORE_DIR":        t.TempDir(),
		"ORGDISPATCH_TENANTS_FILE":     writeTenants(t, sim.URL),
		"ORGDISPATCH_HTTP_ADDR":        "127.0.0.1:0",
		"ORGDISPATCH_SHUTDOWN_TIMEOUT": "2s",
		"ORGDISPATCH_LOG_LEVEL":        "warn",
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutputLines()
	var errb lockedBuf
	done := make(chan error, 1)
	go func() { done <- runNode(ctx, "serve", nil, out, &errb) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	apiURL := out.waitLine(t, regexp.MustCompile(`HTTP +(http://127\.0\.0\.1:\d+)$`), 15*time.Second)[1]
	port := apiURL[strings.LastIndex(apiURL, ":")+1:]

	send := func(method, path, host, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, apiURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	evil := "https://evil.example"
	del := `{"id":"x","tenant":"org_1","op":"api.request","params":{"method":"DELETE","path":"/api/v2/outbound/campaigns/cmp-1"}}`
	pause := `{"duration":"24h","reason":"x"}`
	for _, a := range []struct {
		name, method, path, host, body string
		header                         map[string]string
	}{
		// fetch(url, {method: "POST", mode: "no-cors", body}) from evil.example
		{"text/plain job", "POST", "/v1/jobs", "", del, map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": evil, "Sec-Fetch-Site": "cross-site"}},
		{"text/plain pause", "POST", "/v1/tenants/org_1/pause", "", pause, map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": evil, "Sec-Fetch-Site": "cross-site"}},
		// an old browser that sends no Fetch Metadata, only the Content-Type
		{"text/plain, no origin", "POST", "/v1/tenants/org_1/pause", "", pause, map[string]string{"Content-Type": "text/plain"}},
		{"form post", "POST", "/v1/jobs", "", del, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": evil}},
		{"foreign origin, json", "POST", "/v1/tenants/org_1/pause", "", pause, map[string]string{"Content-Type": "application/json", "Origin": evil}},
		// evil.example re-resolved to 127.0.0.1: same origin to the browser
		{"rebinding", "POST", "/v1/jobs", "evil.example:" + port, del, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"}},
		{"rebinding pause", "POST", "/v1/tenants/org_1/pause", "evil.example:" + port, pause, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}},
		{"rebinding read", "GET", "/v1/tenants", "evil.example:" + port, "", nil},
	} {
		if code, body := send(a.method, a.path, a.host, a.body, a.header); code < 400 || code >= 500 {
			t.Errorf("%s: %s %s: %d %s, want it refused", a.name, a.method, a.path, code, body)
		}
	}

	// Nothing was queued or paused: the CLI says so, and still works.
	t.Setenv("ORGDISPATCH_API_URL", apiURL)
	code, sout, serr := runCLI(t, "status", "org_1")
	if code != 0 || !strings.Contains(sout, "org_1") || !strings.Contains(sout, "paused:      no") {
		t.Errorf("status after the attack: exit %d\n%s%s", code, sout, serr)
	}
	if code, body := send("GET", "/v1/tenants/org_1", "", "", nil); code != 200 || !strings.Contains(body, `"backlog":0`) || strings.Contains(body, `"paused":true`) {
		t.Errorf("org_1 after the attack: %d %s", code, body)
	}
	// The dashboard page and its own (same-origin) requests work.
	if code, body := send("GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "none"}); code != 200 || !strings.Contains(body, "<html") {
		t.Errorf("dashboard: %d %.200s", code, body)
	}
	if code, body := send("GET", "/v1/tenants", "localhost:"+port, "", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != 200 {
		t.Errorf("dashboard's poll on localhost: %d %s", code, body)
	}
	code, sout, serr = runCLI(t, "pause", "org_1", "--for", "1m", "--reason", "operator")
	if code != 0 {
		t.Errorf("pause through the CLI: exit %d %s%s", code, sout, serr)
	}
	if code, sout, serr = runCLI(t, "resume", "org_1"); code != 0 {
		t.Errorf("resume through the CLI: exit %d %s%s", code, sout, serr)
	}
}
