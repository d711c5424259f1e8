package platformtest

import (
	"math"
	"strings"
	"sync"
	"time"
)

// The main limit, as the limits API and 429 bodies name it.
const (
	// TokenRateLimitKey is the key of the main limit: API requests per
	// minute per client-credentials token (Config.Limit per Config.Window).
	TokenRateLimitKey = "client.credentials.token.rate.per.minute"
	// PlatformAPINamespace is the namespace of the main limit.
	PlatformAPINamespace = "platform.api"
)

// Limit is the platform's limit object: in the limits API's entities and
// in a 429 body's "limit". Value is requests per minute.
type Limit struct {
	Key       string `json:"key"`
	Namespace string `json:"namespace"`
	Value     int    `json:"value"`
}

// perMinute expresses limit requests per window as requests per minute,
// rounded to the nearest integer (50 per 10 s: 300).
func perMinute(limit int, window time.Duration) int {
	if window <= 0 {
		return limit
	}
	return int(math.Round(float64(limit) * float64(time.Minute) / float64(window)))
}

// limits is the rate-limit setting in force; replaced as a whole by SetLimit.
type limits struct {
	limit  int // 0: unlimited
	window time.Duration
}

// bucket is one fixed rate-limit window. A window opens with the first
// request after the previous one ended and lasts the window length in force
// at that moment; requests refused with 429 do not count.
type bucket struct {
	mu    sync.Mutex
	end   time.Time // the current window ends (resets) at end
	count int       // requests admitted in the current window
}

// buckets are the windows of one owner (a token, client, org or shared
// group, by Config.Scope and Config.SharedBuckets): the main one and one per
// Config.EndpointLimits entry, in its order.
type buckets struct {
	main     bucket
	endpoint []bucket
}

func newBuckets(endpointLimits int) *buckets {
	return &buckets{endpoint: make([]bucket, endpointLimits)}
}

// refusal names the limit that refused a request and when its window resets.
type refusal struct {
	limit Limit
	reset time.Duration
}

// gate is one window a request must pass, with the limit in force for it.
type gate struct {
	b      *bucket
	limit  int
	window time.Duration
	key    string
	ns     string
}

// admit counts a request for path in every window it must pass — the main
// one when l.limit > 0, and each endpoint limit whose prefix path has — if
// all have room; otherwise it counts it in none and names the refusing
// limit whose window resets last (so that waiting out Retry-After is
// enough). ws is the main window after the decision. Windows are locked in
// a fixed order (main first, then endpoint limits in order).
func (bs *buckets) admit(now time.Time, l limits, eps []EndpointLimit, path string) (ws windowState, refused *refusal) {
	var buf [4]gate
	gates := buf[:0]
	if l.limit > 0 {
		gates = append(gates, gate{&bs.main, l.limit, l.window, TokenRateLimitKey, PlatformAPINamespace})
	}
	for i := range eps {
		if e := &eps[i]; strings.HasPrefix(path, e.PathPrefix) {
			w := e.Window
			if w == 0 {
				w = l.window
			}
			gates = append(gates, gate{&bs.endpoint[i], e.Limit, w, e.Key, e.Namespace})
		}
	}
	for _, g := range gates {
		g.b.mu.Lock()
	}
	defer func() {
		for _, g := range gates {
			g.b.mu.Unlock()
		}
	}()
	for _, g := range gates {
		if !now.Before(g.b.end) {
			g.b.end = now.Add(g.window)
			g.b.count = 0
		}
		if g.b.count >= g.limit {
			if reset := g.b.end.Sub(now); refused == nil || reset > refused.reset {
				refused = &refusal{Limit{g.key, g.ns, perMinute(g.limit, g.window)}, reset}
			}
		}
	}
	if refused == nil {
		for _, g := range gates {
			g.b.count++
		}
	}
	if l.limit > 0 {
		ws = windowState{allowed: l.limit, count: bs.main.count, reset: bs.main.end.Sub(now)}
	}
	return ws, refused
}

// windowState is what the legacy inin-ratelimit-* headers report.
type windowState struct {
	allowed int
	count   int
	reset   time.Duration // until the window resets
}

// peek reports the window without counting a request.
func (b *bucket) peek(now time.Time, l limits) windowState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.Before(b.end) {
		return windowState{allowed: l.limit, count: 0, reset: l.window}
	}
	return windowState{allowed: l.limit, count: b.count, reset: b.end.Sub(now)}
}

// ceilSeconds rounds d up to whole seconds; negative durations give 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
