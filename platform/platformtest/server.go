package platformtest

import (
	"net/http/httptest"
	"testing"
)

// Server is a Simulator served over HTTP on 127.0.0.1 by net/http/httptest.
type Server struct {
	*Simulator
	// URL is the API base, e.g. "http://127.0.0.1:43121"; the token endpoint
	// is TokenURL.
	URL string
}

// NewServer starts a simulator configured by cfg on a random 127.0.0.1
// port; t.Cleanup closes it. An invalid cfg fails the test.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("platformtest.NewServer: invalid Config: %v", err)
	}
	sim := New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return &Server{Simulator: sim, URL: ts.URL}
}

// TokenURL is the OAuth token endpoint: URL + "/oauth/token".
func (s *Server) TokenURL() string { return s.URL + tokenPath }
