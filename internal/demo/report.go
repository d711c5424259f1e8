package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/worker"
)

// TenantFigures are one tenant's figures at one tick.
type TenantFigures struct {
	Tenant string
	// Noisy is true for org_noisy.
	Noisy bool
	// Offered is the number of jobs published so far.
	Offered uint64
	// Done and Dead count jobs that succeeded and that were dead-lettered.
	Done, Dead uint64
	// Queued is Offered - Done - Dead: jobs waiting or in flight.
	Queued uint64
	// Rate is jobs done per second since the previous tick.
	Rate float64
	// RateLimited counts 429 answers from the platform.
	RateLimited uint64
	// State is the lane's state (dispatcher.LaneRunning, LanePaused, …).
	State string
	// PausedUntil is when the tenant's pause ends; zero when not paused.
	PausedUntil time.Time
}

// Paused reports whether the tenant was paused at the tick.
func (f TenantFigures) Paused() bool { return f.State == dispatcher.LanePaused }

// Snapshot is one tick's figures, in tenant order (org_noisy first).
type Snapshot struct {
	At      time.Time
	Elapsed time.Duration
	Tenants []TenantFigures
}

// TenantSummary is one tenant's figures over the whole run.
type TenantSummary struct {
	// Last are the figures of the last tick.
	Last TenantFigures
	// PausedTicks counts the ticks at which the tenant was paused.
	PausedTicks int
	// PublishErrors counts jobs the load generator failed to publish.
	PublishErrors uint64
}

// Summary is what Run returns: figures over the whole run.
type Summary struct {
	Elapsed time.Duration
	Ticks   int
	Tenants []TenantSummary
}

// Tenant returns the summary of tenant id.
func (s Summary) Tenant(id string) (TenantSummary, bool) {
	for _, t := range s.Tenants {
		if t.Last.Tenant == id {
			return t, true
		}
	}
	return TenantSummary{}, false
}

// reporter takes the figures every tick, prints them and keeps the summary.
// Only its run goroutine touches its fields until run returns.
type reporter struct {
	cfg      Config
	plans    []plan
	counters []*counters
	pool     *worker.Pool
	w        io.Writer
	width    int // of the tenant column

	start  time.Time
	lastAt time.Time
	sum    Summary
}

func newReporter(cfg Config, plans []plan, cs []*counters, pool *worker.Pool, w io.Writer) *reporter {
	r := &reporter{cfg: cfg, plans: plans, counters: cs, pool: pool, w: w, start: time.Now()}
	r.lastAt = r.start
	r.sum.Tenants = make([]TenantSummary, len(plans))
	for i, p := range plans {
		r.width = max(r.width, len(p.tenant.ID))
		r.sum.Tenants[i].Last = TenantFigures{Tenant: p.tenant.ID, Noisy: p.noisy, State: dispatcher.LaneRunning}
	}
	return r
}

func (r *reporter) run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s := r.take(now)
			r.print(s)
			if r.cfg.OnTick != nil {
				r.cfg.OnTick(s)
			}
		}
	}
}

// take reads the pool's lanes and the load's counters.
func (r *reporter) take(now time.Time) Snapshot {
	lanes := map[string]dispatcher.LaneReport{}
	for _, l := range r.pool.Lanes() {
		lanes[l.Tenant] = l
	}
	dt := now.Sub(r.lastAt).Seconds()
	s := Snapshot{At: now, Elapsed: now.Sub(r.start), Tenants: make([]TenantFigures, len(r.plans))}
	for i, p := range r.plans {
		c := r.counters[i]
		l := lanes[p.tenant.ID]
		c.finished.Store(l.Succeeded + l.Dead)
		f := TenantFigures{
			Tenant:      p.tenant.ID,
			Noisy:       p.noisy,
			Offered:     c.published.Load(),
			Done:        l.Succeeded,
			Dead:        l.Dead,
			RateLimited: l.RateLimited,
			State:       l.State,
		}
		if f.State == "" {
			f.State = dispatcher.LaneStopped
		}
		if f.Paused() {
			f.PausedUntil = l.PausedUntil
		}
		if f.Offered > f.Done+f.Dead {
			f.Queued = f.Offered - f.Done - f.Dead
		}
		prev := r.sum.Tenants[i].Last.Done
		if dt > 0 && f.Done >= prev {
			f.Rate = float64(f.Done-prev) / dt
		}
		ts := &r.sum.Tenants[i]
		ts.Last = f
		ts.PublishErrors = c.failed.Load()
		if f.Paused() {
			ts.PausedTicks++
		}
		s.Tenants[i] = f
	}
	r.lastAt = now
	r.sum.Ticks++
	return s
}

