package platform

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	// tokenTimeout bounds one token request (the caller's ctx may end it sooner).
	tokenTimeout = 15 * time.Second
	// tokenRetryHold is how long a still-valid token keeps being used after a
	// failed refresh before the next refresh attempt.
	tokenRetryHold = 5 * time.Second
	// defaultTokenLifetime is assumed when the endpoint sends no expires_in.
	defaultTokenLifetime = time.Hour
	// maxTokenRetryAfter caps the token endpoint's Retry-After.
	maxTokenRetryAfter = 10 * time.Minute
	// maxTokenLifetime bounds an absurd expires_in.
	maxTokenLifetime = 365 * 24 * time.Hour
)

// cachedToken is an access token and when to replace it.
type cachedToken struct {
	access    string
	refreshAt time.Time // fetch a new one from here on
	expiry    time.Time // unusable from here on
}

// tokenFlight is one token fetch that concurrent callers share.
type tokenFlight struct {
	done      chan struct{}
	tok       *cachedToken
	err       error
	abandoned bool // the fetching caller's ctx ended first: waiters try again
}

// tokenSource caches one client-credentials token, fetches it once for many
// concurrent callers, and refreshes it ahead of expiry.
type tokenSource struct {
	cc       clientcredentials.Config
	hc       *http.Client
	now      func() time.Time
	ahead    time.Duration
	onToken  func()
	redactIn []string // forms of the secret that must never appear in an error

	mu        sync.Mutex
	cur       *cachedToken
	holdUntil time.Time // after a failed refresh: keep cur (if unexpired) until then
	// backoff: after the endpoint answered with a Retry-After (429, 503), its
	// error is returned without a request until then.
	backoffErr   *TokenError
	backoffUntil time.Time
	flight       *tokenFlight

	testHookWait func() // tests: called when a caller starts waiting on a shared fetch
}

func newTokenSource(cfg Config, hc *http.Client) *tokenSource {
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)))
	return &tokenSource{
		cc: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			AuthStyle:    oauth2.AuthStyleInHeader,
		},
		hc:       hc,
		now:      cfg.Now,
		ahead:    cfg.TokenRefreshAhead,
		onToken:  cfg.OnToken,
		redactIn: []string{cfg.ClientSecret, url.QueryEscape(cfg.ClientSecret), basic},
	}
}

// token returns a valid access token, fetching one if needed. Errors are
// *TokenError, or the caller's cancellation wrapped.
func (ts *tokenSource) token(ctx context.Context) (string, error) {
	for {
		ts.mu.Lock()
		now := ts.now()
		if t := ts.cur; t != nil && (now.Before(t.refreshAt) || now.Before(t.expiry) && now.Before(ts.holdUntil)) {
			ts.mu.Unlock()
			return t.access, nil
		}
		if e := ts.backoffErr; e != nil && now.Before(ts.backoffUntil) {
			// The endpoint asked us to wait (Retry-After): honour it for
			// every caller instead of asking again.
			ts.mu.Unlock()
			waitErr := *e
			waitErr.RetryAfter = ts.backoffUntil.Sub(now)
			return "", &waitErr
		}
		if f := ts.flight; f != nil {
			ts.mu.Unlock()
			if ts.testHookWait != nil {
				ts.testHookWait()
			}
			select {
			case <-f.done:
				if f.abandoned {
					if ctx.Err() != nil {
						return "", tokenCtxErr(ctx)
					}
					continue // the fetching caller gave up; fetch for ourselves
				}
				if f.err != nil {
					return "", f.err
				}
				return f.tok.access, nil
			case <-ctx.Done():
				return "", tokenCtxErr(ctx)
			}
		}
		f := &tokenFlight{done: make(chan struct{})}
		ts.flight = f
		ts.mu.Unlock()
		return ts.fetch(ctx, f)
	}
}

// fetch performs flight f: one token request with its own timeout.
func (ts *tokenSource) fetch(ctx context.Context, f *tokenFlight) (string, error) {
	start := ts.now()
	tctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	tok, err := ts.cc.Token(context.WithValue(tctx, oauth2.HTTPClient, ts.hc))

	ts.mu.Lock()
	switch {
	case err == nil:
		f.tok = ts.cache(tok, start)
		ts.cur, ts.holdUntil = f.tok, time.Time{}
		ts.backoffErr = nil
	case ctx.Err() != nil:
		f.abandoned, f.err = true, tokenCtxErr(ctx)
	default:
		now := ts.now()
		if cur := ts.cur; cur != nil && now.Before(cur.expiry) {
			// A refresh ahead of expiry failed: the current token still
			// works, so keep using it and try again a little later.
			ts.holdUntil = now.Add(tokenRetryHold)
			f.tok = cur
		} else {
			te := ts.tokenError(err)
			if te.RetryAfter > 0 {
				ts.backoffErr, ts.backoffUntil = te, now.Add(te.RetryAfter)
			}
			f.err = te
		}
	}
	ts.flight = nil
	close(f.done)
	ts.mu.Unlock()

	if f.err != nil {
		return "", f.err
	}
	if err == nil && ts.onToken != nil {
		ts.onToken()
	}
	return f.tok.access, nil
}

