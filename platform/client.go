package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client: one OAuth client of one org.
type Config struct {
	// APIBase is the API's base URL, e.g. https://api.mypurecloud.ie (see
	// Endpoints), or a simulator's URL.
	APIBase string
	// TokenURL is the OAuth token endpoint, e.g.
	// https://login.mypurecloud.ie/oauth/token.
	TokenURL string
	// ClientID and ClientSecret are the org's client-credentials OAuth
	// client. The secret never appears in an error.
	ClientID, ClientSecret string

	// HTTPClient sends API and token requests; nil: a shared client with
	// sane timeouts (dial 5 s, TLS 5 s, response header 30 s, overall 60 s,
	// 64 idle connections per host). Redirects are never followed: a 3xx
	// answer is a *PermanentError.
	HTTPClient *http.Client
	// AllowedPathPrefixes are the paths api.request may call; nil:
	// DefaultAllowedPathPrefixes; empty and non-nil: none.
	AllowedPathPrefixes []string
	// DefaultRetryAfter is a 429's wait when it has no Retry-After (the
	// platform always sends one) nor a legacy inin-ratelimit-reset; 0: 60 s.
	DefaultRetryAfter time.Duration
	// MaxRetryAfter caps a 429's wait; 0: 10 min.
	MaxRetryAfter time.Duration
	// MaxResponseBytes caps a successful answer's body (Result.Truncated
	// says when it was cut); 0: 1 MiB.
	MaxResponseBytes int64
	// TokenRefreshAhead is how long before expiry a token is replaced
	// (at most half its lifetime); 0: 60 s.
	TokenRefreshAhead time.Duration

	// StatusPollInterval is how often a job that waits for its campaign to
	// be off (wait_until_off) reads the campaign; 0: 2 s.
	StatusPollInterval time.Duration

	// BeforeRequest, when set, is called before every API request (not
	// token requests), including each of campaign.set_status's GET and PUT.
	// The worker waits on its rate limiter and checks its pause here. A
	// non-nil error aborts Do and is returned wrapped (%w).
	BeforeRequest func(ctx context.Context) error
	// OnSend, when set, is called just before each API request goes out;
	// every OnSend is followed by exactly one OnResponse, so the two count
	// the requests on the wire.
	OnSend func()
	// OnResponse, when set, is called after every API answer; status 0
	// means there was none (timeout, connection error). It must not block.
	OnResponse func(status int, limit RateLimit, elapsed time.Duration)
	// OnToken, when set, is called after each successful token fetch.
	OnToken func()
	// Now is the clock for token expiry and Retry-After dates; nil: time.Now.
	Now func() time.Time
}

// Defaults for Config's zero fields.
const (
	defaultRetryAfter        = 60 * time.Second
	defaultMaxRetryAfter     = 10 * time.Minute
	defaultMaxResponseBytes  = 1 << 20
	defaultTokenRefreshAhead = 60 * time.Second
)

// Result is a successful (2xx) answer.
type Result struct {
	Status int
	Body   []byte // at most Config.MaxResponseBytes
	// Headers are the legacy inin-ratelimit-* headers (absent from today's
	// platform; see RateLimit).
	Headers RateLimit
	// CorrelationID is the answer's ININ-Correlation-Id.
	CorrelationID string
	// Truncated is true when the body was longer than MaxResponseBytes and
	// Body holds only its beginning.
	Truncated bool
}

// Client calls the platform API for one org. It is safe for concurrent use.
type Client struct {
	cfg     Config
	apiBase *url.URL
	base    string // apiBase without a trailing slash
	hc      *http.Client
	tokens  *tokenSource
}

// sharedTransport and sharedHTTPClient serve every Client without its own
// HTTPClient, so all tenants share one connection pool.
var (
	sharedTransport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2: true,
		// Every tenant of a region calls the same API host, so the per-host
		// idle cap must cover the summed concurrency of all lanes: over
		// HTTP/1.1 (the simulator, downgrading proxies) a lower cap re-dials
		// constantly (measured: ~9 % of CPU with 100 tenants at 64).
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   2048,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	sharedHTTPClient = &http.Client{Transport: sharedTransport, Timeout: 60 * time.Second}
)

