package worker

import (
	"math"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

func TestAutoRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit platform.RateLimit
		want  float64
		ok    bool
	}{
		{"no headers", platform.RateLimit{}, 0, false},
		{"no allowance", platform.RateLimit{Present: true, Reset: time.Minute}, 0, false},
		// platform-facts' example 300/6/38: 294 left for 38 s.
		{"early in the window", platform.RateLimit{Present: true, Allowed: 300, Count: 6, Reset: 38 * time.Second}, 0.9 * 294 / 38, true},
		{"fresh window", platform.RateLimit{Present: true, Allowed: 300, Count: 0, Reset: 60 * time.Second}, 0.9 * 300 / 60, true},
		{"late, little left", platform.RateLimit{Present: true, Allowed: 300, Count: 290, Reset: 20 * time.Second}, 0.9 * 10 / 20, true},
		{"spent: one just after the reset", platform.RateLimit{Present: true, Allowed: 180, Count: 180, Reset: 9 * time.Second}, 1.0 / 10, true},
		{"reset within the second", platform.RateLimit{Present: true, Allowed: 100, Count: 90, Reset: 0}, 0.9 * 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := autoRate(tc.limit)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("autoRate(%+v) = %g, %v; want %g, %v", tc.limit, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Paced by autoRate, a client never spends more than the window allows: a
// simulation of a 300/60 s window answered after every request.
func TestAutoRateStaysWithinTheWindow(t *testing.T) {
	const allowed, window = 300, 60 * time.Second
	elapsed, count := time.Duration(0), 0
	perSec, _ := autoRate(platform.RateLimit{Present: true, Allowed: allowed, Reset: window})
	for elapsed < window {
		elapsed += time.Duration(float64(time.Second) / perSec)
		if elapsed >= window {
			break
		}
		count++
		if count > allowed {
			t.Fatalf("request %d at %s exceeds the window's %d", count, elapsed, allowed)
		}
		perSec, _ = autoRate(platform.RateLimit{Present: true, Allowed: allowed, Count: count, Reset: window - elapsed})
	}
	// And it does use the window: ≥ 80 % of it.
	if count < allowed*8/10 {
		t.Errorf("only %d of %d requests used", count, allowed)
	}
	t.Logf("%d of %d requests in the window", count, allowed)
}
