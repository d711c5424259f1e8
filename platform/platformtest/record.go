package platformtest

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one request the simulator answered (API and token requests
// alike), as seen by Requests and OnRequest observers.
type Request struct {
	// At is when the request arrived, by Config.Now.
	At time.Time
	// ClientID and Org identify the caller: from the bearer token for API
	// requests, from the Basic auth user for token requests. Empty when the
	// caller could not be identified (no or unknown token, unknown client).
	ClientID, Org string
	// Token is the bearer token presented (empty for token requests). It is
	// test data: never log it.
	Token        string
	Method, Path string
	// Query is the raw query string (without "?"), e.g.
	// "useMaxCallsPerAgentDecimal=true".
	Query string
	// CorrelationID is the id sent in the ININ-Correlation-Id header of the
	// answer (and as contextId in its error body, if any).
	CorrelationID string
	// Status is the HTTP status answered; 0 when the caller went away (its
	// context was cancelled) before the answer was ready.
	Status int
}

// RequestFilter selects requests for Requests; zero fields match everything.
type RequestFilter struct {
	ClientID   string
	Org        string
	Method     string
	PathPrefix string // e.g. "/api/" for API requests only
	Status     int
	Since      time.Time // At >= Since
	Until      time.Time // At < Until
}

func (f RequestFilter) match(r *Request) bool {
	return (f.ClientID == "" || r.ClientID == f.ClientID) &&
		(f.Org == "" || r.Org == f.Org) &&
		(f.Method == "" || r.Method == f.Method) &&
		(f.PathPrefix == "" || strings.HasPrefix(r.Path, f.PathPrefix)) &&
		(f.Status == 0 || r.Status == f.Status) &&
		(f.Since.IsZero() || !r.At.Before(f.Since)) &&
		(f.Until.IsZero() || r.At.Before(f.Until))
}

// ClientStats counts what one OAuth client's requests got.
type ClientStats struct {
	Requests     int // API requests made with one of the client's tokens (valid or expired)
	Succeeded    int // API answers 2xx
	RateLimited  int // API answers 429 (window exhausted, Throttle, or FailNext(…, 429))
	Unauthorized int // API answers 401 (expired token, or FailNext(…, 401))
	Failed       int // other API answers: 4xx, 5xx, and callers gone before the answer
	TokensIssued int // successful token requests
	TokenErrors  int // refused token requests (wrong secret, bad grant, token outage)
}

// clientCounters are a client's ClientStats, updated lock-free.
type clientCounters struct {
	requests, succeeded, rateLimited, unauthorized, failed atomic.Int64
	tokensIssued, tokenErrors                              atomic.Int64
}

func (c *clientCounters) countAPI(status int) {
	c.requests.Add(1)
	switch {
	case status >= 200 && status < 300:
		c.succeeded.Add(1)
	case status == 429:
		c.rateLimited.Add(1)
	case status == 401:
		c.unauthorized.Add(1)
	default:
		c.failed.Add(1)
	}
}

func (c *clientCounters) snapshot() ClientStats {
	return ClientStats{
		Requests:     int(c.requests.Load()),
		Succeeded:    int(c.succeeded.Load()),
		RateLimited:  int(c.rateLimited.Load()),
		Unauthorized: int(c.unauthorized.Load()),
		Failed:       int(c.failed.Load()),
		TokensIssued: int(c.tokensIssued.Load()),
		TokenErrors:  int(c.tokenErrors.Load()),
	}
}

// requestLog is a bounded ring of recent requests.
type requestLog struct {
	max  int // <= 0: off
	mu   sync.Mutex
	buf  []Request
	next int // index of the oldest entry once buf is full
}

func (l *requestLog) add(r Request) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	if len(l.buf) < l.max {
		l.buf = append(l.buf, r)
	} else {
		l.buf[l.next] = r
		l.next = (l.next + 1) % l.max
	}
	l.mu.Unlock()
}

func (l *requestLog) filter(f RequestFilter) []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Request
	for i := range l.buf {
		r := &l.buf[(l.next+i)%len(l.buf)]
		if f.match(r) {
			out = append(out, *r)
		}
	}
	return out
}

// observers is a copy-on-write list of OnRequest hooks.
type observers struct {
	mu  sync.Mutex
	fns atomic.Pointer[[]func(Request)]
}

func (o *observers) add(fn func(Request)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var next []func(Request)
	if cur := o.fns.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, fn)
	o.fns.Store(&next)
}

func (o *observers) call(r Request) {
	if fns := o.fns.Load(); fns != nil {
		for _, fn := range *fns {
			fn(r)
		}
	}
}
