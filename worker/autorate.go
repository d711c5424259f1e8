package worker

import (
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

// autoRateMargin is the share of the window's remaining budget auto-rate
// plans to spend: 10 % stays unused for clock skew between the platform's
// window and ours, and for requests the headers have not counted yet.
const autoRateMargin = 0.9

// autoRate learns a tenant's pace from the platform's rate-limit headers
// (rate: auto). Each answer says how many requests the window allows
// (inin-ratelimit-allowed), how many it has counted (-count) and how long
// until it resets (-reset). Spending the rest evenly over the rest of the
// window,
//
//	rate = margin · (allowed − count) / reset,
//
// never runs out before the window resets, so steady state sees no 429: early
// in a window it is ≈ allowed/window; when someone else eats into the budget
// the remaining shrinks and the pace drops with it; once the budget is spent
// the pace falls to one request just after the reset. ok is false when the
// answer carried no usable headers (the pace then stays as it was).
func autoRate(l platform.RateLimit) (perSec float64, ok bool) {
	if !l.Present || l.Allowed <= 0 {
		return 0, false
	}
	reset := l.Reset
	if reset < time.Second {
		// The header counts whole seconds: 0 means "within the second".
		reset = time.Second
	}
	remaining := l.Allowed - l.Count
	if remaining <= 0 {
		return 1 / (reset + time.Second).Seconds(), true
	}
	return autoRateMargin * float64(remaining) / reset.Seconds(), true
}
