package worker

import (
	"sync"
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

// minAutoLeft is the least time to the window's end auto-rate plans with, so
// that the last few requests of a window go out quickly, not all at once.
const minAutoLeft = 50 * time.Millisecond

// autoPacer learns a tenant's pace from the platform's rate-limit headers
// (rate: auto). Each answer says how many requests the window allows
// (inin-ratelimit-allowed), how many it has counted (-count) and how long
// until it resets (-reset). Spending what is left evenly over the rest of the
// window,
//
//	rate = (allowed − count − others in flight) / time to the window's end,
//
// cannot run out before the window resets, so steady state sees no 429: early
// in a window it is ≈ allowed/window; when someone else eats into the budget
// the remaining shrinks and the pace drops with it; once the budget is spent,
// the next request waits for the window's end. The lane's other requests on
// the wire (sent, not yet answered) may not be counted by the platform yet,
// so they are set aside; jobs merely waiting for the limiter are not.
//
// The reset header counts whole seconds (rounded up, as the simulator does;
// the platform does not document it), so one answer only places the window's
// end in (now+reset−1s, now+reset]. Pacing on that alone runs up to a second
// slow and then waits up to a second too long: ≈ 1.5 % of a 60 s window, 8 %
// of a 10 s one. The pacer intersects the intervals of successive answers,
// which pins the end down to milliseconds within a few requests. A count that
// falls, or an interval that no longer overlaps, starts a new window (this is
// also how it degrades if the platform rounds the other way: to the
// one-answer estimate).
type autoPacer struct {
	mu        sync.Mutex
	lo, hi    time.Time // the window ends in (lo, hi]; zero: unknown
	lastCount int
}

// observe takes one answer's headers, received at now, while others of the
// lane's requests are on the wire, and returns the pace in requests per
// second. ok is false when the answer carried no usable headers
// (the pace then stays as it was).
func (a *autoPacer) observe(now time.Time, l platform.RateLimit, others int) (perSec float64, ok bool) {
	if !l.Present || l.Allowed <= 0 {
		return 0, false
	}
	lo, hi := now.Add(l.Reset-time.Second), now.Add(l.Reset)
	if l.Reset < time.Second {
		lo = now // "within the second"
	}
	a.mu.Lock()
	switch {
	case a.hi.IsZero() || l.Count < a.lastCount || !lo.Before(a.hi) || !a.lo.Before(hi):
		a.lo, a.hi = lo, hi // a new window, or the first answer
	default:
		a.lo, a.hi = later(a.lo, lo), earlier(a.hi, hi)
	}
	a.lastCount = l.Count
	lo, hi = a.lo, a.hi
	a.mu.Unlock()

	remaining := l.Allowed - l.Count - max(0, others)
	if remaining <= 0 {
		// Spent: the next request once the window has surely ended.
		return 1 / max(hi.Sub(now), minAutoLeft).Seconds(), true
	}
	left := max(lo.Add(hi.Sub(lo)/2).Sub(now), minAutoLeft)
	return float64(remaining) / left.Seconds(), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
