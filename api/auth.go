package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// authorize requires the bearer token on every request when one is set.
// The comparison is in constant time (of SHA-256 digests, so the token's
// length does not leak either).
func (s *Server) authorize(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	// Both sides are trimmed: a token read from a file or a Kubernetes
	// Secret often ends in a newline that no client sends. A token of
	// white space only matches nothing (fail closed).
	token := strings.TrimSpace(s.cfg.Token)
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		cred = strings.TrimSpace(cred)
		if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgdispatch"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		got := sha256.Sum256([]byte(cred))
		if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.refused(r, "", "invalid bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgdispatch", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
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

// refused records a refused request: a bad token, a token without the
// right, a foreign Host or a cross-site write. tokenName is "" when no
// known token was presented.
func (s *Server) refused(r *http.Request, tokenName, why string) {
	s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "token", tokenName, "why", why)
}
