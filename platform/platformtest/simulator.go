package platformtest

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tokenPath is where the simulator's OAuth token endpoint lives.
const tokenPath = "/oauth/token"

// Simulator is an in-memory Genesys Cloud Platform API: an OAuth token
// endpoint, the outbound endpoints of platform-facts.md, rate-limit windows
// and fault injection. It is an http.Handler; all methods are safe for
// concurrent use.
type Simulator struct {
	cfg Config // with defaults applied
	now func() time.Time

	limits     atomic.Pointer[limits]
	latency    atomic.Int64  // time.Duration
	errorRatio atomic.Uint64 // math.Float64bits
	outage     atomic.Bool

	rngMu sync.Mutex
	rng   *rand.Rand // ErrorRatio draws

	mu      sync.RWMutex
	clients map[string]*client
	orgs    map[string]*org
	shared  map[string]*buckets // by SharedBuckets name

	tokens sync.Map // access token -> *token

	log       requestLog
	observers observers

	ctxBase uint64
	ctxSeq  atomic.Uint64
}

// client is one configured OAuth client.
type client struct {
	id      string
	org     *org
	buckets *buckets // the client's windows unless every token has its own
	stats   clientCounters

	faulty atomic.Bool // throttleN > 0 || failN > 0, read without the lock

	mu             sync.Mutex
	secret         string
	tokens         []*token
	throttleN      int
	throttleSecs   int
	failN          int
	failStatus     int
	failRetryAfter int // seconds; < 0 for no Retry-After header
	tokenThrottleN int // ThrottleTokens: token requests still to refuse
	tokenThrottleS int
}

// refreshFaulty updates cl.faulty; cl.mu is held.
func (cl *client) refreshFaulty() { cl.faulty.Store(cl.throttleN > 0 || cl.failN > 0) }

// token is one issued access token.
type token struct {
	value   string
	client  *client
	buckets *buckets
	expires atomic.Int64 // UnixNano
}

func (t *token) expired(now time.Time) bool { return now.UnixNano() >= t.expires.Load() }

// New returns a simulator configured by cfg. It panics if cfg.Validate fails.
func New(cfg Config) *Simulator {
	if err := cfg.Validate(); err != nil {
		panic("platformtest: invalid Config: " + err.Error())
	}
	cfg = cfg.withDefaults()
	var b [8]byte
	_, _ = crand.Read(b[:])
	s := &Simulator{
		cfg:     cfg,
		now:     cfg.Now,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		clients: make(map[string]*client),
		orgs:    make(map[string]*org),
		shared:  make(map[string]*buckets),
		log:     requestLog{max: cfg.MaxRecorded},
		ctxBase: binary.LittleEndian.Uint64(b[:]),
	}
	s.limits.Store(&limits{limit: cfg.Limit, window: cfg.Window})
	s.latency.Store(int64(cfg.Latency))
	s.errorRatio.Store(math.Float64bits(cfg.ErrorRatio))
	for _, c := range cfg.Clients {
		s.AddClient(c)
	}
	now := s.now()
	for orgID, cs := range cfg.Campaigns {
		o := s.org(orgID)
		o.mu.Lock()
		for _, c := range cs {
			o.putCampaign(c, now)
		}
		o.mu.Unlock()
	}
	return s
}

