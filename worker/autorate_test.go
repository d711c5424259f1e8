package worker

import (
	"math"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

// One answer, to a pacer that has seen none: the window's end is placed in
// the middle of (now+reset−1s, now+reset].
func TestAutoPacerFirstAnswer(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		limit  platform.RateLimit
		others int
		want   float64
		ok     bool
	}{
		{"no headers", platform.RateLimit{}, 0, 0, false},
		{"no allowance", platform.RateLimit{Present: true, Reset: time.Minute}, 0, 0, false},
		// platform-facts' example 300/6/38: 294 left for ≈ 37.5 s.
		{"early in the window", platform.RateLimit{Present: true, Allowed: 300, Count: 6, Reset: 38 * time.Second}, 0, 294 / 37.5, true},
		{"fresh window", platform.RateLimit{Present: true, Allowed: 300, Count: 0, Reset: 60 * time.Second}, 0, 300 / 59.5, true},
		{"others in flight set aside", platform.RateLimit{Present: true, Allowed: 300, Count: 0, Reset: 60 * time.Second}, 3, 297 / 59.5, true},
		{"late, little left", platform.RateLimit{Present: true, Allowed: 300, Count: 290, Reset: 20 * time.Second}, 0, 10 / 19.5, true},
		{"spent: the next once the window has surely ended", platform.RateLimit{Present: true, Allowed: 180, Count: 180, Reset: 9 * time.Second}, 0, 1.0 / 9, true},
		{"spent by those in flight", platform.RateLimit{Present: true, Allowed: 100, Count: 98, Reset: 5 * time.Second}, 3, 1.0 / 5, true},
		{"reset within the second", platform.RateLimit{Present: true, Allowed: 100, Count: 90, Reset: 0}, 0, 10 / minAutoLeft.Seconds(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p autoPacer
			got, ok := p.observe(now, tc.limit, tc.others)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("observe(%+v, %d others) = %g, %v; want %g, %v", tc.limit, tc.others, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Answers at different points of a second narrow the window's end down.
func TestAutoPacerNarrowsTheWindowEnd(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	end := start.Add(60 * time.Second)
	var p autoPacer
	for i, at := range []time.Duration{0, 300 * time.Millisecond, 700 * time.Millisecond, 950 * time.Millisecond} {
		now := start.Add(at)
		p.observe(now, platform.RateLimit{Present: true, Allowed: 300, Count: i + 1, Reset: ceilSeconds(end.Sub(now))}, 0)
	}
	if !p.lo.Before(end) || p.hi.Before(end) {
		t.Fatalf("end %s outside the learnt (%s, %s]", end, p.lo, p.hi)
	}
	if w := p.hi.Sub(p.lo); w > 100*time.Millisecond {
		t.Errorf("after 4 answers the end is known to %s, want ≤ 100ms", w)
	}
}

// A client paced by the pacer against a fixed-window platform (the window
// opens with the first request after the previous one ended; the reset header
// is rounded up to whole seconds) never exceeds a window's allowance and uses
// nearly all of it, in short (time-compressed) and real-length windows.
func TestAutoPacerUsesTheWindowWithoutExceedingIt(t *testing.T) {
	for _, tc := range []struct {
		allowed int
		window  time.Duration
	}{{100, 10 * time.Second}, {300, 60 * time.Second}} {
		t.Run(tc.window.String(), func(t *testing.T) {
			const windows = 6
			var (
				p          autoPacer
				now        = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
				begin      = now
				wsStart    time.Time
				count, all int
				rate       = float64(tc.allowed) / 4 / tc.window.Seconds() // a poor first guess
			)
			for now.Sub(begin) < windows*tc.window {
				if wsStart.IsZero() || !now.Before(wsStart.Add(tc.window)) {
					wsStart, count = now, 0
				}
				count++
				all++
				if count > tc.allowed {
					t.Fatalf("request %d of the window at +%s exceeds its %d", count, now.Sub(wsStart), tc.allowed)
				}
				r, ok := p.observe(now, platform.RateLimit{Present: true, Allowed: tc.allowed, Count: count, Reset: ceilSeconds(wsStart.Add(tc.window).Sub(now))}, 0)
				if ok {
					rate = r
				}
				now = now.Add(time.Duration(float64(time.Second) / rate))
			}
			used := float64(all) / (float64(tc.allowed) * windows)
			t.Logf("%d requests in %d windows of %d: %.3f of the quota", all, windows, tc.allowed, used)
			if used < 0.97 {
				t.Errorf("used %.3f of the quota, want ≥ 0.97", used)
			}
		})
	}
}

func ceilSeconds(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}
