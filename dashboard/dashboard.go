// Package dashboard serves orgdispatch's live operator dashboard: a single
// page that polls the HTTP API's GET /v1/tenants about once a second and shows
// one lane per tenant — live throughput, backlog, in flight, rate, pause
// countdown and reason, 429s and the last error — with totals, sorting and a
// filter that stay smooth at 1,000 tenants.
//
// The page is three static files embedded in the binary (no front-end build
// step, no CDN, no external fonts), so it works offline. It calls the API with
// paths relative to where it is served, so mount Handler at the root of the
// server that also answers /v1/ (or behind a proxy that keeps that relation).
// When the API answers 401 the page asks for the API token, keeps it in the
// tab's sessionStorage and sends it as a Bearer header.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

//go:embed assets/index.html assets/app.js assets/style.css
var assets embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// files maps a request path to its asset. Content types are fixed here rather
// than taken from the mime package, whose answer depends on the host's
// /etc/mime.types.
var files = mustLoad(map[string]string{
	"/":           "assets/index.html",
	"/index.html": "assets/index.html",
	"/app.js":     "assets/app.js",
	"/style.css":  "assets/style.css",
})

var contentTypes = map[string]string{
	"assets/index.html": "text/html; charset=utf-8",
	"assets/app.js":     "text/javascript; charset=utf-8",
	"assets/style.css":  "text/css; charset=utf-8",
}

// contentSecurityPolicy allows nothing but this origin: the page loads no
// third-party script, style, font or image, and talks only to its own API.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func mustLoad(paths map[string]string) map[string]asset {
	out := make(map[string]asset, len(paths))
	for route, name := range paths {
		body, err := assets.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("dashboard: embedded asset %s: %v", name, err))
		}
		sum := sha256.Sum256(body)
		out[route] = asset{
			body:        body,
			contentType: contentTypes[name],
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
	return out
}

// Handler returns the dashboard: GET / (the page), /app.js and /style.css.
// Any other path is 404 and any method other than GET or HEAD is 405, so it
// can be mounted as the catch-all "/" route beside the API's /v1/ routes.
// Responses carry an ETag and "Cache-Control: no-cache", so a browser
// revalidates cheaply and picks up a new binary's assets at once.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