// org returns the state of org id, creating it on first use.
func (s *Simulator) org(id string) *org {
	s.mu.RLock()
	o := s.orgs[id]
	s.mu.RUnlock()
	if o != nil {
		return o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o = s.orgs[id]; o == nil {
		o = newOrg(id, s.cfg.Seed, len(s.cfg.EndpointLimits), s.cfg.StopDelay)
		s.orgs[id] = o
	}
	return o
}

// findOrg returns the state of org id, or nil.
func (s *Simulator) findOrg(id string) *org {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.orgs[id]
}

// AddClient adds an OAuth client, or changes the secret of a known one (its
// tokens stay valid). It panics if c is invalid or names a known client with
// another org.
func (s *Simulator) AddClient(c ClientCred) {
	if err := c.validate(); err != nil {
		panic("platformtest: AddClient: " + err.Error())
	}
	o := s.org(c.Org)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl := s.clients[c.ID]; cl != nil {
		if cl.org.id != c.Org {
			panic(fmt.Sprintf("platformtest: AddClient: client %q belongs to org %q, not %q", c.ID, cl.org.id, c.Org))
		}
		cl.mu.Lock()
		cl.secret = c.Secret
		cl.mu.Unlock()
		return
	}
	cl := &client{id: c.ID, org: o, secret: c.Secret}
	switch name, ok := s.cfg.SharedBuckets[c.ID]; {
	case ok:
		if s.shared[name] == nil {
			s.shared[name] = newBuckets(len(s.cfg.EndpointLimits))
		}
		cl.buckets = s.shared[name]
	case s.cfg.Scope == ScopeClient:
		cl.buckets = newBuckets(len(s.cfg.EndpointLimits))
	case s.cfg.Scope == ScopeOrg:
		cl.buckets = o.buckets
	}
	s.clients[c.ID] = cl
}

// client returns the client with id, or nil.
func (s *Simulator) client(id string) *client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients[id]
}

// mustClient returns the client with id, panicking for an unknown one: a
// fault aimed at a client that does not exist is a bug in the test.
func (s *Simulator) mustClient(method, id string) *client {
	cl := s.client(id)
	if cl == nil {
		panic(fmt.Sprintf("platformtest: %s: unknown client %q", method, id))
	}
	return cl
}

// Throttle answers the next n API requests of clientID with the normalized
// 429 (see the package documentation) and Retry-After: retryAfter rounded
// up to whole seconds (negative: 0). Its limit object names the main limit
// (TokenRateLimitKey); with Limit 0 (unlimited) there is none to name and
// the body has no limit object. These answers do not use up the window.
// n <= 0 cancels a pending Throttle. Throttle is checked before FailNext.
func (s *Simulator) Throttle(clientID string, n int, retryAfter time.Duration) {
	cl := s.mustClient("Throttle", clientID)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.throttleN = max(n, 0)
	cl.throttleSecs = ceilSeconds(retryAfter)
	cl.refreshFaulty()
}

// FailNext answers the next n API requests of clientID with status and the
// standard error body, without Retry-After (429 without Retry-After, for
// instance, with the older code too.many.requests, to test a client's
// fallback). These answers do not use up the window. n <= 0 cancels a
// pending FailNext or FailNextRetryAfter.
func (s *Simulator) FailNext(clientID string, n int, status int) {
	s.failNext("FailNext", clientID, n, status, -1)
}

// FailNextRetryAfter is FailNext with a Retry-After header: retryAfter
// rounded up to whole seconds (negative: 0) — a 503 with Retry-After, for
// instance. It replaces a pending FailNext.
func (s *Simulator) FailNextRetryAfter(clientID string, n, status int, retryAfter time.Duration) {
	s.failNext("FailNextRetryAfter", clientID, n, status, ceilSeconds(retryAfter))
}

func (s *Simulator) failNext(method, clientID string, n, status, retryAfter int) {
	if status < 100 || status > 599 {
		panic(fmt.Sprintf("platformtest: %s: status %d is not an HTTP status", method, status))
	}
	cl := s.mustClient(method, clientID)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.failN = max(n, 0)
	cl.failStatus = status
	cl.failRetryAfter = retryAfter
	cl.refreshFaulty()
}

// ThrottleTokens answers the next n token requests of clientID (as named
// by their HTTP Basic user, whatever the secret) with 429 and Retry-After:
// retryAfter rounded up to whole seconds (negative: 0). The body is the
// platform's normalized 429 body (not an OAuth error body) without a limit
// object: the token endpoint's own limit has no documented key. No token is
// issued. n <= 0 cancels a pending ThrottleTokens. It is checked before
// SetTokenOutage.
func (s *Simulator) ThrottleTokens(clientID string, n int, retryAfter time.Duration) {
	cl := s.mustClient("ThrottleTokens", clientID)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.tokenThrottleN = max(n, 0)
	cl.tokenThrottleS = ceilSeconds(retryAfter)
}

