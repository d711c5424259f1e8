package dispatcher_test

import (
	"math"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestDrainSeconds(t *testing.T) {
	const (
		u = dispatcher.PriorityUrgent
		n = dispatcher.PriorityNormal
		b = dispatcher.PriorityBulk
	)
	inf := math.Inf(1)
	for _, tc := range []struct {
		name   string
		queued dispatcher.ClassCounts // urgent, normal, bulk
		target dispatcher.Priority
		rate   float64
		want   float64
	}{
		{"a class alone gets the whole rate", dispatcher.ClassCounts{0, 0, 10}, b, 1, 10},
		{"nothing queued in the class", dispatcher.ClassCounts{5, 5, 0}, b, 1, 0},
		{"not a class", dispatcher.ClassCounts{5, 5, 5}, dispatcher.Priority("vip"), 1, 0},
		{"queues in proportion to the weights empty together: urgent", dispatcher.ClassCounts{7, 2, 1}, u, 10, 1},
		{"queues in proportion to the weights empty together: normal", dispatcher.ClassCounts{7, 2, 1}, n, 10, 1},
		{"queues in proportion to the weights empty together: bulk", dispatcher.ClassCounts{7, 2, 1}, b, 10, 1},
		{"two classes 7:1", dispatcher.ClassCounts{70, 0, 10}, b, 8, 10},
		// urgent empties at 1 s (7/s); bulk got 1 job done by then and its
		// 99 others go at the whole 8/s.
		{"urgent empties, bulk takes its share", dispatcher.ClassCounts{7, 0, 100}, b, 8, 1 + 99.0/8},
		{"urgent first of the two", dispatcher.ClassCounts{7, 0, 100}, u, 8, 1},
		// bulk is never starved: 1 in 8 while urgent has a long queue.
		{"a bulk job behind a long urgent queue", dispatcher.ClassCounts{700, 0, 1}, b, 8, 1},
		{"a normal job behind a long urgent queue", dispatcher.ClassCounts{700, 2, 0}, n, 9, 1},
		// Shares 7, 2, 1 of 10/s: urgent empties at 2 s (normal 6 left,
		// bulk 8); then normal 20/3 /s and bulk 10/3 /s: normal empties
		// 0.9 s later (bulk 5 left), and bulk takes 10/s for its last 5.
		{"three classes: urgent", dispatcher.ClassCounts{14, 10, 10}, u, 10, 2},
		{"three classes: normal", dispatcher.ClassCounts{14, 10, 10}, n, 10, 2.9},
		{"three classes: bulk, when everything is done", dispatcher.ClassCounts{14, 10, 10}, b, 10, 3.4},
		{"no rate", dispatcher.ClassCounts{0, 1, 0}, n, 0, inf},
		{"negative rate", dispatcher.ClassCounts{0, 1, 0}, n, -1, inf},
		{"NaN rate", dispatcher.ClassCounts{0, 1, 0}, n, math.NaN(), inf},
		{"no rate, nothing queued", dispatcher.ClassCounts{}, n, 0, 0},
		{"infinite rate", dispatcher.ClassCounts{0, 1, 0}, n, inf, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dispatcher.DrainSeconds(tc.queued, tc.target, tc.rate)
			if !near(got, tc.want) {
				t.Errorf("DrainSeconds(%v, %s, %v) = %v, want %v", tc.queued, tc.target, tc.rate, got, tc.want)
			}
		})
	}
}

// TestDrainSecondsLastClassIsTheWholeBacklog checks the model conserves
// work: the class that empties last does so when the whole backlog is done
// at the tenant's rate, whatever the mix.
func TestDrainSecondsLastClassIsTheWholeBacklog(t *testing.T) {
	for _, q := range []dispatcher.ClassCounts{{1, 1, 1}, {3, 50, 7}, {1000, 1, 0}, {0, 9, 900}, {13, 0, 0}} {
		last := 0.0
		for _, p := range dispatcher.Priorities() {
			last = max(last, dispatcher.DrainSeconds(q, p, 3))
		}
		if want := dispatcher.BacklogDrainSeconds(q, 3, 0); !near(last, want) {
			t.Errorf("%v: last class empties at %v s, the backlog takes %v s", q, last, want)
		}
	}
}

func TestJobDrainSeconds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		queued dispatcher.ClassCounts
		p      dispatcher.Priority
		rate   float64
		pause  time.Duration
		want   float64
	}{
		{"an empty tenant: the job alone", dispatcher.ClassCounts{}, dispatcher.PriorityBulk, 2, 0, 0.5},
		{"the rest of a pause comes first", dispatcher.ClassCounts{}, dispatcher.PriorityBulk, 2, 30 * time.Second, 30.5},
		{"behind its own class", dispatcher.ClassCounts{0, 0, 99}, dispatcher.PriorityBulk, 10, 0, 10},
		// The new urgent job is the 8th: urgent gets 7 of 8/s.
		{"beside a long bulk queue", dispatcher.ClassCounts{7, 0, 1000}, dispatcher.PriorityUrgent, 8, 0, 8.0 / 7},
		{"no rate", dispatcher.ClassCounts{}, dispatcher.PriorityNormal, 0, time.Second, math.Inf(1)},
		{"a pause already over counts nothing", dispatcher.ClassCounts{}, dispatcher.PriorityNormal, 1, -time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dispatcher.JobDrainSeconds(tc.queued, tc.p, tc.rate, tc.pause); !near(got, tc.want) {
				t.Errorf("JobDrainSeconds = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBacklogDrainSeconds(t *testing.T) {
	if got := dispatcher.BacklogDrainSeconds(dispatcher.ClassCounts{}, 0, time.Minute); got != 0 {
		t.Errorf("nothing queued: %v, want 0", got)
	}
	if got := dispatcher.BacklogDrainSeconds(dispatcher.ClassCounts{1, 2, 3}, 2, 10*time.Second); !near(got, 13) {
		t.Errorf("6 jobs at 2/s after 10 s: %v, want 13", got)
	}
	if got := dispatcher.BacklogDrainSeconds(dispatcher.ClassCounts{0, 1, 0}, 0, 0); !math.IsInf(got, 1) {
		t.Errorf("no rate: %v, want +Inf", got)
	}
}

func near(got, want float64) bool {
	if math.IsInf(want, 1) || math.IsInf(got, 1) {
		return got == want
	}
	return math.Abs(got-want) <= 1e-9*max(1, math.Abs(want))
}
