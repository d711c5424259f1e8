package worker

import (
	"math/rand/v2"
	"time"
)

// backoffCeiling is the upper bound of the wait before attempt+1 after
// attempt failed: base·2^(attempt-1), capped at ceiling. attempt counts from 1.
func backoffCeiling(attempt int, base, ceiling time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt; i++ {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

// fullJitter picks the wait uniformly in [0, ceiling] ("full jitter"): the
// retries of many jobs that failed together spread out instead of arriving
// together again. rnd returns a number in [0, n); nil means math/rand/v2.
func fullJitter(ceiling time.Duration, rnd func(n int64) int64) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceiling) + 1))
}
