package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Latency summarises queue-to-call latencies of the jobs published in a
// measurement window. Jobs never served by the end of the run count as
// infinitely late: a percentile that falls on them is nil ("unserved").
type Latency struct {
	Jobs   int      `json:"jobs"`   // jobs published in the window
	Served int      `json:"served"` // of which reached the platform with a 2xx answer
	P50Ms  *float64 `json:"p50_ms"`
	P99Ms  *float64 `json:"p99_ms"`
	MaxMs  *float64 `json:"max_ms"`
}

// summarize builds a Latency from the served jobs' latencies and the number
// of jobs that were never served.
func summarize(served []time.Duration, unserved int) Latency {
	l := Latency{Jobs: len(served) + unserved, Served: len(served)}
	if l.Jobs == 0 {
		return l
	}
	s := slices.Clone(served)
	slices.Sort(s)
	at := func(q float64) *float64 {
		i := rank(l.Jobs, q)
		if i >= len(s) {
			return nil
		}
		v := float64(s[i]) / float64(time.Millisecond)
		return &v
	}
	l.P50Ms, l.P99Ms = at(0.50), at(0.99)
	if unserved == 0 && len(s) > 0 {
		v := float64(s[len(s)-1]) / float64(time.Millisecond)
		l.MaxMs = &v
	}
	return l
}

// rank is the 0-based index of the q-quantile among n sorted values
// (nearest-rank method).
func rank(n int, q float64) int {
	i := int(math.Ceil(q*float64(n))) - 1
	return max(0, min(i, n-1))
}

// percentileDur returns the q-quantile of xs (which it sorts).
func percentileDur(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[rank(len(xs), q)]
}

// percentileF returns the q-quantile of xs (which it sorts).
func percentileF(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[rank(len(xs), q)]
}

func fmtMs(p *float64) string {
	if p == nil {
		return "unserved"
	}
	return fmt.Sprintf("%.1f ms", *p)
}

func fmtRatio(v float64) string { return fmt.Sprintf("%.3f", v) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// converged returns the first bucket index from which the moving average of
// per-bucket rates over win buckets stays within tol (relative) of want until
// the end, and false when it never does — or does only for less than one more
// window before the end (too little evidence). rates are per-bucket rates
// (e.g. requests per second measured in each bucket).
func converged(rates []float64, win int, want, tol float64) (int, bool) {
	if win <= 0 || len(rates) < win {
		return 0, false
	}
	first := -1
	sum := 0.0
	for i := range rates {
		sum += rates[i]
		if i >= win {
			sum -= rates[i-win]
		}
		if i < win-1 {
			continue
		}
		avg := sum / float64(win)
		if math.Abs(avg-want) <= tol*want {
			if first < 0 {
				first = i
			}
		} else {
			first = -1
		}
	}
	// The moving window ending at bucket first covers buckets
	// first-win+1..first; convergence is reached at the end of bucket first.
	if first < 0 || len(rates)-(first+1) < win {
		return 0, false
	}
	return first + 1, true
}
