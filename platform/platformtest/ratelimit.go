package platformtest

import (
	"sync"
	"time"
)

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

// windowState is what the inin-ratelimit-* headers report.
type windowState struct {
	allowed int
	count   int
	reset   time.Duration // until the window resets
}

// take admits one request if the window has room.
func (b *bucket) take(now time.Time, l limits) (ok bool, st windowState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.Before(b.end) {
		b.end = now.Add(l.window)
		b.count = 0
	}
	ok = b.count < l.limit
	if ok {
		b.count++
	}
	return ok, windowState{allowed: l.limit, count: b.count, reset: b.end.Sub(now)}
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
