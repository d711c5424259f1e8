package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestAPICommand runs `orgdispatch api` against its embedded server: the
// tenants file's consumers are provisioned, jobs are accepted (and wait: no
// workers), /metrics shows the dispatchable backlog, and a tenant added to
// the file is provisioned by the reload.
func TestAPICommand(t *testing.T) {
	tenantsFile := writeTenants(t, "http://127.0.0.1:1")
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN":  "off",
		"ORGDISPATCH_STORE_DIR":    t.TempDir(),
		"ORGDISPATCH_TENANTS_FILE": tenantsFile,
		"ORGDISPATCH_HTTP_ADDR":    "127.0.0.1:0",
		"ORGDISPATCH_API_TOKEN":    "tok-api-test",
		"ORGDISPATCH_LOG_LEVEL":    "warn",
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutputLines()
	var errb lockedBuf
	done := make(chan error, 1)
	go func() { done <- runAPI(ctx, nil, out, &errb) }()
	base := out.waitLine(t, regexp.MustCompile(`HTTP +(http://127\.0\.0\.1:\d+)`), 15*time.Second)[1]

	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer tok-api-test")
		if method != "GET" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := call("POST", "/v1/jobs", `{"id":"j-1","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c-1"}}`); code != 202 {
		t.Fatalf("POST /v1/jobs: %d %s", code, body)
	}
	code, body := call("GET", "/v1/tenants/org_1", "")
	var st struct {
		Backlog int    `json:"backlog"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Backlog != 1 || st.State != "no workers" {
		t.Errorf("GET /v1/tenants/org_1: %d %s", code, body)
	}
	if code, body := call("GET", "/metrics", ""); code != 200 || !strings.Contains(body, "orgdispatch_dispatchable_backlog 1\n") {
		t.Errorf("GET /metrics: %d, no dispatchable backlog of 1:\n%s", code, body)
	}

	// Add org_2 to the file: the api provisions its consumer.
	data, err := os.ReadFile(tenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.ReplaceAll(strings.SplitN(string(data), "\n", 2)[1], "org_1", "org_2")
	if err := os.WriteFile(tenantsFile, append(data, added...), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := call("GET", "/v1/tenants/org_2", "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("org_2 not provisioned 15s after it was added: %d %s\nstderr:\n%s", code, body, errb.String())
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case err := <-done:
			t.Fatalf("api stopped: %v", err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("api returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("api did not stop within 10s of cancel")
	}
	if strings.Contains(errb.String(), "tok-api-test") || strings.Contains(errb.String(), "secret_org_1") {
		t.Errorf("the log shows a secret:\n%s", errb.String())
	}
}

func TestAPICommandRefusesOpenListener(t *testing.T) {
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN": "off",
		"ORGDISPATCH_STORE_DIR":   t.TempDir(),
		"ORGDISPATCH_HTTP_ADDR":   "0.0.0.0:0",
		// No tenants file named, none at the default path: optional.
	})
	t.Chdir(t.TempDir())
	code, _, errs := runCLI(t, "api")
	if code != 1 || !strings.Contains(errs, "ORGDISPATCH_API_TOKEN") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}

	onlyEnv(t, map[string]string{"ORGDISPATCH_TENANTS_FILE": filepath.Join(t.TempDir(), "missing.yaml")})
	code, _, errs = runCLI(t, "api")
	if code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("a named tenants file that is missing: exit %d, stderr %q", code, errs)
	}
}

func TestHealthCommand(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, `{"error":"not ready: NATS connection is RECONNECTING"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"status":"ready"}`)
	}))
	defer srv.Close()
	onlyEnv(t, map[string]string{"ORGDISPATCH_HTTP_ADDR": "0.0.0.0:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]})

	code, _, errs := runCLI(t, "health")
	if code != 1 || !strings.Contains(errs, "503") || !strings.Contains(errs, "RECONNECTING") {
		t.Errorf("not ready: exit %d, stderr %q", code, errs)
	}
	ready.Store(true)
	code, out, errs := runCLI(t, "health")
	if code != 0 || !strings.Contains(out, "healthy: http://127.0.0.1:") {
		t.Errorf("ready: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = runCLI(t, "health", "--url", srv.URL+"/nope")
	if code != 1 || !strings.Contains(errs, "404") {
		t.Errorf("--url to a 404: exit %d, stderr %q", code, errs)
	}
	srv.Close()
	code, _, errs = runCLI(t, "health")
	if code != 1 || !strings.Contains(errs, "not healthy") {
		t.Errorf("nothing listening: exit %d, stderr %q", code, errs)
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/readyz",
		":9000":          "http://127.0.0.1:9000/readyz",
		"[::]:9000":      "http://127.0.0.1:9000/readyz",
		"10.0.0.5:8080":  "http://10.0.0.5:8080/readyz",
		"[::1]:8080":     "http://[::1]:8080/readyz",
		"localhost:8081": "http://localhost:8081/readyz",
	} {
		if got, err := readyzURL(addr); err != nil || got != want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := readyzURL("nonsense"); err == nil {
		t.Error("readyzURL accepted an address without a port")
	}
}

func TestListenNeedsTokenOrExplicitOptOutOffLoopback(t *testing.T) {
	w := newWeb()
	if _, err := w.listen("0.0.0.0:0", "", false); err == nil || !strings.Contains(err.Error(), "ORGDISPATCH_API_ALLOW_NO_AUTH") {
		t.Fatalf("open API on 0.0.0.0 without opt-out: err = %v, want a refusal naming the settings", err)
	}
	for _, c := range []struct {
		name, token string
		allow       bool
	}{{"token", "tok", false}, {"explicit opt-out", "", true}} {
		ln, err := w.listen("0.0.0.0:0", c.token, c.allow)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ln.Close()
	}
}

// serve, worker and api never die of SIGHUP: it means "reload".
func TestLongRunningCommandsKeepRunningOnHangup(t *testing.T) {
	keepRunningOnHangup()
	if !signal.Ignored(syscall.SIGHUP) {
		t.Fatal("SIGHUP is not ignored: it would end the process before the tenants watcher listens")
	}
}
