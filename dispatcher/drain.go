package dispatcher

import (
	"math"
	"time"
)

// ClassCounts are a tenant's jobs by priority class, indexed by
// Priority.Index (urgent, normal, bulk).
type ClassCounts [3]uint64

// Of is class p's count (0 for a name that is no class).
func (c ClassCounts) Of(p Priority) uint64 {
	if i := p.Index(); i >= 0 {
		return c[i]
	}
	return 0
}

// Total is the count over every class.
func (c ClassCounts) Total() uint64 { return c[0] + c[1] + c[2] }

// DrainSeconds is how long, working at ratePerSec jobs a second shared
// between the classes by weight, until the last job of class target is
// done, when queued are waiting now. It models the tenant's weighted
// sharing as a fluid: while several classes hold jobs, each gets
// ratePerSec × its PriorityWeight ÷ the weights of the classes holding jobs;
// a class that empties gives its share to the others; a class alone gets
// all of it. Only the classes ahead of target's last job matter, so the
// figure for a class is when its queue empties.
//
// A target with nothing queued takes 0. A ratePerSec that is not positive
// (no lane can run the tenant's jobs) gives +Inf for a target with jobs.
// It is a pure function of its arguments.
func DrainSeconds(queued ClassCounts, target Priority, ratePerSec float64) float64 {
	ti := target.Index()
	if ti < 0 || queued[ti] == 0 {
		return 0
	}
	switch {
	case math.IsInf(ratePerSec, 1):
		return 0
	case !(ratePerSec > 0): // 0, negative or NaN
		return math.Inf(1)
	}
	var q [3]float64
	for i, n := range queued {
		q[i] = float64(n)
	}
	weights := [3]float64{}
	for i, p := range Priorities() {
		weights[i] = float64(PriorityWeight(p))
	}
	elapsed := 0.0
	// Each round one class (at least) empties: at most three rounds.
	for range len(q) {
		active := 0.0
		for i := range q {
			if q[i] > 0 {
				active += weights[i]
			}
		}
		// The first class to empty at the current shares, and when.
		next, step := -1, math.Inf(1)
		for i := range q {
			if q[i] <= 0 {
				continue
			}
			if d := q[i] / (ratePerSec * weights[i] / active); d < step {
				next, step = i, d
			}
		}
		elapsed += step
		for i := range q {
			if q[i] <= 0 {
				continue
			}
			q[i] -= ratePerSec * weights[i] / active * step
			// A class emptying at the same moment as next (up to
			// rounding) empties with it.
			if i == next || q[i] <= 1e-9*float64(queued[i]) {
				q[i] = 0
			}
		}
		if q[ti] == 0 {
			return elapsed
		}
	}
	return elapsed
}

// JobDrainSeconds is how long until a job of class p published now would
// be done: DrainSeconds with the job added to its class's queue, plus the
// rest of a pause in force (pause; nothing runs before it ends). +Inf when
// ratePerSec is not positive.
func JobDrainSeconds(queued ClassCounts, p Priority, ratePerSec float64, pause time.Duration) float64 {
	if i := p.Index(); i >= 0 {
		queued[i]++
	}
	return max(pause, 0).Seconds() + DrainSeconds(queued, p, ratePerSec)
}

// BacklogDrainSeconds is how long until everything queued is done at
// ratePerSec (shared by weight or not, the tenant's work is done at the
// same rate), plus the rest of a pause in force: 0 with nothing queued,
// +Inf with jobs and no rate.
func BacklogDrainSeconds(queued ClassCounts, ratePerSec float64, pause time.Duration) float64 {
	n := queued.Total()
	if n == 0 {
		return 0
	}
	if !(ratePerSec > 0) {
		return math.Inf(1)
	}
	return max(pause, 0).Seconds() + float64(n)/ratePerSec
}
