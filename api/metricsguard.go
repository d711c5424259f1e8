package api

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
)

// MetricsGuard puts a handler outside the API server — a worker replica's
// /metrics — behind the API's bearer tokens: only a token with
// RightMetrics gets through (401 without a known token, 403 without the
// right). It is safe for concurrent use.
type MetricsGuard struct {
	legacy *Tokens
	tokens atomic.Pointer[Tokens]
}

// NewMetricsGuard accepts token (ORGDISPATCH_API_TOKEN, every right) and
// the scoped tokens ts (nil: none). At least one must be given.
func NewMetricsGuard(token string, ts *Tokens) (*MetricsGuard, error) {
	legacy, err := legacyTokens(token)
	if err != nil {
		return nil, err
	}
	if token == "" && ts == nil {
		return nil, errors.New("api: metrics guard: no token to require")
	}
	g := &MetricsGuard{legacy: legacy}
	g.SetTokens(ts)
	return g, nil
}

// SetTokens replaces the scoped tokens (a reloaded tokens file).
func (g *MetricsGuard) SetTokens(ts *Tokens) { g.tokens.Store(g.legacy.with(ts)) }

// Handler wraps next.
func (g *MetricsGuard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, ok := bearerScope(w, r, g.tokens.Load())
		if !ok {
			return
		}
		if !sc.may(RightMetrics) {
			writeError(w, http.StatusForbidden, "token \""+sc.name+"\" may not read metrics")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerScope resolves the request's bearer token in ts, or answers 401.
// A token read from a file or a Kubernetes Secret often ends in a newline
// that no client sends: it is trimmed (and so are the configured ones). A
// blank token matches nothing.
func bearerScope(w http.ResponseWriter, r *http.Request, ts *Tokens) (*scope, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orgdispatch"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token")
		return nil, false
	}
	sc, found := ts.lookup(cred)
	if !found {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orgdispatch", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid bearer token")
		return nil, false
	}
	return sc, true
}

// legacyTokens is ORGDISPATCH_API_TOKEN as a set of one full-rights token
// named LegacyTokenName; nil for "" or a token of white space only (which
// then matches nothing: fail closed).
func legacyTokens(token string) (*Tokens, error) {
	secret := strings.TrimSpace(token)
	if secret == "" {
		return nil, nil
	}
	ts, err := NewTokens(Token{Name: LegacyTokenName, Secret: secret, Tenants: []string{AllTenants}, Rights: AllRights})
	if err != nil {
		return nil, errors.Join(errors.New("api: ORGDISPATCH_API_TOKEN"), err)
	}
	return ts, nil
}
