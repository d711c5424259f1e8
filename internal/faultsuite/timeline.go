package faultsuite

import (
	"context"
	"fmt"
	"time"
)

// preconditionTimeout bounds the wait, after the warm-up, for the fault's
// precondition.
const preconditionTimeout = 30 * time.Second

// measure runs the load, injects the fault after the warm-up, undoes it
// FaultFor later, ends the load, waits for the jobs to drain and accounts
// for every one.
func (r *run) measure(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	res := &Result{
		Scenario: cfg.Scenario, Layout: r.layout(), TenantCount: cfg.Tenants, RatePerSec: cfg.Rate, Backlog: cfg.Backlog,
		Concurrency: cfg.Concurrency, LatencyMs: float64(cfg.Latency) / float64(time.Millisecond),
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	gen := newGenerator(r.js, r.names, cfg.Rate, cfg.Backlog)
	genDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(genDone)
		gen.run(loadCtx, r.tenants.ids)
	}()
	stopAndWait := func() {
		stopLoad()
		<-genDone
	}
	defer stopAndWait()
	loadEnd := start.Add(cfg.Duration)

	// The fault schedule: at the end of the warm-up, once the precondition
	// holds (polled: it is other processes' work).
	warm := time.NewTimer(cfg.Warmup)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-warm.C:
	}
	deadline := time.Now().Add(preconditionTimeout)
	for {
		err := r.precondition()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("faultsuite: %s: before the fault: %v\n%s", cfg.Scenario, err, r.logTails())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	inFlight, leaders := r.inFlight(ctx)
	faultTime := time.Now()
	what, undo, err := r.inject(ctx)
	if err != nil {
		return nil, err
	}
	res.Fault = what
	res.FaultAtSec = faultTime.Sub(start).Seconds()
	r.logf("fault at %.1f s: %s", res.FaultAtSec, what)

	var restoreTime time.Time
	if undo != nil {
		// A deliberate downtime (the fault schedule), not a wait for a
		// condition.
		t := time.NewTimer(cfg.FaultFor)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		restoreTime = time.Now()
		if err := undo(ctx); err != nil {
			return nil, fmt.Errorf("faultsuite: %s: undo the fault: %w", cfg.Scenario, err)
		}
		res.RestoreAtSec = restoreTime.Sub(start).Seconds()
		r.logf("fault undone at %.1f s", res.RestoreAtSec)
	}
	end := time.NewTimer(time.Until(loadEnd))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-end.C:
	}
	stopAndWait()
	loadEnd = time.Now()
	res.LoadSec = loadEnd.Sub(start).Seconds()
	if loadEnd.Before(restoreTime) {
		r.notes = append(r.notes, "the fault was undone after the load ended")
	}

	acc, err := r.drain(ctx, gen, loadEnd)
	if err != nil {
		return nil, err
	}
	res.DrainSec, res.Drained = acc.drainSec, acc.drained
	for _, tn := range r.tenants.ids {
		t := acc.tenants[tn]
		t.InFlightAtFault = inFlight[tn]
		t.ConsumerLeader = leaders[tn]
		t.Targeted = r.spec.targeted && tn == r.tenants.ids[0]
		times := r.platform.successTimes(tn)
		gap, at, open := stall(times, start, loadEnd)
		t.LongestStallSec, t.StallAtSec, t.StallOpen = gap.Seconds(), at.Sub(start).Seconds(), open
		since := faultTime
		if t.Targeted && !restoreTime.IsZero() {
			since = restoreTime
		}
		d, ok := recovery(times, since, loadEnd)
		t.RecoverSec, t.Recovered = d.Seconds(), ok
		res.Tenants = append(res.Tenants, t)
		res.InFlightAtFault += t.InFlightAtFault
		if r.cfg.Scenario == NATSKill || r.cfg.Scenario == LeaderKill {
			for _, at := range times {
				if !at.Before(faultTime.Add(-AckStateWindow)) && at.Before(faultTime) {
					res.AckedJustBefore++
				}
			}
		}
		res.Published += t.Published
		res.Succeeded += t.Succeeded
		res.DeadLettered += t.DeadLettered
		res.Lost += t.Lost
		res.Duplicates += t.Duplicates
		res.Unconfirmed += t.Unconfirmed
	}
	for _, p := range r.processes() {
		if !r.killed[p] && !p.Running() {
			res.Exited = append(res.Exited, fmt.Sprintf("%s (%v)", p.Name, p.Err()))
		}
	}
	res.Notes = r.notes
	return res, nil
}

// inFlight is each tenant's jobs delivered and not yet acknowledged, and
// (in a cluster) the server leading its consumer.
func (r *run) inFlight(ctx context.Context) (map[string]int, map[string]string) {
	out, leaders := map[string]int{}, map[string]string{}
	for _, tn := range r.tenants.ids {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := r.js.Consumer(cctx, r.names.JobsStream(tn), r.names.Consumer(tn))
		if err == nil {
			var info, ierr = c.Info(cctx)
			if ierr == nil {
				out[tn] = info.NumAckPending
				if info.Cluster != nil {
					leaders[tn] = info.Cluster.Leader
				}
			}
			err = ierr
		}
		cancel()
		if err != nil {
			r.notes = append(r.notes, fmt.Sprintf("in flight of %s before the fault unknown: %v", tn, err))
		}
	}
	return out, leaders
}

// logTails is the end of every process's log, for an error.
func (r *run) logTails() string {
	var s string
	for _, p := range r.processes() {
		s += fmt.Sprintf("--- %s:\n%s\n", p.Name, p.LogTail(2000))
	}
	return s
}
