package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// scopeKey is the request context key of the request's *scope.
type scopeKey struct{}

// scopeOf returns the scope authorize gave the request.
func scopeOf(r *http.Request) *scope {
	if sc, ok := r.Context().Value(scopeKey{}).(*scope); ok {
		return sc
	}
	return fullScope // only reachable without authorize, i.e. no auth
}

// authRequired reports whether requests need a token: a token or a tokens
// set was configured. A tokens set reloaded down to nothing then matches
// nothing (fail closed), it does not open the API.
func (s *Server) authRequired() bool { return s.authOn }

// authorize resolves the request's bearer token to its scope, or answers
// 401. Without any configured token every request has the full scope.
// Token comparison is in constant time (see Tokens.lookup).
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authRequired() {
			next.ServeHTTP(w, r)
			return
		}
		sc, ok := bearerScope(w, r, s.tokens.Load())
		if !ok {
			if r.Header.Get("Authorization") != "" { // a token was tried
				s.refused(r, "", "", "invalid bearer token")
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc)))
	})
}

// need lets a request through to h only when its token holds right.
func (s *Server) need(right Right, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc := scopeOf(r)
		if !sc.may(right) {
			tenant := ""
			if strings.HasPrefix(r.URL.Path, "/v1/tenants/") {
				tenant = r.PathValue("id")
			}
			s.forbid(w, r, sc, tenant, fmt.Sprintf("token %q may not %s", sc.name, right))
			return
		}
		h(w, r)
	}
}

// forbid answers 403 for a token used beyond its scope, and records it.
func (s *Server) forbid(w http.ResponseWriter, r *http.Request, sc *scope, tenant, why string) {
	s.refused(r, sc.name, tenant, why)
	writeError(w, http.StatusForbidden, why)
}

// forbidTenant answers 403 for a tenant outside the token's scope.
func (s *Server) forbidTenant(w http.ResponseWriter, r *http.Request, sc *scope, tenant string, right Right) {
	s.forbid(w, r, sc, tenant, fmt.Sprintf("token %q may not %s tenant %q", sc.name, right, tenant))
}

// SetTokens replaces the scoped tokens (a reloaded tokens file), keeping
// Config.Token. It has no effect on a server built without any token or
// tokens (authentication cannot be turned on or off at run time).
func (s *Server) SetTokens(t *Tokens) {
	s.tokens.Store(s.legacy.with(t))
}

// ErrInsecureListen is returned by CheckListen for a non-loopback address
// without a token.
var ErrInsecureListen = errors.New("refusing to serve the API without a token on a non-loopback address")

// CheckListen refuses to serve the API on addr (host:port) without a token
// unless addr is a loopback address (127.0.0.0/8, ::1, localhost) or
// allowInsecure is set. An empty host (":8080") means every interface and is
// not loopback; a host name other than localhost is not resolved and counts
// as not loopback.
func CheckListen(addr, token string, allowInsecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: listen address %q: %w", addr, err)
	}
	if token != "" || allowInsecure || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("api: %s: %w (set an API token, listen on a loopback address such as 127.0.0.1, or allow an insecure listener explicitly)", addr, ErrInsecureListen)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