// SetTokenOutage makes the token endpoint answer every request 503 while on.
// Tokens already issued keep working.
func (s *Simulator) SetTokenOutage(on bool) { s.outage.Store(on) }

// SetLimit changes the requests allowed per window and the window length
// (window <= 0 keeps the current length). A window already open keeps its
// end; the new limit applies to it at once, and the limits API and 429
// bodies report it (per minute) from now on. Endpoint limits with a zero
// Window follow the new window length.
func (s *Simulator) SetLimit(limit int, window time.Duration) {
	if limit < 0 {
		panic(fmt.Sprintf("platformtest: SetLimit: negative limit %d", limit))
	}
	if window <= 0 {
		window = s.limits.Load().window
	}
	s.limits.Store(&limits{limit: limit, window: window})
}

// SetLatency changes the latency added to every API answer.
func (s *Simulator) SetLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// SetErrorRatio changes the fraction of API requests answered 503.
func (s *Simulator) SetErrorRatio(ratio float64) {
	if ratio < 0 || ratio > 1 || math.IsNaN(ratio) {
		panic(fmt.Sprintf("platformtest: SetErrorRatio: %g is outside [0, 1]", ratio))
	}
	s.errorRatio.Store(math.Float64bits(ratio))
}

// ExpireTokens makes every token issued to clientID so far expire now: API
// requests with them are answered 401 bad.credentials.
func (s *Simulator) ExpireTokens(clientID string) {
	cl := s.mustClient("ExpireTokens", clientID)
	now := s.now().UnixNano()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, t := range cl.tokens {
		if t.expires.Load() > now {
			t.expires.Store(now)
		}
	}
}

// Requests returns the recorded requests (oldest first) that match f. See
// Config.MaxRecorded.
func (s *Simulator) Requests(f RequestFilter) []Request { return s.log.filter(f) }

// Stats returns what clientID's requests got so far; zero for an unknown id.
func (s *Simulator) Stats(clientID string) ClientStats {
	if cl := s.client(clientID); cl != nil {
		return cl.stats.snapshot()
	}
	return ClientStats{}
}

// OnRequest registers fn to be called with every request once its answer is
// decided, just before the answer is written — so a caller that has read a
// response can rely on fn having run for it. fn runs on the serving
// goroutine: keep it short and non-blocking.
func (s *Simulator) OnRequest(fn func(Request)) { s.observers.add(fn) }

// ServeHTTP answers one request: POST /oauth/token, the outbound API under
// /api/v2/outbound/, the organization limits API, and 404 for anything
// else. Every answer carries a fresh ININ-Correlation-Id.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	rec := Request{At: now, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		CorrelationID: s.correlationID()}
	switch {
	case r.URL.Path == tokenPath:
		s.serveToken(w, r, rec)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.serveAPI(w, r, rec)
	default:
		s.finish(w, r, rec, nil, s.fail(http.StatusNotFound, "not.found", "The requested resource was not found."), kindOther)
	}
}

// serveAPI authenticates, applies faults and the rate limit, then routes.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request, rec Request) {
	raw, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		s.finish(w, r, rec, nil, s.fail(http.StatusUnauthorized, "authentication.required",
			"No authentication bearer token specified in authorization header."), kindAPI)
		return
	}
	rec.Token = raw
	v, ok := s.tokens.Load(raw)
	if !ok {
		s.finish(w, r, rec, nil, s.badCredentials(), kindAPI)
		return
	}
	t := v.(*token)
	cl := t.client
	rec.ClientID, rec.Org = cl.id, cl.org.id
	if t.expired(rec.At) {
		s.finish(w, r, rec, cl, s.badCredentials(), kindAPI)
		return
	}
	s.finish(w, r, rec, cl, s.decide(r, rec.At, t), kindAPI)
}