// cache computes a fetched token's refresh and expiry times from expires_in,
// relative to when the request started (so never later than the real expiry).
// A token living less than twice TokenRefreshAhead is refreshed at half-life.
func (ts *tokenSource) cache(tok *oauth2.Token, start time.Time) *cachedToken {
	lifetime, ok := expiresIn(tok)
	if !ok {
		lifetime = defaultTokenLifetime
		if !tok.Expiry.IsZero() { // computed by oauth2 on the real clock
			lifetime = min(max(time.Until(tok.Expiry), 0), maxTokenLifetime)
		}
	}
	expiry := start.Add(lifetime)
	return &cachedToken{access: tok.AccessToken, expiry: expiry, refreshAt: expiry.Add(-min(ts.ahead, lifetime/2))}
}

// expiresIn reads the answer's expires_in (clientcredentials keeps it only
// among the raw fields: a JSON number, or a string in a form-encoded answer).
func expiresIn(tok *oauth2.Token) (time.Duration, bool) {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		secs = f
	default:
		if tok.ExpiresIn <= 0 {
			return 0, false
		}
		secs = float64(tok.ExpiresIn)
	}
	switch {
	case !(secs > 0): // also NaN
		return 0, false
	case secs >= maxTokenLifetime.Seconds():
		return maxTokenLifetime, true
	}
	return time.Duration(secs * float64(time.Second)), true
}

// drop forgets the cached token.
func (ts *tokenSource) drop() {
	ts.mu.Lock()
	ts.cur, ts.holdUntil = nil, time.Time{}
	ts.backoffErr = nil // new credentials or an operator's retry: ask again
	ts.mu.Unlock()
}

// invalidate forgets access if it is still the cached token (a token the API
// refused); a newer token fetched meanwhile is kept.
func (ts *tokenSource) invalidate(access string) {
	ts.mu.Lock()
	if ts.cur != nil && ts.cur.access == access {
		ts.cur, ts.holdUntil = nil, time.Time{}
	}
	ts.mu.Unlock()
}

// tokenError classifies a failed token request. oauth2's RetrieveError
// carries the endpoint's whole answer, which must not reach an error string:
// only the status and the OAuth "error" code are kept.
func (ts *tokenSource) tokenError(err error) *TokenError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := ts.safeCode(re.ErrorCode)
		rejected := status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden ||
			status >= 200 && status <= 299 && code != "" // a 200 carrying an OAuth error
		msg := fmt.Sprintf("token endpoint answered %d", status)
		if code != "" {
			msg += " " + code
		}
		te := &TokenError{Rejected: rejected, Status: status, Code: code, Err: errors.New(msg)}
		if re.Response != nil {
			te.CorrelationID = correlationHeader(re.Response.Header)
			if status == http.StatusTooManyRequests || status >= 500 {
				// A 429 from the token endpoint (or a 503 with Retry-After):
				// wait as asked. A 429 without one waits the default.
				d, ok := boundedRetryAfter(re.Response.Header, ts.now(), maxTokenRetryAfter)
				if !ok && status == http.StatusTooManyRequests {
					d, ok = defaultRetryAfter, true
				}
				if ok {
					te.RetryAfter = d
				}
			}
		}
		return te
	}
	return &TokenError{Err: ts.redact(err)}
}

// safeCode keeps an OAuth error code only if it is a plain identifier that
// does not contain the secret.
func (ts *tokenSource) safeCode(code string) string {
	if code == "" || len(code) > 64 || ts.hasSecret(code) {
		return ""
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return ""
		}
	}
	return code
}

// redact returns err, or a generic error if err's text holds the secret.
func (ts *tokenSource) redact(err error) error {
	if ts.hasSecret(err.Error()) {
		return errors.New("token request failed (details withheld: they contained the client secret)")
	}
	return err
}

func (ts *tokenSource) hasSecret(s string) bool {
	for _, r := range ts.redactIn {
		if r != "" && strings.Contains(s, r) {
			return true
		}
	}
	return false
}

// tokenCtxErr is the error for a token wait or fetch ended by the caller's
// ctx: its cancellation wrapped, or for a passed deadline a *TokenError
// (Rejected false) wrapping context.DeadlineExceeded.
func tokenCtxErr(ctx context.Context) error {
	if cerr := canceled(ctx); cerr != nil {
		return fmt.Errorf("platform: fetch token: %w", cerr)
	}
	return &TokenError{Err: fmt.Errorf("fetch token: %w", ctx.Err())}
}
