package worker

import (
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	base, maxd := time.Second, 5*time.Minute
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {64, 5 * time.Minute}, {1 << 30, 5 * time.Minute},
	} {
		if got := backoffCeiling(tc.attempt, base, maxd); got != tc.want {
			t.Errorf("backoffCeiling(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

func TestFullJitterBounds(t *testing.T) {
	ceiling := 800 * time.Millisecond
	if got := fullJitter(ceiling, func(n int64) int64 { return 0 }); got != 0 {
		t.Errorf("lowest draw: %s, want 0", got)
	}
	if got := fullJitter(ceiling, func(n int64) int64 { return n - 1 }); got != ceiling {
		t.Errorf("highest draw: %s, want the ceiling %s", got, ceiling)
	}
	if got := fullJitter(0, nil); got != 0 {
		t.Errorf("zero ceiling: %s", got)
	}
	// With the real source: always within [0, ceiling], and spread over it.
	var low, high bool
	for range 2000 {
		d := fullJitter(ceiling, nil)
		if d < 0 || d > ceiling {
			t.Fatalf("jitter %s outside [0, %s]", d, ceiling)
		}
		low = low || d < ceiling/4
		high = high || d > 3*ceiling/4
	}
	if !low || !high {
		t.Errorf("2000 draws did not cover the range (low quarter %v, high quarter %v)", low, high)
	}
}
