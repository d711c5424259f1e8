package faultsuite

import (
	"context"
	"time"
)

// accounts is every published job's fate at the end of a run.
type accounts struct {
	tenants  map[string]TenantResult
	drained  bool
	drainSec float64
}

// drain waits until every acknowledged job has succeeded or been
// dead-lettered, or DrainTimeout has passed, then accounts for each.
func (r *run) drain(ctx context.Context, gen *generator, loadEnd time.Time) (accounts, error) {
	dl := newDeadLetters(r.js, r.names)
	deadline := loadEnd.Add(r.cfg.DrainTimeout)
	for {
		uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := dl.update(uctx)
		cancel()
		acc := r.account(gen, dl)
		lost := 0
		for _, t := range acc.tenants {
			lost += t.Lost
		}
		if err == nil && lost == 0 {
			acc.drained, acc.drainSec = true, time.Since(loadEnd).Seconds()
			return acc, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return accounts{}, err
			}
			acc.drainSec = time.Since(loadEnd).Seconds()
			return acc, nil
		}
		select { // the jobs are other processes' work: polled
		case <-ctx.Done():
			return accounts{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// account sorts the jobs into succeeded, dead-lettered and lost.
func (r *run) account(gen *generator, dl *deadLetters) accounts {
	acked, unconfirmed := gen.published()
	acc := accounts{tenants: map[string]TenantResult{}}
	for _, tn := range r.tenants.ids {
		t := TenantResult{Tenant: tn, Published: len(acked[tn]), Unconfirmed: len(unconfirmed[tn])}
		for _, id := range acked[tn] {
			n, first := r.platform.jobSuccesses(tn, id)
			switch {
			case n > 0:
				t.Succeeded++
				t.Duplicates += n - 1
				t.SlowestJobSec = max(t.SlowestJobSec, first.Sub(gen.publishedAt(tn, id)).Seconds())
			case dl.has(tn, id):
				t.DeadLettered++
			default:
				t.Lost++
			}
		}
		acc.tenants[tn] = t
	}
	return acc
}
