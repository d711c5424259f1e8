package tenants

import "log/slog"

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
	// ScopeOrg: the quota is the org's (the default): live replicas share it.
	ScopeOrg = "org"
	// ScopeToken: the quota is per token: each replica's token has all of it.
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
	RateAuto      bool // learn the quota from inin-ratelimit-* headers; RatePerMinute is the starting guess
	Burst         int  // limiter burst; default 1 (no bursts after a pause)
	Concurrency   int  // cluster-wide jobs in flight (the consumer's MaxAckPending)
	MaxAttempts   int  // attempts before a transiently failing job is dead-lettered
	QuotaScope    string

	// AllowedPaths are the path prefixes api.request may call.
	AllowedPaths []string
}
