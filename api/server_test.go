package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/api"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, authorization string
		wantChallenge       string
	}{
		{"missing", "", `Bearer realm="orgdispatch"`},
		{"other scheme", "Basic " + testToken, `Bearer realm="orgdispatch"`},
		{"empty bearer", "Bearer ", `Bearer realm="orgdispatch"`},
		{"blank bearer", "Bearer  \t ", `Bearer realm="orgdispatch"`},
		{"wrong", "Bearer wrong-token", `Bearer realm="orgdispatch", error="invalid_token"`},
		{"prefix of the token", "Bearer " + testToken[:5], `Bearer realm="orgdispatch", error="invalid_token"`},
		{"token plus more", "Bearer " + testToken + "x", `Bearer realm="orgdispatch", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct{ method, path string }{
				{"GET", "/v1/tenants"}, {"POST", "/v1/jobs"}, {"GET", "/v1/dlq"},
				{"POST", "/v1/tenants/org_a/pause"}, {"DELETE", "/v1/dlq/1"}, {"GET", "/v1/no-such-endpoint"},
			} {
				a := e.callWith(t, tc.authorization, req.method, req.path, nil)
				if a.status != http.StatusUnauthorized {
					t.Errorf("%s %s: %d, want 401", req.method, req.path, a.status)
					continue
				}
				if got := a.header.Get("WWW-Authenticate"); got != tc.wantChallenge {
					t.Errorf("%s %s: WWW-Authenticate %q, want %q", req.method, req.path, got, tc.wantChallenge)
				}
				a.errorText(t)
			}
		})
	}
	if a := e.callWith(t, "bearer "+testToken, "GET", "/v1/tenants", nil); a.status != http.StatusOK {
		t.Errorf("right token (scheme in lower case): %d %s", a.status, a.body)
	}
	// Health, readiness and metrics are for probes and scrapers: no token.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if a := e.callWith(t, "", "GET", path, nil); a.status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, a.status, a.body)
		}
	}
}

func TestNoTokenLeavesV1Open(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Token = "" }))
	if a := e.callWith(t, "", "GET", "/v1/tenants", nil); a.status != http.StatusOK {
		t.Errorf("GET /v1/tenants without a configured token: %d %s", a.status, a.body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t)
	if a := e.call(t, "GET", "/healthz", nil); a.status != http.StatusOK || !strings.Contains(string(a.body), `"ok"`) {
		t.Errorf("/healthz: %d %s", a.status, a.body)
	}
	if a := e.call(t, "GET", "/readyz", nil); a.status != http.StatusOK {
		t.Errorf("/readyz when provisioned: %d %s", a.status, a.body)
	}
	// A stream gone: not ready.
	if err := e.js.DeleteStream(t.Context(), e.names.DLQStream()); err != nil {
		t.Fatal(err)
	}
	a := e.call(t, "GET", "/readyz", nil)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.errorText(t), e.names.DLQStream()) {
		t.Errorf("/readyz without the dead-letter stream: %d %s, want 503 naming it", a.status, a.body)
	}
	// NATS gone: not ready.
	e.nc.Close()
	a = e.call(t, "GET", "/readyz", nil)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.errorText(t), "NATS") {
		t.Errorf("/readyz with NATS closed: %d %s, want 503", a.status, a.body)
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	a := e.call(t, "PUT", "/v1/jobs", "{}")
	if a.status != http.StatusMethodNotAllowed || !strings.Contains(a.header.Get("Allow"), "POST") {
		t.Errorf("PUT /v1/jobs: %d, Allow %q", a.status, a.header.Get("Allow"))
	}
	a.errorText(t)
	a = e.call(t, "GET", "/v1/nothing", nil)
	if a.status != http.StatusNotFound {
		t.Errorf("GET /v1/nothing: %d", a.status)
	}
	a.errorText(t)
	// Without a dashboard, / is not found.
	a = e.call(t, "GET", "/", nil)
	if a.status != http.StatusNotFound {
		t.Errorf("GET / without a dashboard: %d", a.status)
	}
	a.errorText(t)
}

func TestDashboardServesTheRest(t *testing.T) {
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "dashboard "+r.URL.Path)
	})
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Dashboard = dash }))
	for _, path := range []string{"/", "/app.js"} {
		if a := e.callWith(t, "", "GET", path, nil); a.status != http.StatusOK || string(a.body) != "dashboard "+path {
			t.Errorf("GET %s: %d %q", path, a.status, a.body)
		}
	}
	// The API stays the API.
	if a := e.callWith(t, "", "GET", "/v1/tenants", nil); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/tenants without a token behind a dashboard: %d", a.status)
	}
	if a := e.call(t, "GET", "/healthz", nil); a.status != http.StatusOK || !strings.Contains(string(a.body), "ok") {
		t.Errorf("GET /healthz behind a dashboard: %d %s", a.status, a.body)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := api.New(api.Config{}); err == nil {
		t.Error("New without Admin and Publisher succeeded")
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		insecure    bool
		ok          bool
	}{
		{"127.0.0.1:8080", "", false, true},
		{"127.0.0.2:8080", "", false, true},
		{"localhost:8080", "", false, true},
		{"[::1]:8080", "", false, true},
		{"127.0.0.1:0", "", false, true},
		{":8080", "", false, false},
		{"0.0.0.0:8080", "", false, false},
		{"[::]:8080", "", false, false},
		{"10.1.2.3:8080", "", false, false},
		{"api.example.com:8080", "", false, false},
		{":8080", "tok", false, true},
		{"0.0.0.0:8080", "tok", false, true},
		{"0.0.0.0:8080", "", true, true},
		{"no-port", "tok", false, false},
	} {
		err := api.CheckListen(tc.addr, tc.token, tc.insecure)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, token %v, insecure %v) = %v, want ok %v", tc.addr, tc.token != "", tc.insecure, err, tc.ok)
		}
		if err != nil && tc.addr != "no-port" && !errors.Is(err, api.ErrInsecureListen) {
			t.Errorf("CheckListen(%q): %v, want ErrInsecureListen", tc.addr, err)
		}
	}
}

func TestRunRefusesAnInsecureAddress(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Token = "" }))
	err := e.server.Run(t.Context(), "0.0.0.0:0")
	if !errors.Is(err, api.ErrInsecureListen) {
		t.Errorf("Run on 0.0.0.0 without a token: %v, want ErrInsecureListen", err)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.server.Serve(ctx, ln) }()
	resp, err := e.hc.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz over Serve: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v, want nil", err)
	}
	if _, err := e.hc.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// TestTokenWithSurroundingWhitespace: a token read from a file or a
// Kubernetes Secret often ends in a newline. The server trims what clients
// present, so it must trim the configured token too, or nobody can ever
// authenticate; the client must not send the newline (Go refuses such a
// header).
func TestTokenWithSurroundingWhitespace(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Token = testToken + "\n" }))
	if a := e.callWith(t, "Bearer "+testToken, "GET", "/v1/tenants", nil); a.status != http.StatusOK {
		t.Errorf("token configured with a trailing newline, presented without: %d %s", a.status, a.body)
	}
	if a := e.callWith(t, "Bearer wrong", "GET", "/v1/tenants", nil); a.status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", a.status)
	}
	c, err := api.NewClient(e.url, " "+testToken+"\n", e.hc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenants(t.Context()); err != nil {
		t.Errorf("client with a token read with its trailing newline: %v", err)
	}

	// A token of white space only is set (the API is not open) and matches
	// nothing.
	blank := newEnv(t, withAPIConfig(func(c *api.Config) { c.Token = " \n" }))
	for _, authz := range []string{"", "Bearer x", "Bearer  "} {
		if a := blank.callWith(t, authz, "GET", "/v1/tenants", nil); a.status != http.StatusUnauthorized {
			t.Errorf("blank configured token, Authorization %q: %d, want 401", authz, a.status)
		}
	}
}
