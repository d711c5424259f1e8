package faultsuite

import (
	"slices"
	"time"
)

// ResumedGap is the longest gap between a tenant's successful calls that
// still counts as its calls flowing: at the suite's load (tens of jobs per
// second per tenant) the normal gap is tens of milliseconds.
const ResumedGap = time.Second

// stall is the longest gap between consecutive successes in times that
// lies within [from, to], counting from the first success at or after from;
// a tenant that has not succeeded since its last success at to has an open
// gap up to to. at is where the gap began.
func stall(times []time.Time, from, to time.Time) (gap time.Duration, at time.Time, open bool) {
	var prev time.Time
	for _, t := range times {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			break
		}
		if !prev.IsZero() && t.Sub(prev) > gap {
			gap, at, open = t.Sub(prev), prev, false
		}
		prev = t
	}
	if prev.IsZero() {
		return to.Sub(from), from, true
	}
	if to.Sub(prev) > gap {
		gap, at, open = to.Sub(prev), prev, true
	}
	return gap, at, open
}

// recovery is how long after since the tenant's calls flowed again: the end
// of the last gap longer than ResumedGap that ends after since (and before
// to), or the first success after since when there is none. ok is false
// when the tenant had not resumed by to (its last success is more than
// ResumedGap before to, or there is none after since).
func recovery(times []time.Time, since, to time.Time) (d time.Duration, ok bool) {
	i, _ := slices.BinarySearchFunc(times, since, func(t, s time.Time) int { return t.Compare(s) })
	var prev time.Time
	if i > 0 {
		prev = times[i-1]
	}
	var first, resumed time.Time
	last := prev
	for _, t := range times[i:] {
		if t.After(to) {
			break
		}
		if first.IsZero() {
			first = t
		}
		if !last.IsZero() && t.Sub(last) > ResumedGap {
			resumed = t
		}
		last = t
	}
	if first.IsZero() || to.Sub(last) > ResumedGap {
		return 0, false
	}
	if resumed.IsZero() {
		resumed = first
	}
	return resumed.Sub(since), true
}
