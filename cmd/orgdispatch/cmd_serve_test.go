package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// outputLines collects output and sends each complete line on a channel.
type outputLines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newOutputLines() *outputLines { return &outputLines{lines: make(chan string, 100)} }

func (w *outputLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep it
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSuffix(line, "\n"):
		default:
		}
	}
}

// waitLine returns the first line matching re, failing the test after d.
func (w *outputLines) waitLine(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l := <-w.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line matching %s within %s", re, d)
		}
	}
}

func writeTenants(t *testing.T, apiBase string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	yaml := fmt.Sprintf(`tenants:
  - id: org_1
    client_id: client_org_1
    client_secret: secret_org_1
    api_base: %s
    token_url: %s/oauth/token
    rate_per_minute: 600
`, apiBase, apiBase)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeEmbeddedRunsPublishedJob runs `serve` with the embedded server on
// a random loopback port, publishes a job to it with `publish`, sees the
// simulator receive the platform request, and stops serve like Ctrl-C does.
func TestServeEmbeddedRunsPublishedJob(t *testing.T) {
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients:    []platformtest.ClientCred{{ID: "client_org_1", Secret: "secret_org_1", Org: "org_1"}},
		AutoCreate: true,
	})
	hit := make(chan platformtest.Request, 10)
	sim.OnRequest(func(r platformtest.Request) {
		if strings.HasPrefix(r.Path, "/api/v2/outbound/") {
			select {
			case hit <- r:
			default:
			}
		}
	})
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN":      "127.0.0.1:0",
		"ORGDISPATCH_STORE_DIR":        t.TempDir(),
		"ORGDISPATCH_TENANTS_FILE":     writeTenants(t, sim.URL),
		"ORGDISPATCH_HTTP_ADDR":        "127.0.0.1:0",
		"ORGDISPATCH_API_TOKEN":        "test-token",
		"ORGDISPATCH_SHUTDOWN_TIMEOUT": "2s",
		"ORGDISPATCH_LOG_LEVEL":        "warn",
		"ORGDISPATCH_CONSUMER_STORAGE": "file",
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutputLines()
	var errb lockedBuf
	done := make(chan error, 1)
	go func() { done <- runNode(ctx, "serve", nil, out, &errb) }()

	m := out.waitLine(t, regexp.MustCompile(`NATS +embedded, listening on (nats://127\.0\.0\.1:\d+)`), 15*time.Second)
	natsURL := m[1]
	out.waitLine(t, regexp.MustCompile(`tenants +1 `), time.Second)
	apiURL := out.waitLine(t, regexp.MustCompile(`HTTP +(http://127\.0\.0\.1:\d+)$`), time.Second)[1]

	// ORGDISPATCH_CONSUMER_STORAGE reached the provisioned consumer.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, dispatcher.MustNames("").JobsStream("org_1"), "tenant_org_1")
	if err != nil {
		t.Fatal(err)
	}
	if cons.CachedInfo().Config.MemoryStorage {
		t.Error("ORGDISPATCH_CONSUMER_STORAGE=file (not the default): the tenant's consumer has memory storage")
	}

	t.Setenv("ORGDISPATCH_NATS_URL", natsURL)
	code, pout, perr := runCLI(t, "publish", "--tenant", "org_1", "--op", "campaign.start", "--id", "j-1", "--params", `{"campaign_id":"cmp-1"}`)
	if code != 0 || pout != "accepted org_1/j-1 seq 1\n" {
		t.Fatalf("publish: exit %d, stdout %q, stderr %q", code, pout, perr)
	}

	select {
	case r := <-hit:
		if r.ClientID != "client_org_1" || r.Method != "POST" || r.Path != "/api/v2/outbound/campaigns/cmp-1/start" || r.Status/100 != 2 {
			t.Errorf("platform request = %+v", r)
		}
	case err := <-done:
		t.Fatalf("serve stopped: %v\n%s", err, errb.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("the job never reached the platform\nstderr: %s", errb.String())
	}

	// The HTTP API is up, behind the token, with metrics and the dashboard.
	for _, c := range []struct {
		path, token string
		status      int
		body        string
	}{
		{"/readyz", "", 200, ""},
		{"/v1/tenants", "", 401, ""},
		{"/v1/tenants", "test-token", 200, `"org_1"`},
		{"/metrics", "", 200, "orgdispatch_platform_requests_total"},
		{"/", "", 200, "<html"},
	} {
		get := func() (*http.Response, []byte) {
			req, _ := http.NewRequestWithContext(ctx, "GET", apiURL+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", c.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, body
		}
		resp, body := get()
		// The simulator saw the request before the worker had its answer:
		// the metric may lag the request by a moment.
		for deadline := time.Now().Add(5 * time.Second); c.path == "/metrics" && !strings.Contains(string(body), c.body) && time.Now().Before(deadline); {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			resp, body = get()
		}
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
			t.Errorf("GET %s (token %q): %d %.300s; want %d with %q", c.path, c.token, resp.StatusCode, body, c.status, c.body)
		}
	}

	cancel() // as SIGINT does
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop within 5s of cancel")
	}
	if s := errb.String(); strings.Contains(s, "secret_org_1") || strings.Contains(s, "test-token") {
		t.Errorf("log shows a client secret:\n%s", s)
	}
}

