package platformtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is an injected clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a simulator on a real 127.0.0.1 listener with a plain
// net/http client.
type harness struct {
	t     *testing.T
	srv   *Server
	clock *fakeClock
	http  *http.Client
}

var devClients = []ClientCred{
	{ID: "client_org1", Secret: "secret1", Org: "org_1"},
	{ID: "client_org2", Secret: "secret2", Org: "org_2"},
}

// newHarness starts a simulator with cfg; Now is a fake clock unless set,
// and Clients default to devClients.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock()}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.Clients == nil {
		cfg.Clients = devClients
	}
	h.srv = NewServer(t, cfg)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return h
}

// response is a read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

// apiErr decodes the standard error body and checks its shape.
func (r response) apiErr(t *testing.T) apiError {
	t.Helper()
	var raw map[string]json.RawMessage
	r.json(t, &raw)
	for _, k := range []string{"status", "code", "message", "contextId", "details", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("error body %s lacks %q", r.body, k)
		}
	}
	var e apiError
	r.json(t, &e)
	if e.Status != r.status {
		t.Fatalf("error body status %d, HTTP status %d", e.Status, r.status)
	}
	if id := r.header.Get("ININ-Correlation-Id"); e.ContextID == "" || e.ContextID != id {
		t.Fatalf("error body %s: contextId is not the ININ-Correlation-Id %q", r.body, id)
	}
	return e
}

func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// tokenRequest posts form to the token endpoint with Basic id:secret
// (no Authorization header when id is empty).
func (h *harness) tokenRequest(id, secret string, form url.Values) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return h.send(req)
}

var clientCredentials = url.Values{"grant_type": {"client_credentials"}}

// token fetches an access token for a configured client.
func (h *harness) token(id, secret string) string {
	h.t.Helper()
	r := h.tokenRequest(id, secret, clientCredentials)
	if r.status != http.StatusOK {
		h.t.Fatalf("token for %s: %d %s", id, r.status, r.body)
	}
	var tr tokenResponse
	r.json(h.t, &tr)
	if tr.AccessToken == "" {
		h.t.Fatalf("token for %s: empty access_token in %s", id, r.body)
	}
	return tr.AccessToken
}

// api sends an API request with a bearer token (none when token is
// empty); body is JSON-encoded unless it is a []byte or nil.
func (h *harness) api(method, path, token string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(req)
}

// wantStatus fails unless r has status want.
func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

// header returns r's header name as an int.
func headerInt(t *testing.T, r response, name string) int {
	t.Helper()
	v := r.header.Get(name)
	if v == "" {
		t.Fatalf("no %s header (headers %v)", name, r.header)
	}
	var n int
	if err := json.Unmarshal([]byte(v), &n); err != nil {
		t.Fatalf("%s: %q is not an integer", name, v)
	}
	return n
}

// counted is how many requests tok's main window has admitted, by the
// simulator's clock (0 once the window has ended): what the legacy
// inin-ratelimit-count header reports, read from the simulator's state.
func (h *harness) counted(tok string) int {
	h.t.Helper()
	v, ok := h.srv.tokens.Load(tok)
	if !ok {
		h.t.Fatalf("counted: unknown token")
	}
	return v.(*token).buckets.main.peek(h.clock.Now(), *h.srv.limits.Load()).count
}

// correlationRE matches an ININ-Correlation-Id: UUID-shaped (version 4).
var correlationRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// today checks what every answer of today's platform has: an
// ININ-Correlation-Id (repeated as contextId in an API error body) and no
// inin-ratelimit-* header. It returns the correlation id.
func today(t *testing.T, r response) string {
	t.Helper()
	id := r.header.Get("ININ-Correlation-Id")
	if !correlationRE.MatchString(id) {
		t.Fatalf("ININ-Correlation-Id %q is not UUID-shaped (headers %v)", id, r.header)
	}
	for name := range r.header {
		if strings.HasPrefix(strings.ToLower(name), "inin-ratelimit-") {
			t.Fatalf("answer has legacy header %s (headers %v)", name, r.header)
		}
	}
	return id
}

// rateLimited checks that r is the platform's normalized 429 with
// Retry-After retryAfter (also in the message) and the limit object want
// (nil: none), and that it has today's headers.
func rateLimited(t *testing.T, r response, retryAfter int, want *Limit) {
	t.Helper()
	wantStatus(t, r, http.StatusTooManyRequests)
	id := today(t, r)
	if got := headerInt(t, r, "Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %d, want %d", got, retryAfter)
	}
	e := r.apiErr(t)
	wantMsg := fmt.Sprintf("Rate limit exceeded the maximum. Retry the request in [%d] seconds", retryAfter)
	if e.Code != "too.many.requests.retry.after" || e.Message != wantMsg || e.ContextID != id {
		t.Fatalf("429 body %s (correlation id %s)", r.body, id)
	}
	switch {
	case want == nil && e.Limit != nil:
		t.Fatalf("429 body names a limit: %s", r.body)
	case want != nil && (e.Limit == nil || *e.Limit != *want):
		t.Fatalf("429 body %s, want limit %+v", r.body, *want)
	}
}

// mainLimit is the main limit object for limit requests per window.
func mainLimit(perMinute int) *Limit {
	return &Limit{Key: TokenRateLimitKey, Namespace: PlatformAPINamespace, Value: perMinute}
}