func (s *Simulator) badCredentials() answer {
	return s.fail(http.StatusUnauthorized, "bad.credentials", "Invalid login credentials.")
}

// decide produces the answer to an authenticated API request: an injected
// fault, a 503 by ErrorRatio, a 429 from a window, or the endpoint's.
// Injected answers do not use up the window.
func (s *Simulator) decide(r *http.Request, now time.Time, t *token) answer {
	l := *s.limits.Load()
	cl := t.client
	// legacy: the answer reports the main window in inin-ratelimit-* headers.
	legacy := s.cfg.LegacyRateLimitHeaders && l.limit > 0
	peeked := func(a answer) answer {
		if legacy {
			ws := t.buckets.main.peek(now, l)
			a.window = &ws
		}
		return a
	}
	if cl.faulty.Load() {
		if a, ok := s.injected(cl, l); ok {
			return peeked(a)
		}
	}
	if ratio := math.Float64frombits(s.errorRatio.Load()); ratio > 0 && s.roll(ratio) {
		return peeked(s.fail(http.StatusServiceUnavailable, "service.unavailable", "The service is temporarily unavailable."))
	}
	ws, refused := t.buckets.admit(now, l, s.cfg.EndpointLimits, r.URL.Path)
	var a answer
	if refused != nil {
		a = s.tooManyRequests(max(ceilSeconds(refused.reset), 1), &refused.limit)
	} else {
		a = s.route(r, now, cl.org)
	}
	if legacy {
		a.window = &ws
	}
	return a
}

// injected consumes one pending Throttle or FailNext answer of cl.
func (s *Simulator) injected(cl *client, l limits) (answer, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	defer cl.refreshFaulty()
	switch {
	case cl.throttleN > 0:
		cl.throttleN--
		var lim *Limit
		if l.limit > 0 {
			lim = &Limit{Key: TokenRateLimitKey, Namespace: PlatformAPINamespace, Value: perMinute(l.limit, l.window)}
		}
		return s.tooManyRequests(cl.throttleSecs, lim), true
	case cl.failN > 0:
		cl.failN--
		a := s.fail(cl.failStatus, codeFor(cl.failStatus), "Injected by platformtest FailNext")
		a.retryAfter = cl.failRetryAfter
		return a, true
	}
	return answer{}, false
}

// tooManyRequests is the platform's normalized 429: Retry-After
// retryAfter and the error body with code too.many.requests.retry.after,
// naming lim unless it is nil or Config.OmitLimitInBody is set.
func (s *Simulator) tooManyRequests(retryAfter int, lim *Limit) answer {
	a := s.fail(http.StatusTooManyRequests, "too.many.requests.retry.after",
		fmt.Sprintf("Rate limit exceeded the maximum. Retry the request in [%d] seconds", retryAfter))
	if lim != nil && !s.cfg.OmitLimitInBody {
		l := *lim
		a.errBody.Limit = &l
	}
	a.retryAfter = retryAfter
	return a
}

func (s *Simulator) roll(ratio float64) bool {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < ratio
}

// codeFor is the platform's error code for an HTTP status.
func codeFor(status int) string {
	switch status {
	case 400:
		return "bad.request"
	case 401:
		return "bad.credentials"
	case 403:
		return "missing.permissions"
	case 404:
		return "not.found"
	case 405:
		return "method.not.allowed"
	case 409:
		return "conflict"
	case 413:
		return "request.entity.too.large"
	case 429:
		return "too.many.requests"
	case 500:
		return "internal.server.error"
	case 502:
		return "bad.gateway"
	case 503:
		return "service.unavailable"
	case 504:
		return "gateway.timeout"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", ".")
}

// bearer extracts the token from an "Authorization: Bearer …" header.
func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// answer is a response decided but not yet written.
type answer struct {
	status     int
	body       []byte    // JSON, or nil for none
	errBody    *apiError // instead of body: finish sets its contextId and encodes it
	retryAfter int       // seconds; < 0 for no Retry-After header
	window     *windowState
	header     [][2]string // extra headers
}

// apiError is the platform's standard error body (ErrorBody).
type apiError struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	ContextID string `json:"contextId"`
	Details   []any  `json:"details"`
	Errors    []any  `json:"errors"`
	Limit     *Limit `json:"limit,omitempty"`
}

