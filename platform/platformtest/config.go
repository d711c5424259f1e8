package platformtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Bucket scopes for Config.Scope: what one rate-limit window is counted for.
const (
	// ScopeToken gives every access token its own window (the default; the
	// community-sourced "300 requests per minute per token").
	ScopeToken = "token"
	// ScopeClient gives every OAuth client one window, shared by its tokens.
	ScopeClient = "client"
	// ScopeOrg gives every org one window, shared by all its clients and tokens.
	ScopeOrg = "org"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultWindow      = 60 * time.Second
	DefaultTokenTTL    = 86400 * time.Second
	DefaultMaxRecorded = 100_000
	// DefaultStopDelay is how long a stopped campaign stays "stopping"
	// before it is "off" (Config.StopDelay).
	DefaultStopDelay = 2 * time.Second
	// MaxBodyBytes is the platform's request.bytes.max: a larger API request
	// body is answered 413.
	MaxBodyBytes = 512_000
	// MaxContactsPerRequest is the most contacts one add-contacts request may
	// carry; more is answered 400.
	MaxContactsPerRequest = 1000
)

// ClientCred is one OAuth client-credentials client the simulator knows: its
// id and secret (sent with HTTP Basic authentication to the token endpoint)
// and the org its tokens act in.
type ClientCred struct {
	ID, Secret, Org string
}

// Config configures a Simulator. The zero value is valid but knows no
// clients; New applies the defaults documented on each field.
type Config struct {
	// Clients are the OAuth clients that may obtain tokens.
	Clients []ClientCred

	// Limit is the number of API requests allowed per window per bucket;
	// 0 means unlimited. The limits API and 429 bodies name it as
	// TokenRateLimitKey in PlatformAPINamespace, with the value expressed per
	// minute: round(Limit × 60 s / Window).
	Limit int
	// Window is the length of a fixed rate-limit window; default 60s.
	Window time.Duration
	// Scope is what a bucket belongs to: ScopeToken (default), ScopeClient or
	// ScopeOrg.
	Scope string
	// EndpointLimits are optional per-endpoint-family limits: each is a
	// second window, with the same scope as the main one, for the requests
	// whose path starts with its PathPrefix. A request must be admitted by
	// the main window and by every endpoint limit it falls under.
	EndpointLimits []EndpointLimit
	// LegacyRateLimitHeaders sends Inin-Ratelimit-Allowed, -Count and -Reset
	// (the main window) on every API answer past authentication while
	// Limit > 0, as the platform did until 2021. Off by default: today's
	// platform sends none.
	LegacyRateLimitHeaders bool
	// OmitLimitInBody leaves the limit object out of 429 bodies (the
	// platform does not guarantee it), to test a client without it.
	OmitLimitInBody bool
	// SharedBuckets maps client ids to a bucket name: clients mapped to the
	// same name share one budget whatever Scope says — the aggregation of the
	// original report, where one busy org starves the others.
	SharedBuckets map[string]string

	// TokenTTL is the lifetime of issued access tokens; default 86400s.
	TokenTTL time.Duration

	// Latency is added to every API answer (not to token requests). It is
	// waited for on a real timer (fake time inside a testing/synctest bubble)
	// and ends early when the request's context is cancelled.
	Latency time.Duration
	// ErrorRatio is the fraction of API requests answered 503, drawn from a
	// random source seeded with Seed.
	ErrorRatio float64
	// Seed seeds the simulator's random choices (ErrorRatio, generated contact
	// ids). Access tokens are always drawn from crypto/rand.
	Seed int64

	// Now is the simulator's clock for rate-limit windows, token expiry,
	// campaign state and Request.At; nil means time.Now.
	Now func() time.Time

	// StopDelay is how long a stopped campaign (POST …/stop, or PUT "off"
	// on an "on" campaign) stays "stopping" before it is "off", by Now;
	// 0 means DefaultStopDelay. A test that wants it (nearly) immediate sets
	// 1ns.
	StopDelay time.Duration
	// LenientStatusTransitions turns off the campaign status check: by
	// default a PUT may set "off" only on an "on" campaign and "on" only on
	// an "off", "complete", "invalid" or "forced_off" one (the transitions
	// Genesys's Terraform provider relies on), start only those, and stop
	// only an "on" campaign; anything else is 400 bad.request. Lenient, any
	// requested status is accepted and start or stop of a campaign already
	// there is a no-op.
	LenientStatusTransitions bool

	// Campaigns preloads campaigns, by org id. A campaign's contact list is
	// created (empty) if it does not exist.
	Campaigns map[string][]Campaign
	// AutoCreate creates any campaign or contact list an API request names
	// on first use instead of answering 404. An auto-created campaign is "off"
	// and uses the contact list with its own id (auto-created too).
	AutoCreate bool

	// MaxRecorded bounds the request log read by Requests: the most recent
	// MaxRecorded requests are kept (a ring). 0 means DefaultMaxRecorded;
	// negative turns recording off. Stats and OnRequest are unaffected.
	MaxRecorded int
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Scope == "" {
		c.Scope = ScopeToken
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	c.EndpointLimits = slices.Clone(c.EndpointLimits)
	if c.StopDelay == 0 {
		c.StopDelay = DefaultStopDelay
	}
	if c.MaxRecorded == 0 {
		c.MaxRecorded = DefaultMaxRecorded
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem with c, if any. New panics on a Config
// that Validate rejects; NewServer fails the test instead.
func (c Config) Validate() error {
	var errs []error
	if c.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d is negative", c.Limit))
	}
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("window %s is negative", c.Window))
	}
	switch c.Scope {
	case "", ScopeToken, ScopeClient, ScopeOrg:
	default:
		errs = append(errs, fmt.Errorf("scope %q is not one of token, client, org", c.Scope))
	}
	if c.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("token TTL %s is negative", c.TokenTTL))
	}
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %s is negative", c.Latency))
	}
	if c.ErrorRatio < 0 || c.ErrorRatio > 1 {
		errs = append(errs, fmt.Errorf("error ratio %g is outside [0, 1]", c.ErrorRatio))
	}
	if c.StopDelay < 0 {
		errs = append(errs, fmt.Errorf("stop delay %s is negative", c.StopDelay))
	}
	limitNames := map[[2]string]bool{{PlatformAPINamespace, TokenRateLimitKey}: true}
	for i, e := range c.EndpointLimits {
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("endpoint limit %d: %w", i, err))
			continue
		}
		name := [2]string{e.Namespace, e.Key}
		if limitNames[name] {
			errs = append(errs, fmt.Errorf("endpoint limit %d: key %q in namespace %q is named twice", i, e.Key, e.Namespace))
		}
		limitNames[name] = true
	}
	seen := make(map[string]bool, len(c.Clients))
	for i, cl := range c.Clients {
		if err := cl.validate(); err != nil {
			errs = append(errs, fmt.Errorf("client %d: %w", i, err))
			continue
		}
		if seen[cl.ID] {
			errs = append(errs, fmt.Errorf("client %q is listed twice", cl.ID))
		}
		seen[cl.ID] = true
	}
	for id, name := range c.SharedBuckets {
		if !seen[id] {
			errs = append(errs, fmt.Errorf("shared bucket %q names unknown client %q", name, id))
		}
		if name == "" {
			errs = append(errs, fmt.Errorf("shared bucket for client %q has an empty name", id))
		}
	}
	for org, cs := range c.Campaigns {
		if org == "" {
			errs = append(errs, errors.New("campaigns listed for an empty org id"))
		}
		for i, cp := range cs {
			if cp.ID == "" {
				errs = append(errs, fmt.Errorf("org %q campaign %d has no id", org, i))
			}
		}
	}
	return errors.Join(errs...)
}