func (r *reporter) print(s Snapshot) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  +%ds\n", s.At.Format(time.TimeOnly), int(s.Elapsed.Round(time.Second)/time.Second))
	for _, f := range s.Tenants {
		state := f.State
		if f.Paused() && !f.PausedUntil.IsZero() {
			// Whole seconds on the printed clock: until - now adds up.
			until := f.PausedUntil.Truncate(time.Second)
			left := max(until.Sub(s.At.Truncate(time.Second)), 0)
			state = fmt.Sprintf("PAUSED until %s (%ds left)", until.Format(time.TimeOnly), int(left/time.Second))
		}
		fmt.Fprintf(&b, "  %-*s  done %6d  %5.1f jobs/s  queued %4d  429s %3d  %s\n",
			r.width, f.Tenant, f.Done, f.Rate, f.Queued, f.RateLimited, state)
	}
	io.WriteString(r.w, b.String())
}

// summary returns the figures over the run (call after run has returned).
func (r *reporter) summary() Summary {
	r.sum.Elapsed = time.Since(r.start)
	return r.sum
}

func dashboardLine(url string) string {
	if url == "" {
		return ""
	}
	return fmt.Sprintf("  HTTP      %s (dashboard; API under /v1, metrics on /metrics)\n", url)
}

// writeHeader explains what the lines below show.
func writeHeader(w io.Writer, cfg Config, natsURL, apiBase, httpURL string, plans []plan) {
	quota := cfg.quotaPerMinute()
	perSec := quota / 60
	var noisy, quiet []string
	for _, p := range plans {
		if p.noisy {
			noisy = append(noisy, p.tenant.ID)
		} else {
			quiet = append(quiet, p.tenant.ID)
		}
	}
	quietNames := strings.Join(quiet, ", ")
	if len(quiet) > 4 {
		quietNames = fmt.Sprintf("%s … %s (%d tenants)", quiet[0], quiet[len(quiet)-1], len(quiet))
	}
	fmt.Fprintf(w, `orgdispatch demo: per-org isolation against a rate-limited platform, live

  NATS      %s (embedded JetStream; try: nats --server %s stream ls)
  platform  simulator at %s. Every org has its own OAuth client; each client may
            make %d requests per %s window (%.0f/min; the real platform counts 300/min in
            60s windows: short windows keep a 429's Retry-After to seconds)
  noisy     %s: configured for %.0f/min (%gx what the platform allows), offered %.1f jobs/s:
            it hits 429s, and it alone pauses until its window resets
  quiet     %s: configured for %.0f/min, offered %.0f%% of it (%.1f jobs/s):
            they keep that rate while %s is paused
%s  columns   jobs done so far, jobs done in the last %s, jobs queued, 429 answers, lane state
  Ctrl-C stops: jobs in flight get %s to finish, the rest are handed back to the queue

`,
		natsURL, natsURL, apiBase,
		cfg.Limit, cfg.Window, quota,
		strings.Join(noisy, ","), quota*cfg.NoisyFactor, cfg.NoisyFactor, perSec*cfg.NoisyFactor,
		quietNames, quota, cfg.QuietLoad*100, perSec*cfg.QuietLoad, NoisyTenant,
		dashboardLine(httpURL), cfg.Tick, cfg.ShutdownTimeout)
}