// New checks cfg, applies defaults and returns a Client. It does no I/O: the
// first token is fetched by the first request.
func New(cfg Config) (*Client, error) {
	apiBase, err := parseBaseURL("APIBase", cfg.APIBase)
	if err != nil {
		return nil, err
	}
	if _, err := parseBaseURL("TokenURL", cfg.TokenURL); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("platform: config: ClientID is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("platform: config: ClientSecret is required")
	}
	if cfg.AllowedPathPrefixes == nil {
		cfg.AllowedPathPrefixes = DefaultAllowedPathPrefixes
	}
	for _, p := range cfg.AllowedPathPrefixes {
		if reason := prefixProblem(p); reason != "" {
			return nil, fmt.Errorf("platform: config: allowed path prefix %q: %s", p, reason)
		}
	}
	cfg.AllowedPathPrefixes = append([]string(nil), cfg.AllowedPathPrefixes...)
	if cfg.DefaultRetryAfter <= 0 {
		cfg.DefaultRetryAfter = defaultRetryAfter
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = defaultMaxRetryAfter
	}
	cfg.MaxRetryAfter = max(cfg.MaxRetryAfter, minRetryAfter)
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = defaultMaxResponseBytes
	}
	if cfg.TokenRefreshAhead <= 0 {
		cfg.TokenRefreshAhead = defaultTokenRefreshAhead
	}
	if cfg.StatusPollInterval <= 0 {
		cfg.StatusPollInterval = defaultStatusPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// A copy of the HTTP client that never follows redirects: a redirect
	// could lead a request outside the allow-list or to another host.
	hc := *sharedHTTPClient
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = &hc

	return &Client{
		cfg:     cfg,
		apiBase: apiBase,
		base:    strings.TrimSuffix(apiBase.String(), "/"),
		hc:      &hc,
		tokens:  newTokenSource(cfg, &hc),
	}, nil
}

// parseBaseURL checks an http(s) URL without credentials, query or fragment.
func parseBaseURL(field, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("platform: config: %s is required", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("platform: config: %s: %w", field, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("platform: config: %s %q: want http(s)://host[:port][/path] without credentials, query or fragment", field, raw)
	}
	return u, nil
}

// DropToken forgets the cached token: the next request fetches a new one.
// (Do already forgets a token the API answered 401 to.)
func (c *Client) DropToken() { c.tokens.drop() }

// CheckToken makes sure the client has a usable access token, fetching one
// when the cached one is missing or due, without any API request. A worker
// uses it to probe, on its own schedule, whether credentials rejected or a
// token endpoint down are fine again. Errors are *TokenError, or the
// caller's cancellation wrapped; the token itself is never returned.
func (c *Client) CheckToken(ctx context.Context) error {
	_, err := c.tokens.token(ctx)
	return err
}

// Do validates params, sends op's request(s) and classifies the answer. A
// 2xx answer is a *Result; otherwise the error is one of *InvalidRequestError
// (never sent), *TokenError, *RateLimitError, *AuthError, *PermanentError or
// *TransientError — or, when ctx was canceled, an error wrapping
// context.Canceled (and the cancel cause), which is none of those, so
// shutdown is told apart from failure. A passed ctx deadline is a timeout: a
// *TransientError (or *TokenError) wrapping context.DeadlineExceeded.
func (c *Client) Do(ctx context.Context, op string, params json.RawMessage) (*Result, error) {
	p, err := prepare(op, params, c.cfg.AllowedPathPrefixes, true)
	if err != nil {
		return nil, err
	}
	switch op {
	case OpCampaignSetStatus:
		return c.setStatus(ctx, p)
	case OpCampaignStop:
		res, err := c.send(ctx, op, p.req)
		if err != nil {
			return nil, err
		}
		return c.waitUntilOff(ctx, p, res, "")
	}
	return c.send(ctx, op, p.req)
}

// send performs one API request: BeforeRequest, token, request, classify.
func (c *Client) send(ctx context.Context, op string, r request) (*Result, error) {
	if cerr := canceled(ctx); cerr != nil {
		return nil, fmt.Errorf("platform: %s %s: %w", r.method, r.path, cerr)
	}
	if c.cfg.BeforeRequest != nil {
		if err := c.cfg.BeforeRequest(ctx); err != nil {
			return nil, fmt.Errorf("platform: %s %s: before request: %w", r.method, r.path, err)
		}
	}
	access, err := c.tokens.token(ctx)
	if err != nil {
		return nil, err
	}
	target := c.base + r.path
	if r.query != "" {
		target += "?" + r.query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, &InvalidRequestError{Op: op, Reason: err.Error()}
	}
	if req.URL.Scheme != c.apiBase.Scheme || req.URL.Host != c.apiBase.Host {
		// Unreachable for validated paths; a last guard for the token.
		return nil, &InvalidRequestError{Op: op, Reason: "request would leave the API host"}
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "orgdispatch")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	if c.cfg.OnSend != nil {
		c.cfg.OnSend()
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.onResponse(0, RateLimit{}, time.Since(start))
		if cerr := canceled(ctx); cerr != nil {
			return nil, fmt.Errorf("platform: %s %s: %w", r.method, r.path, cerr)
		}
		return nil, &TransientError{Err: err}
	}
	defer resp.Body.Close()
	limit := ParseRateLimit(resp.Header)
	res, err := c.classify(ctx, r, resp, limit)
	c.onResponse(resp.StatusCode, limit, time.Since(start))
	if _, unauthorized := errors.AsType[*AuthError](err); unauthorized {
		c.tokens.invalidate(access)
	}
	return res, err
}

func (c *Client) onResponse(status int, limit RateLimit, elapsed time.Duration) {
	if c.cfg.OnResponse != nil {
		c.cfg.OnResponse(status, limit, elapsed)
	}
}