// lockedBuf is a bytes.Buffer safe for concurrent writers and readers.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWorkerNeedsARunningServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_LISTEN":  addr,
		"ORGDISPATCH_TENANTS_FILE": writeTenants(t, "http://127.0.0.1:1"),
	})
	code, _, errs := runCLI(t, "worker")
	if code != 1 || !strings.Contains(errs, "no NATS server at nats://"+addr+" — start `orgdispatch serve`") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestServeConfigErrors(t *testing.T) {
	onlyEnv(t, map[string]string{"ORGDISPATCH_LOG_FORMAT": "xml", "ORGDISPATCH_API_TOKEN": "tok-123"})
	code, _, errs := runCLI(t, "serve")
	if code != 1 || !strings.Contains(errs, "ORGDISPATCH_LOG_FORMAT") || strings.Contains(errs, "tok-123") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}

	onlyEnv(t, map[string]string{"ORGDISPATCH_TENANTS_FILE": filepath.Join(t.TempDir(), "missing.yaml")})
	code, _, errs = runCLI(t, "serve")
	if code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("missing tenants file: exit %d, stderr %q", code, errs)
	}

	code, _, errs = runCLI(t, "serve", "extra")
	if code != 2 || !strings.Contains(errs, "unexpected arguments") {
		t.Errorf("extra argument: exit %d, stderr %q", code, errs)
	}
}

func TestHelp(t *testing.T) {
	onlyEnv(t, nil)
	code, out, _ := runCLI(t, "help", "env")
	if code != 0 || !strings.Contains(out, "ORGDISPATCH_NATS_URL") || !strings.Contains(out, "ORGDISPATCH_LOG_FORMAT") || !strings.Contains(out, "ORGDISPATCH_API_TOKENS_FILE") || !strings.Contains(out, "ORGDISPATCH_HTTP_HOSTS") {
		t.Errorf("help env: exit %d, stdout %q", code, out)
	}
	code, _, errs := runCLI(t, "serve", "-h")
	if code != 0 || !strings.Contains(errs, "Usage: orgdispatch serve") || !strings.Contains(errs, "ORGDISPATCH_SHUTDOWN_TIMEOUT") {
		t.Errorf("serve -h: exit %d, stderr %q", code, errs)
	}
	code, out, _ = runCLI(t, "help", "publish")
	if code != 0 || !strings.Contains(out, "--stdin") && !strings.Contains(out, "-stdin") {
		t.Errorf("help publish: exit %d, stdout %q", code, out)
	}
	code, _, errs = runCLI(t, "help", "nonsense")
	if code != 2 || !strings.Contains(errs, "nonsense") {
		t.Errorf("help nonsense: exit %d, stderr %q", code, errs)
	}
	code, out, _ = runCLI(t)
	if code != 2 || !strings.Contains(out, "help env") {
		t.Errorf("no arguments: exit %d, stdout %q", code, out)
	}
}

func TestDemoCommandWithHTTP(t *testing.T) {
	onlyEnv(t, nil)
	code, out, errs := runCLI(t, "demo", "--duration", "1500ms", "--tenants", "2", "--http", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"HTTP      http://127.0.0.1:", "org_noisy", "org_quiet_1", "+1s", "stopped after"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = runCLI(t, "demo", "--tenants", "1")
	if code != 2 || !strings.Contains(errs, "--tenants 1") {
		t.Errorf("demo --tenants 1: exit %d, stderr %q", code, errs)
	}
}
