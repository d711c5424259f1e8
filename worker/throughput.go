package worker

import (
	"sync"
	"time"
)

// windowSeconds is how far back DonePerSec looks.
const windowSeconds = 10

// rateWindow counts events in one-second buckets over the last
// windowSeconds, for a lane's recent completions per second.
type rateWindow struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [windowSeconds]uint64
	last    int64 // the second buckets[last%windowSeconds] counts
	start   time.Time
}

func newRateWindow(now func() time.Time) *rateWindow {
	t := now()
	return &rateWindow{now: now, last: t.Unix(), start: t}
}

// add counts one event now.
func (w *rateWindow) add() {
	sec := w.now().Unix()
	w.mu.Lock()
	w.advance(sec)
	w.buckets[sec%windowSeconds]++
	w.mu.Unlock()
}

// perSecond is the mean rate over the window's complete seconds (those
// since the lane started, when that is fewer).
func (w *rateWindow) perSecond() float64 {
	now := w.now()
	sec := now.Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(sec)
	var sum uint64
	for i := int64(1); i <= windowSeconds-1; i++ {
		sum += w.buckets[(sec-i)%windowSeconds]
	}
	span := min(int64(windowSeconds-1), sec-w.start.Unix())
	if span < 1 {
		return 0
	}
	return float64(sum) / float64(span)
}

// advance clears the buckets of the seconds that passed since the last call.
func (w *rateWindow) advance(sec int64) {
	if sec <= w.last {
		return
	}
	for s := w.last + 1; s <= sec && s <= w.last+windowSeconds; s++ {
		w.buckets[s%windowSeconds] = 0
	}
	w.last = sec
}
