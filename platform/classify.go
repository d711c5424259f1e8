package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// maxErrorBody caps the error body kept in *PermanentError and read to
	// find the platform's code and message.
	maxErrorBody = 64 << 10
	// maxDrain is how much of an unread body is discarded so the connection
	// can be reused; larger bodies close the connection instead.
	maxDrain = 64 << 10
	// minRetryAfter is the least a 429 asks the caller to wait, so that a
	// "Retry-After: 0" or a past date cannot make a retry loop spin.
	minRetryAfter = time.Second
	// maxMessageLen bounds the platform message copied into error strings.
	maxMessageLen = 512
)

// errorBody is the platform's standard error JSON (ErrorBody); Limit is set
// on 429s since 2023 ("rate limit visibility"), but not on every one.
type errorBody struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	ContextID string `json:"contextId"`
	Limit     *Limit `json:"limit"`
}

// classify turns an answer into a Result or one of the typed errors. It reads
// (and caps) the body; the caller closes it. ctx distinguishes a body read
// cut short by the caller's cancellation.
func (c *Client) classify(ctx context.Context, r request, resp *http.Response, headers RateLimit) (*Result, error) {
	status := resp.StatusCode
	corr := correlationHeader(resp.Header)
	if status >= 200 && status <= 299 {
		body, truncated, err := readCapped(resp.Body, c.cfg.MaxResponseBytes)
		if err != nil {
			if cerr := canceled(ctx); cerr != nil {
				return nil, fmt.Errorf("platform: %s %s: read response: %w", r.method, r.path, cerr)
			}
			return nil, &TransientError{Status: status, CorrelationID: corr, Err: fmt.Errorf("%s %s: read response: %w", r.method, r.path, err)}
		}
		return &Result{Status: status, Body: body, Headers: headers, Truncated: truncated, CorrelationID: corr}, nil
	}

	body, _, _ := readCapped(resp.Body, maxErrorBody) // a partial error body is still an answer
	eb := parseErrorBody(body)
	if eb.Message == "" {
		eb.Message = http.StatusText(status)
	}
	if corr == "" {
		corr = eb.ContextID
	}
	switch {
	case status == http.StatusTooManyRequests:
		return nil, &RateLimitError{
			RetryAfter:    c.retryAfter(resp.Header),
			Limit:         eb.Limit,
			Headers:       headers,
			Code:          eb.Code,
			Message:       eb.Message,
			CorrelationID: corr,
		}
	case status == http.StatusUnauthorized:
		return nil, &AuthError{Status: status, Code: eb.Code, Message: eb.Message, CorrelationID: corr}
	case status >= 500 || status == http.StatusRequestTimeout:
		detail := eb.Message
		if eb.Code != "" {
			detail = eb.Code + ": " + eb.Message
		}
		e := &TransientError{Status: status, CorrelationID: corr, Err: fmt.Errorf("%s %s: %s", r.method, r.path, detail)}
		if d, ok := c.optionalRetryAfter(resp.Header); ok {
			e.RetryAfter = d
		}
		return nil, e
	default: // other 4xx, and 3xx (redirects are not followed)
		return nil, &PermanentError{Status: status, Code: eb.Code, Message: eb.Message, CorrelationID: corr, Body: body}
	}
}

// headerCorrelationID is the header on every platform answer that identifies
// the request to Genesys support.
const headerCorrelationID = "Inin-Correlation-Id"

// correlationHeader reads ININ-Correlation-Id, cleaned and capped.
func correlationHeader(h http.Header) string {
	return cleanText(strings.TrimSpace(h.Get(headerCorrelationID)), 128)
}

// retryAfter computes a 429's wait: Retry-After (seconds, or an HTTP date
// taken relative to the answer's Date header when it has one, so clock skew
// does not matter), else the legacy inin-ratelimit-reset + 1 s, else the
// default; then bounded to [minRetryAfter, MaxRetryAfter].
func (c *Client) retryAfter(h http.Header) time.Duration {
	if d, ok := c.optionalRetryAfter(h); ok {
		return d
	}
	d := c.cfg.DefaultRetryAfter
	if secs, ok := headerInt(h, headerLimitReset); ok {
		d = time.Duration(secs)*time.Second + time.Second
	}
	return min(max(d, minRetryAfter), c.cfg.MaxRetryAfter)
}

// optionalRetryAfter reads Retry-After (see retryAfter) when the answer has
// one, bounded to [minRetryAfter, MaxRetryAfter].
func (c *Client) optionalRetryAfter(h http.Header) (time.Duration, bool) {
	return boundedRetryAfter(h, c.cfg.Now(), c.cfg.MaxRetryAfter)
}

// boundedRetryAfter reads h's Retry-After relative to its Date header (else
// now), bounded to [minRetryAfter, maxWait]; false when there is none.
func boundedRetryAfter(h http.Header, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	d, ok := ParseRetryAfter(h.Get(headerRetryAfter), now)
	if !ok {
		return 0, false
	}
	return min(max(d, minRetryAfter), maxWait), true
}

// parseErrorBody extracts the platform's error fields; a body that is not the
// error JSON yields zero fields. Strings are cleaned for use in messages.
func parseErrorBody(body []byte) errorBody {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return errorBody{}
	}
	eb.Code = cleanText(eb.Code, 128)
	eb.Message = cleanText(eb.Message, maxMessageLen)
	eb.ContextID = cleanText(eb.ContextID, 128)
	if l := eb.Limit; l != nil {
		l.Key, l.Namespace = cleanText(l.Key, 128), cleanText(l.Namespace, 128)
		if l.Key == "" && l.Namespace == "" && l.Value == 0 {
			eb.Limit = nil
		}
	}
	return eb
}

// cleanText makes s safe for an error string or a log line: valid UTF-8,
// control characters replaced, at most n bytes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return truncate(s, n)
}

// readCapped reads at most limit bytes of r and reports whether there was
// more. What is left is drained (up to maxDrain) so the connection can be
// reused.
func readCapped(r io.Reader, limit int64) (body []byte, truncated bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(body)) > limit {
		body, truncated = body[:limit], true
		_, _ = io.CopyN(io.Discard, r, maxDrain)
	}
	return body, truncated, err
}

// canceled returns the caller's cancellation as an error wrapping ctx.Err()
// (and its cause, when one was given), or nil when ctx was not canceled. A
// passed deadline is not a cancellation: it counts as a timeout.
func canceled(ctx context.Context) error {
	err := ctx.Err()
	if !errors.Is(err, context.Canceled) {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
