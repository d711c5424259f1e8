package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
)

// rawCall sends a request with exactly the given headers (no token, no
// Content-Type unless given) and an optional Host.
func (e *env) rawCall(t *testing.T, method, path, host, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestCrossSiteWritesRefused plays what a page on another site can make the
// operator's browser send to an API without a token: simple (no preflight)
// POSTs with text/plain or form bodies, a foreign Origin, and a rebinding
// Host. Every write is refused and nothing changes; the API's own clients
// (JSON, same origin, or no browser headers) still work.
func TestCrossSiteWritesRefused(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Token = "" }))
	seq := e.storeDeadLetter(t, "org_a", "d1", "permanent")
	pause := `{"duration":"24h","reason":"pwned"}`
	job := `{"id":"x1","tenant":"org_a","op":"api.request","params":{"method":"DELETE","path":"/api/v2/outbound/campaigns/c1"}}`
	for _, tc := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		want                           int
	}{
		{"text/plain job", "POST", "/v1/jobs", "", job, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"form pause", "POST", "/v1/tenants/org_a/pause", "", pause, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"multipart pause", "POST", "/v1/tenants/org_a/pause", "", pause, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, http.StatusUnsupportedMediaType},
		{"no content type job", "POST", "/v1/jobs", "", job, nil, http.StatusUnsupportedMediaType},
		{"bodiless resume", "POST", "/v1/tenants/org_a/resume", "", "", nil, http.StatusUnsupportedMediaType},
		{"bodiless replay", "POST", "/v1/dlq/1/replay", "", "", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"foreign origin json", "POST", "/v1/jobs", "", job, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"null origin", "POST", "/v1/tenants/org_a/pause", "", pause, map[string]string{"Content-Type": "application/json", "Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch", "POST", "/v1/tenants/org_a/pause", "", pause, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site other port", "DELETE", "/v1/dlq/1", "", "", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"rebinding host pause", "POST", "/v1/tenants/org_a/pause", "evil.example:8080", pause, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example:8080", "Sec-Fetch-Site": "same-origin"}, http.StatusMisdirectedRequest},
		{"rebinding host delete", "DELETE", "/v1/dlq/1", "evil.example", "", nil, http.StatusMisdirectedRequest},
		{"rebinding host read", "GET", "/v1/tenants", "evil.example:8080", "", nil, http.StatusMisdirectedRequest},
		{"rebinding host metrics", "GET", "/metrics", "rebind.evil.example", "", nil, http.StatusMisdirectedRequest},
		{"localhost subdomain", "GET", "/v1/dlq", "a.localhost", "", nil, http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.rawCall(t, tc.method, tc.path, tc.host, tc.body, tc.header)
			if a.status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.want)
			}
			a.errorText(t)
		})
	}
	if n := e.jobsInStream(t); n != 0 {
		t.Errorf("%d jobs published by refused requests", n)
	}
	ts, err := e.admin.Tenant(t.Context(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	if ts.Paused {
		t.Errorf("org_a paused by a refused request: %+v", ts)
	}
	if _, err := e.admin.DeadLetter(t.Context(), seq); err != nil {
		t.Errorf("dead letter gone after refused requests: %v", err)
	}

	// The API's own clients: JSON from the same origin (the dashboard), or
	// from a program that sends no browser headers (curl, the CLI).
	self := e.url // http://127.0.0.1:port
	for _, tc := range []struct {
		name   string
		host   string
		header map[string]string
	}{
		{"same-origin browser", "", map[string]string{"Content-Type": "application/json", "Origin": self, "Sec-Fetch-Site": "same-origin"}},
		{"curl", "", map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		{"localhost", "localhost:" + self[strings.LastIndex(self, ":")+1:], map[string]string{"Content-Type": "application/json"}},
	} {
		a := e.rawCall(t, "POST", "/v1/tenants/org_a/resume", tc.host, "", tc.header)
		if a.status != http.StatusOK {
			t.Errorf("%s: resume: %d %s", tc.name, a.status, a.body)
		}
	}
	for _, host := range []string{"", "localhost", "[::1]:8080", "10.1.2.3:8080"} {
		if a := e.rawCall(t, "GET", "/v1/tenants", host, "", map[string]string{"Sec-Fetch-Site": "same-origin"}); a.status != http.StatusOK {
			t.Errorf("GET /v1/tenants with Host %q: %d %s", host, a.status, a.body)
		}
	}
	c, err := api.NewClient(e.url, "", e.hc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pause(t.Context(), "org_a", time.Minute, "by the client"); err != nil {
		t.Errorf("client pause: %v", err)
	}
	if _, err := c.Resume(t.Context(), "org_a"); err != nil {
		t.Errorf("client resume: %v", err)
	}
	if err := c.DeleteDeadLetter(t.Context(), seq); err != nil {
		t.Errorf("client delete: %v", err)
	}
}

func TestConfiguredHosts(t *testing.T) {
	e := newEnv(t, withAPIConfig(func(c *api.Config) { c.Hosts = []string{"orgdispatch.internal", "API.example."} }))
	for host, want := range map[string]int{
		"orgdispatch.internal:8080": http.StatusOK,
		"api.example":               http.StatusOK,
		"api.example.:443":          http.StatusOK,
		"localhost":                 http.StatusMisdirectedRequest, // not configured any more
		"other.example":             http.StatusMisdirectedRequest,
		"127.0.0.1:9":               http.StatusOK, // IP literals: never a rebinding
	} {
		a := e.rawCall(t, "GET", "/v1/tenants", host, "", map[string]string{"Authorization": "Bearer " + e.token})
		if a.status != want {
			t.Errorf("Host %q: %d %s, want %d", host, a.status, a.body, want)
		}
	}
	any := newEnv(t, withAPIConfig(func(c *api.Config) { c.Hosts = []string{api.AnyHost} }))
	if a := any.rawCall(t, "GET", "/healthz", "whatever.example", "", nil); a.status != http.StatusOK {
		t.Errorf("Hosts *: %d %s", a.status, a.body)
	}
}
