package platform

import (
	"errors"
	"fmt"
	"time"
)

// RateLimit is what one response said about the token's rate-limit window in
// the legacy inin-ratelimit-allowed, inin-ratelimit-count and
// inin-ratelimit-reset headers. Genesys Cloud removed those headers from
// every response in June 2021, so against today's platform Present is
// always false; they are read only for the simulator's legacy mode and for
// other platforms that still send such headers.
type RateLimit struct {
	Present bool
	Allowed int           // the window's limit (inin-ratelimit-allowed)
	Count   int           // requests counted in the window so far (inin-ratelimit-count)
	Reset   time.Duration // time until the window resets (inin-ratelimit-reset)
}

// Limit names one of the platform's rate limits, as a 429 body's "limit"
// object and the organization limits API do: e.g. key
// "client.credentials.token.rate.per.minute", namespace "platform.api",
// value 300 (requests per minute for that key).
type Limit struct {
	Key       string `json:"key"`
	Namespace string `json:"namespace"`
	Value     int    `json:"value"`
}

// Keys and namespaces of the limits orgdispatch paces by.
const (
	// LimitKeyTokenRate is the per-token request limit of client-credentials
	// tokens (300 per minute unless Genesys raised it for the org).
	LimitKeyTokenRate = "client.credentials.token.rate.per.minute"
	// NamespacePlatformAPI is the namespace of LimitKeyTokenRate.
	NamespacePlatformAPI = "platform.api"
)

// RateLimitError is a 429 answer. RetryAfter is how long the platform asked the
// caller to wait: from Retry-After (seconds or an HTTP date; the platform has
// sent it on every 429 since 2021), else from the legacy inin-ratelimit-reset
// (+1 s), else the client's default; always capped at the client's maximum.
// Limit is the body's "limit" object naming the limit that was hit, nil when
// the body had none (it is not guaranteed on every 429).
type RateLimitError struct {
	RetryAfter    time.Duration
	Limit         *Limit
	Headers       RateLimit // legacy inin-ratelimit-* headers, if any
	Code          string    // the platform's error code, e.g. "too.many.requests.retry.after"
	Message       string
	CorrelationID string // ININ-Correlation-Id (else the body's contextId)
}

func (e *RateLimitError) Error() string {
	s := fmt.Sprintf("platform: rate limited (429 %s), retry after %s", e.Code, e.RetryAfter)
	if e.Limit != nil && e.Limit.Key != "" {
		s += fmt.Sprintf(", limit %s %d", e.Limit.Key, e.Limit.Value)
	}
	return s + correlationSuffix(e.CorrelationID)
}

// AuthError is a 401 answer from the API: the token was missing, expired or
// revoked. The caller drops the token and tries once more with a new one.
type AuthError struct {
	Status        int
	Code          string // "bad.credentials", "authentication.required", …
	Message       string
	CorrelationID string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("platform: unauthorized (%d %s): %s", e.Status, e.Code, e.Message) + correlationSuffix(e.CorrelationID)
}

// TokenError is a failure to obtain an access token from the OAuth token
// endpoint. Rejected is true when the endpoint refused the client's credentials
// (400/401 with invalid_client and the like): retrying will not help until the
// credentials change. Otherwise the endpoint was unreachable or failing (5xx,
// 429, timeout, connection error) and a later try may succeed; RetryAfter is
// the endpoint's Retry-After when it sent one (a 429 or 503), else 0. Neither
// is the job's fault. The client secret never appears in it.
type TokenError struct {
	Rejected      bool
	Status        int    // HTTP status of the token endpoint's answer; 0 if there was none
	Code          string // the OAuth "error" field, e.g. "invalid_client"
	RetryAfter    time.Duration
	CorrelationID string
	Err           error
}

func (e *TokenError) Error() string {
	if e.Rejected {
		return fmt.Sprintf("platform: token request rejected (%d %s)", e.Status, e.Code) + correlationSuffix(e.CorrelationID)
	}
	s := fmt.Sprintf("platform: token endpoint unavailable: %v", e.Err)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s + correlationSuffix(e.CorrelationID)
}

func (e *TokenError) Unwrap() error { return e.Err }

// PermanentError is an answer that retrying the same request cannot change:
// 400, 403, 404, 409 (after set_status's one retry), 413, 422 and other 4xx
// except 401 and 429. Body is the platform's error body, size-capped.
type PermanentError struct {
	Status        int
	Code          string
	Message       string
	CorrelationID string
	Body          []byte
}

func (e *PermanentError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("platform: %d %s: %s", e.Status, e.Code, e.Message) + correlationSuffix(e.CorrelationID)
	}
	return fmt.Sprintf("platform: %d: %s", e.Status, e.Message) + correlationSuffix(e.CorrelationID)
}

// TransientError is an answer that may succeed if retried later: 5xx, a
// timeout, a refused or reset connection. Status is 0 when there was no
// answer. RetryAfter is the answer's Retry-After (a 503 may send one), else 0;
// a retry should not come sooner.
type TransientError struct {
	Status        int
	RetryAfter    time.Duration
	CorrelationID string
	Err           error
}

func (e *TransientError) Error() string {
	s := "platform: transient failure"
	if e.Status != 0 {
		s += fmt.Sprintf(" (%d)", e.Status)
	}
	s += fmt.Sprintf(": %v", e.Err)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s + correlationSuffix(e.CorrelationID)
}

func (e *TransientError) Unwrap() error { return e.Err }

// InvalidRequestError means the job itself is wrong — unknown operation,
// missing or malformed params, a path outside the allow-list — and was never
// sent. It is permanent.
type InvalidRequestError struct {
	Op     string
	Reason string
}

func (e *InvalidRequestError) Error() string {
	return fmt.Sprintf("platform: invalid %s request: %s", e.Op, e.Reason)
}

// CorrelationID returns the platform's ININ-Correlation-Id carried by err (any
// of the typed errors above, wrapped or not), or "" when there is none — the
// id Genesys support asks for when a request failed.
func CorrelationID(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*RateLimitError](err); ok {
		return e.CorrelationID
	}
	if e, ok := errors.AsType[*AuthError](err); ok {
		return e.CorrelationID
	}
	if e, ok := errors.AsType[*TokenError](err); ok {
		return e.CorrelationID
	}
	if e, ok := errors.AsType[*PermanentError](err); ok {
		return e.CorrelationID
	}
	if e, ok := errors.AsType[*TransientError](err); ok {
		return e.CorrelationID
	}
	return ""
}

func correlationSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " (correlation id " + id + ")"
}
