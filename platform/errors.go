package platform

import (
	"fmt"
	"time"
)

// RateLimit is what one response said about the token's rate-limit window, read
// from the inin-ratelimit-allowed, inin-ratelimit-count and inin-ratelimit-reset
// headers. Present is false when the response carried none of them.
type RateLimit struct {
	Present bool
	Allowed int           // the window's limit (inin-ratelimit-allowed)
	Count   int           // requests counted in the window so far (inin-ratelimit-count)
	Reset   time.Duration // time until the window resets (inin-ratelimit-reset)
}

// RateLimitError is a 429 answer. RetryAfter is how long the platform asked the
// caller to wait: from Retry-After (seconds or an HTTP date), else from
// inin-ratelimit-reset (+1 s, as Genesys's own samples do), else the client's
// default; always capped at the client's maximum.
type RateLimitError struct {
	RetryAfter time.Duration
	Limit      RateLimit
	Code       string // the platform's error code, e.g. "too.many.requests"
	Message    string
	ContextID  string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("platform: rate limited (429 %s), retry after %s", e.Code, e.RetryAfter)
}

// AuthError is a 401 answer from the API: the token was missing, expired or
// revoked. The caller drops the token and tries once more with a new one.
type AuthError struct {
	Status    int
	Code      string // "bad.credentials", "authentication.required", …
	Message   string
	ContextID string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("platform: unauthorized (%d %s): %s", e.Status, e.Code, e.Message)
}

// TokenError is a failure to obtain an access token from the OAuth token
// endpoint. Rejected is true when the endpoint refused the client's credentials
// (400/401 with invalid_client and the like): retrying will not help until the
// credentials change. Otherwise the endpoint was unreachable or failing (5xx,
// timeout, connection error) and a later try may succeed. Neither is the job's
// fault. The client secret never appears in it.
type TokenError struct {
	Rejected bool
	Status   int    // HTTP status of the token endpoint's answer; 0 if there was none
	Code     string // the OAuth "error" field, e.g. "invalid_client"
	Err      error
}

func (e *TokenError) Error() string {
	if e.Rejected {
		return fmt.Sprintf("platform: token request rejected (%d %s)", e.Status, e.Code)
	}
	return fmt.Sprintf("platform: token endpoint unavailable: %v", e.Err)
}

func (e *TokenError) Unwrap() error { return e.Err }

// PermanentError is an answer that retrying the same request cannot change:
// 400, 403, 404, 409 (after set_status's one retry), 413, 422 and other 4xx
// except 401 and 429. Body is the platform's error body, size-capped.
type PermanentError struct {
	Status    int
	Code      string
	Message   string
	ContextID string
	Body      []byte
}

func (e *PermanentError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("platform: %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("platform: %d: %s", e.Status, e.Message)
}

// TransientError is an answer that may succeed if retried later: 5xx, a
// timeout, a refused or reset connection. Status is 0 when there was no answer.
type TransientError struct {
	Status int
	Err    error
}

func (e *TransientError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("platform: transient failure (%d): %v", e.Status, e.Err)
	}
	return fmt.Sprintf("platform: transient failure: %v", e.Err)
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
