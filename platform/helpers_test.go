package platform

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sharedTransport.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	testClientID = "client-org1"
	testSecret   = "s3cr3t/Value+with=chars"
)

// seenToken is one request to the fake token endpoint.
type seenToken struct {
	method, path, contentType string
	user, pass                string
	basicOK                   bool
	form                      map[string][]string
}

// seenAPI is one request to the fake API.
type seenAPI struct {
	method, rawPath, rawQuery string
	header                    http.Header
	body                      []byte
}

// fakePlatform is a canned Genesys Cloud on 127.0.0.1: a token endpoint at
// /oauth/token (tokens "tok-1", "tok-2", …, expires_in 3600 unless token is
// set) and an API answering with api (default: 200 {}).
type fakePlatform struct {
	srv *httptest.Server

	mu        sync.Mutex
	tokens    []seenToken
	calls     []seenAPI
	tokenFunc func(w http.ResponseWriter, r *http.Request, n int) // n: 1-based token request number
	apiFunc   func(w http.ResponseWriter, r *http.Request, n int) // n: 1-based API request number
}

func newFakePlatform(t *testing.T) *fakePlatform {
	t.Helper()
	fp := &fakePlatform{}
	fp.srv = httptest.NewServer(http.HandlerFunc(fp.serve))
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *fakePlatform) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		_ = r.ParseForm()
		user, pass, ok := r.BasicAuth()
		fp.mu.Lock()
		fp.tokens = append(fp.tokens, seenToken{r.Method, r.URL.Path, r.Header.Get("Content-Type"), user, pass, ok, r.PostForm})
		n, f := len(fp.tokens), fp.tokenFunc
		fp.mu.Unlock()
		if f != nil {
			f(w, r, n)
			return
		}
		writeToken(w, fmt.Sprintf("tok-%d", n), 3600)
		return
	}
	body, _ := io.ReadAll(r.Body)
	fp.mu.Lock()
	fp.calls = append(fp.calls, seenAPI{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
	n, f := len(fp.calls), fp.apiFunc
	fp.mu.Unlock()
	if f != nil {
		f(w, r, n)
		return
	}
	writeJSON(w, http.StatusOK, `{}`)
}

func (fp *fakePlatform) setToken(f func(w http.ResponseWriter, r *http.Request, n int)) {
	fp.mu.Lock()
	fp.tokenFunc = f
	fp.mu.Unlock()
}

func (fp *fakePlatform) setAPI(f func(w http.ResponseWriter, r *http.Request, n int)) {
	fp.mu.Lock()
	fp.apiFunc = f
	fp.mu.Unlock()
}

func (fp *fakePlatform) tokenRequests() []seenToken {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]seenToken(nil), fp.tokens...)
}

func (fp *fakePlatform) apiRequests() []seenAPI {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]seenAPI(nil), fp.calls...)
}

func writeToken(w http.ResponseWriter, access string, expiresIn int) {
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":%d}`, access, expiresIn))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// newTestClient builds a Client for fp; edit may change the config.
func newTestClient(t *testing.T, fp *fakePlatform, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		APIBase:      fp.srv.URL,
		TokenURL:     fp.srv.URL + "/oauth/token",
		ClientID:     testClientID,
		ClientSecret: testSecret,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: testNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
