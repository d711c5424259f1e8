package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/dashboard"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestHandlerServesAssetsWithContentTypes(t *testing.T) {
	h := dashboard.Handler()
	cases := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/app.js", "text/javascript; charset=utf-8", "v1/tenants"},
		{"/style.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, c.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", c.path, res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != c.contentType {
				t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.contentType)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", c.path, got)
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("GET %s: Content-Security-Policy %q does not lock the page to its origin", c.path, csp)
			}
			if b := body(t, res); !strings.Contains(b, c.contains) {
				t.Errorf("GET %s: body lacks %q", c.path, c.contains)
			}

			etag := res.Header.Get("ETag")
			if etag == "" {
				t.Fatalf("GET %s: no ETag", c.path)
			}
			again := get(t, h, http.MethodGet, c.path, http.Header{"If-None-Match": {etag}})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match: status %d, want 304", c.path, again.StatusCode)
			}

			head := get(t, h, http.MethodHead, c.path, nil)
			if head.StatusCode != http.StatusOK || body(t, head) != "" {
				t.Errorf("HEAD %s: status %d with a body, want 200 and none", c.path, head.StatusCode)
			}
		})
	}
}

func TestHandlerRejectsOtherPathsAndMethods(t *testing.T) {
	h := dashboard.Handler()
	for _, p := range []string{"/v1/tenants", "/assets/app.js", "/app.js/", "/favicon.ico", "/../go.mod"} {
		if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
	}
	res := get(t, h, http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}
	if allow := res.Header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("POST /: Allow %q, want %q", allow, "GET, HEAD")
	}
}

// svgNamespace is the one absolute URL the assets may hold: the XML namespace
// of the inline favicon, which is an identifier, never fetched.
const svgNamespace = "http://www.w3.org/2000/svg"

var (
	absoluteURL = regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp)(?::|%3A)(?://|%2F%2F)[^\s"'<>)]*`)
	// protocol-relative references ("//cdn.example/x.js") in attributes or CSS.
	protocolRelative = regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*["']?//|url\(\s*["']?//|@import`)
	// every src= or href= in the page.
	reference = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)
)

func TestAssetsReferenceNothingExternal(t *testing.T) {
	h := dashboard.Handler()
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		b := body(t, get(t, h, http.MethodGet, p, nil))
		for _, u := range absoluteURL.FindAllString(b, -1) {
			if u != svgNamespace {
				t.Errorf("%s holds an absolute URL %q: the dashboard must work offline", p, u)
			}
		}
		if m := protocolRelative.FindString(b); m != "" {
			t.Errorf("%s holds a protocol-relative or imported reference %q", p, m)
		}
		if strings.Contains(strings.ToLower(b), "@font-face") {
			t.Errorf("%s declares a web font: use the system font stack", p)
		}
	}

	// Every reference in the page is either inline (data:) or an asset the
	// handler serves, resolved relative to the page.
	page := body(t, get(t, h, http.MethodGet, "/", nil))
	refs := reference.FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d files, want at least app.js and style.css", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
			t.Errorf("index.html references %q: want a path relative to the page", ref)
			continue
		}
		if res := get(t, h, http.MethodGet, "/"+ref, nil); res.StatusCode != http.StatusOK {
			t.Errorf("index.html references %q, which the handler answers with %d", ref, res.StatusCode)
		}
	}
}
