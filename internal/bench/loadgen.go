package bench

import (
	"container/heap"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// flow is one tenant's offered load: jobs at a steady rate (open loop: the
// schedule does not wait for the system under test).
type flow struct {
	tenant int
	rate   float64       // jobs per second
	phase  time.Duration // the first job is due at start+phase
	track  bool          // per-job campaign (latency measured) or the tenant's shared one
}

// publishFunc publishes one job of tenant with the given id and params. It
// is called from several goroutines at once.
type publishFunc func(ctx context.Context, tenant int, jobID string, params []byte) error

// genResult is what a load generator did.
type genResult struct {
	Published int `json:"published"`
	Failed    int `json:"failed"`
	Dropped   int `json:"dropped"` // not published: the recorder's job capacity was used up
	// Late counts jobs not published by a second after the schedule's end
	// because the server did not take them: the generator gives up on
	// them rather than run on.
	Late     int           `json:"late"`
	LagP99   time.Duration `json:"lag_p99_ns"`
	LagMax   time.Duration `json:"lag_max_ns"`
	FirstErr string        `json:"first_error,omitempty"`
}

type due struct {
	at   time.Time
	flow int
	k    int
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// jobCounter numbers jobs for their ids; unique within a process run, so
// within a scenario's fresh JetStream server.
var jobCounter atomic.Uint64

// lateGrace is how long after its schedule's end a load generator keeps
// trying to publish jobs that were due before the end.
const lateGrace = time.Second

// runOpenLoop publishes every flow's jobs on schedule from start until end
// (or ctx is done) with the given number of publishing goroutines, and
// records each job in rec. It returns when the last job is published, or at
// the latest lateGrace after end; it never publishes more than the flows'
// rates allow in [start, end).
func runOpenLoop(ctx context.Context, flows []flow, start, end time.Time, publishers int, rec *recorder, pub publishFunc) genResult {
	pubCtx, cancel := context.WithDeadline(ctx, end.Add(lateGrace))
	defer cancel()
	type item struct {
		flow int
		due  time.Time
	}
	work := make(chan item, 4096)
	var (
		res      genResult
		mu       sync.Mutex
		lags     []time.Duration
		wg       sync.WaitGroup
		pubCount atomic.Int64
		failed   atomic.Int64
		dropped  atomic.Int64
		late     atomic.Int64
	)
	for range max(publishers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for it := range work {
				if pubCtx.Err() != nil {
					if ctx.Err() == nil {
						late.Add(1)
					}
					continue
				}
				f := flows[it.flow]
				seq := uint64(0)
				if f.track {
					if seq = rec.newJob(f.tenant); seq == 0 {
						dropped.Add(1)
						continue
					}
				}
				id := "b" + strconv.FormatUint(jobCounter.Add(1), 36)
				now := time.Now()
				local = append(local, now.Sub(it.due))
				err := pub(pubCtx, f.tenant, id, jobParams(f.tenant, seq))
				if err == nil {
					rec.published(f.tenant, seq, now)
				}
				if err != nil {
					if pubCtx.Err() != nil {
						if ctx.Err() == nil {
							late.Add(1)
						}
						continue
					}
					if failed.Add(1) == 1 {
						mu.Lock()
						res.FirstErr = err.Error()
						mu.Unlock()
					}
					continue
				}
				pubCount.Add(1)
			}
			mu.Lock()
			lags = append(lags, local...)
			mu.Unlock()
		}()
	}

	h := &dueHeap{}
	for i, f := range flows {
		if f.rate <= 0 {
			continue
		}
		if at := start.Add(f.phase); at.Before(end) {
			heap.Push(h, due{at: at, flow: i})
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
schedule:
	for h.Len() > 0 {
		next := (*h)[0]
		if wait := time.Until(next.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				break schedule
			case <-timer.C:
			}
		}
		now := time.Now()
		for h.Len() > 0 && !(*h)[0].at.After(now) {
			d := heap.Pop(h).(due)
			f := flows[d.flow]
			select {
			case work <- item{flow: d.flow, due: d.at}:
			case <-ctx.Done():
				break schedule
			}
			k := d.k + 1
			if at := start.Add(f.phase + time.Duration(float64(k)/f.rate*float64(time.Second))); at.Before(end) {
				heap.Push(h, due{at: at, flow: d.flow, k: k})
			}
		}
	}
	close(work)
	wg.Wait()
	res.Published = int(pubCount.Load())
	res.Failed = int(failed.Load())
	res.Dropped = int(dropped.Load())
	res.Late = int(late.Load())
	if len(lags) > 0 {
		res.LagP99 = percentileDur(lags, 0.99)
		res.LagMax = lags[len(lags)-1]
	}
	return res
}