// EndpointLimit is a limit for one family of endpoints (Config.EndpointLimits):
// at most Limit requests per Window for paths starting with PathPrefix, in a
// window of the same scope as the main one. Its 429s and the limits API
// name it by Key and Namespace, with Limit expressed per minute.
type EndpointLimit struct {
	// PathPrefix selects the requests counted, e.g. "/api/v2/outbound/";
	// it must start with "/api/".
	PathPrefix string
	// Limit is the number of requests allowed per Window; it must be > 0.
	Limit int
	// Window is the window length; 0 means the main window (Config.Window,
	// or the one SetLimit set).
	Window time.Duration
	// Key and Namespace name the limit, e.g. "outbound.rate.per.minute" in
	// "outbound"; both are required, and no two limits may share both.
	Key, Namespace string
}

// Validate reports the first problem with e, if any; Config.Validate
// checks every entry with it (and that no two limits share a name).
func (e EndpointLimit) Validate() error {
	switch {
	case !strings.HasPrefix(e.PathPrefix, "/api/"):
		return fmt.Errorf("path prefix %q does not start with /api/", e.PathPrefix)
	case e.Limit <= 0:
		return fmt.Errorf("limit %d is not positive", e.Limit)
	case e.Window < 0:
		return fmt.Errorf("window %s is negative", e.Window)
	case e.Key == "":
		return errors.New("empty key")
	case e.Namespace == "":
		return errors.New("empty namespace")
	case strings.Contains(e.Namespace, "/"):
		return fmt.Errorf("namespace %q contains a slash", e.Namespace)
	}
	return nil
}

func (c ClientCred) validate() error {
	switch {
	case c.ID == "":
		return errors.New("empty id")
	case strings.ContainsAny(c.ID, ":\r\n"):
		// RFC 7617: a Basic auth user-id cannot contain a colon.
		return fmt.Errorf("id %q contains a colon or line break", c.ID)
	case c.Secret == "":
		return fmt.Errorf("client %q has an empty secret", c.ID)
	case c.Org == "":
		return fmt.Errorf("client %q has an empty org", c.ID)
	}
	return nil
}
