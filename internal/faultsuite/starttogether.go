package faultsuite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// StartResult is what happened when serve and a worker were started at the
// same moment on a fresh 3-node JetStream cluster (R3): both provision the
// streams and buckets at once.
type StartResult struct {
	Layout    string         `json:"layout"`
	Processes []StartOutcome `json:"processes"`
	// AllReady is true when every process became ready; then Published
	// jobs were sent (a few per tenant) and Succeeded of them ran.
	AllReady  bool `json:"all_ready"`
	Published int  `json:"published"`
	Succeeded int  `json:"succeeded"`
}

// StartOutcome is one process's start.
type StartOutcome struct {
	Name     string  `json:"name"`
	Ready    bool    `json:"ready"`
	ReadySec float64 `json:"ready_sec,omitempty"`
	// Exit is why it did not become ready: its exit and the last error its
	// log shows.
	Exit string `json:"exit,omitempty"`
}

// startJobs is how many jobs per tenant StartTogether runs once both
// processes are ready.
const startJobs = 5

// StartTogether starts a fresh 3-node cluster, then serve and one worker at
// the same moment, and reports whether each became ready (within
// readyTimeout) and whether jobs then ran. Of cfg it uses Binaries, Dir,
// Tenants, Concurrency, Latency and Logger.
func StartTogether(ctx context.Context, cfg Config) (*StartResult, error) {
	cfg = cfg.withDefaults()
	r, cleanup, err := newRun(ctx, cfg, spec{natsNodes: 3, workers: 1}, "start-together")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := r.setUpWorld(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	if r.serve, err = r.launch("serve", "serve"); err != nil {
		return nil, err
	}
	w, err := r.launch("worker-1", "worker")
	if err != nil {
		return nil, err
	}
	r.workers = append(r.workers, w)
	res := &StartResult{Layout: r.layout(), AllReady: true}
	res.Processes = make([]StartOutcome, 2)
	var wg sync.WaitGroup
	for i, o := range []*odProcess{r.serve, w} {
		wg.Go(func() {
			out := StartOutcome{Name: o.Name}
			if err := o.waitReady(ctx); err != nil {
				out.Exit = lastError(o, err)
			} else {
				out.Ready, out.ReadySec = true, time.Since(start).Seconds()
			}
			res.Processes[i] = out
		})
	}
	wg.Wait()
	for _, p := range res.Processes {
		res.AllReady = res.AllReady && p.Ready
	}
	if !res.AllReady {
		return res, nil
	}
	gen := newGenerator(r.js, r.names, 1, 0)
	for _, tn := range r.tenants.ids {
		for i := range startJobs {
			id := fmt.Sprintf("%s-start-%d", tn, i)
			if gen.publish(ctx, tn, id) {
				res.Published++
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res.Succeeded = 0
		for _, tn := range r.tenants.ids {
			for i := range startJobs {
				if n, _ := r.platform.jobSuccesses(tn, fmt.Sprintf("%s-start-%d", tn, i)); n > 0 {
					res.Succeeded++
				}
			}
		}
		if res.Succeeded == res.Published || time.Now().After(deadline) {
			return res, nil
		}
		select { // other processes' work: polled
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// lastError is why o did not become ready: err's first line and the last
// line of its log (where orgdispatch prints the error it exits with).
func lastError(o *odProcess, err error) string {
	why, _, _ := strings.Cut(err.Error(), "\n")
	tail := strings.TrimSpace(o.LogTail(4000))
	if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	if tail == "" {
		return why
	}
	return why + "; its log ends: " + tail
}
