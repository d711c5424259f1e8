// Package tenants is the registry of customer orgs: the tenants file, its
// strict decoding and validation, client secrets, and the resolved per-tenant
// settings (endpoints, quota, concurrency) the worker and dispatcher use.
package tenants

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
)

// Secret is a credential that never prints: String, GoString, LogValue and
// MarshalJSON all redact it. Reveal returns the value for the one place that
// needs it, the OAuth token request.
type Secret struct{ v string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret's value. Call it only to build the token request.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string   { return "[redacted]" }
func (s Secret) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Quota scopes: how a tenant's rate_per_minute is shared among worker replicas.
const (
	// ScopeOrg: the quota is the org's: live replicas share it. For limits
	// Genesys counts per org (some non-outbound services since 2026).
	ScopeOrg = "org"
	// ScopeToken: the quota is per token (the default): each replica's token
	// has all of it — Genesys's client.credentials.token.rate.per.minute is
	// counted per client-credentials token.
	ScopeToken = "token"
)

// Tenant is one customer org, resolved: defaults applied, secret read,
// endpoints derived from the region unless given.
type Tenant struct {
	ID           string
	ClientID     string
	ClientSecret Secret
	Region       string // AWS region name, e.g. us-east-1; "" when api_base is explicit
	APIBase      string // e.g. https://api.mypurecloud.com
	TokenURL     string // e.g. https://login.mypurecloud.com/oauth/token

	RatePerMinute int  // the tenant's quota (cluster-wide for ScopeOrg)
	RateAuto      bool // learn the quota from the org's limits API and 429 bodies; RatePerMinute is the starting guess
	Burst         int  // limiter burst; default 1 (no bursts after a pause)
	Concurrency   int  // cluster-wide jobs in flight (the consumer's MaxAckPending)
	MaxAttempts   int  // attempts before a transiently failing job is dead-lettered
	// MaxBacklog is how many of the tenant's jobs may be queued before its
	// publishes are refused; 0 means DefaultMaxBacklog (Backlog).
	MaxBacklog int
	QuotaScope string

	// AllowedPaths are the path prefixes api.request may call.
	AllowedPaths []string
}

// Backlog is the tenant's backlog limit: MaxBacklog, or DefaultMaxBacklog
// when it is 0.
func (t Tenant) Backlog() int {
	if t.MaxBacklog == 0 {
		return DefaultMaxBacklog
	}
	return t.MaxBacklog
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidID reports whether id can name a tenant: 1–64 of A–Z a–z 0–9 _ -.
// A tenant id is a NATS subject token, a consumer name and a KV key part.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Validate checks a resolved tenant, e.g. one built in code rather than
// loaded from a file: every field set and within the limits Parse enforces.
func (t Tenant) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("tenant %q: "+format, append([]any{t.ID}, args...)...))
	}
	if !ValidID(t.ID) {
		bad("invalid id: want 1-64 of A-Z a-z 0-9 _ -")
	}
	if t.ClientID == "" {
		bad("client id is empty")
	}
	if t.ClientSecret.IsZero() {
		bad("client secret is empty")
	}
	if t.APIBase == "" || t.TokenURL == "" {
		bad("API base and token URL are required")
	}
	if t.RatePerMinute < 1 || t.RatePerMinute > MaxRatePerMinute {
		bad("rate per minute %d: want 1..%d", t.RatePerMinute, MaxRatePerMinute)
	}
	if t.Burst < 1 || t.Burst > MaxRatePerMinute {
		bad("burst %d: want 1..%d", t.Burst, MaxRatePerMinute)
	}
	if t.Concurrency < 1 || t.Concurrency > MaxConcurrency {
		bad("concurrency %d: want 1..%d", t.Concurrency, MaxConcurrency)
	}
	if t.MaxAttempts < 1 || t.MaxAttempts > MaxAttemptsLimit {
		bad("max attempts %d: want 1..%d", t.MaxAttempts, MaxAttemptsLimit)
	}
	if t.MaxBacklog < 0 || t.MaxBacklog > MaxBacklogLimit {
		bad("max backlog %d: want 1..%d (0: the default)", t.MaxBacklog, MaxBacklogLimit)
	}
	if t.QuotaScope != ScopeOrg && t.QuotaScope != ScopeToken {
		bad("quota scope %q: want %q or %q", t.QuotaScope, ScopeOrg, ScopeToken)
	}
	if len(t.AllowedPaths) == 0 {
		bad("no allowed paths")
	}
	for _, p := range t.AllowedPaths {
		if err := checkPathPrefix(p); err != nil {
			bad("allowed path %q: %v", p, err)
		}
	}
	return errors.Join(errs...)
}