// fail builds an error answer with the standard error body; its contextId
// is the request's correlation id, filled in by finish.
func (s *Simulator) fail(status int, code, msg string) answer {
	return answer{status: status, retryAfter: -1,
		errBody: &apiError{Status: status, Code: code, Message: msg, Details: []any{}, Errors: []any{}}}
}

// noContent is a 204 answer without a body.
func noContent() answer { return answer{status: http.StatusNoContent, retryAfter: -1} }

// ok builds a success answer with v as its JSON body (nil v: no body).
func (s *Simulator) ok(v any) answer {
	if v == nil {
		return answer{status: http.StatusOK, retryAfter: -1}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return s.fail(http.StatusInternalServerError, "internal.server.error", "encoding the response: "+err.Error())
	}
	return answer{status: http.StatusOK, body: body, retryAfter: -1}
}

// correlationID returns a fresh id for one answer, shaped like a version 4
// UUID: a random per-simulator base and a sequence number, so ids never
// repeat within a simulator.
func (s *Simulator) correlationID() string {
	hi, lo := s.ctxBase, s.ctxSeq.Add(1)
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0x0fff,
		0x8000|(lo>>48)&0x3fff, lo&0xffffffffffff)
}

// requestKind says which statistics a request counts in.
type requestKind int

const (
	kindOther requestKind = iota
	kindAPI
	kindToken
)

// finish waits out the latency (API requests), records the request, calls
// the observers and writes the answer.
func (s *Simulator) finish(w http.ResponseWriter, r *http.Request, rec Request, cl *client, a answer, kind requestKind) {
	if kind == kindAPI {
		if d := time.Duration(s.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				rec.Status = 0
				s.account(rec, cl, kind)
				return
			}
		}
	}
	rec.Status = a.status
	s.account(rec, cl, kind)

	if a.errBody != nil {
		a.errBody.ContextID = rec.CorrelationID
		a.body, _ = json.Marshal(a.errBody)
	}
	h := w.Header()
	h["Inin-Correlation-Id"] = []string{rec.CorrelationID}
	if a.body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	if a.window != nil {
		h["Inin-Ratelimit-Allowed"] = []string{strconv.Itoa(a.window.allowed)}
		h["Inin-Ratelimit-Count"] = []string{strconv.Itoa(a.window.count)}
		h["Inin-Ratelimit-Reset"] = []string{strconv.Itoa(ceilSeconds(a.window.reset))}
	}
	if a.retryAfter >= 0 {
		h["Retry-After"] = []string{strconv.Itoa(a.retryAfter)}
	}
	for _, kv := range a.header {
		h.Set(kv[0], kv[1])
	}
	w.WriteHeader(a.status)
	if a.body != nil {
		_, _ = w.Write(a.body)
	}
}

func (s *Simulator) account(rec Request, cl *client, kind requestKind) {
	if cl != nil {
		switch kind {
		case kindAPI:
			cl.stats.countAPI(rec.Status)
		case kindToken:
			if rec.Status == http.StatusOK {
				cl.stats.tokensIssued.Add(1)
			} else {
				cl.stats.tokenErrors.Add(1)
			}
		}
	}
	s.log.add(rec)
	s.observers.call(rec)
}

// readBody reads an API request body of at most MaxBodyBytes; a larger one
// is answered 413.
func (s *Simulator) readBody(r *http.Request) ([]byte, *answer) {
	tooLarge := func() *answer {
		a := s.fail(http.StatusRequestEntityTooLarge, "request.entity.too.large",
			fmt.Sprintf("The request body exceeds the maximum of %d bytes", MaxBodyBytes))
		return &a
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		a := s.fail(http.StatusBadRequest, "bad.request", "reading the request body: "+err.Error())
		return nil, &a
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge()
	}
	return body, nil
}
