package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadlineUnreachableError means drain-time admission refused a job: at
// the tenant's current rate, with what is queued ahead of it and the rest
// of a pause, it would not be done by its deadline. The job was not
// queued. The HTTP API answers 422 with these figures.
type DeadlineUnreachableError struct {
	Tenant   string
	JobID    string
	Priority Priority
	Deadline time.Time
	// At is when the estimate was made; Estimate how long from then until
	// the job would be done (JobDrainSeconds). Unbounded means no lane can
	// run the tenant's jobs now (every one parked): no estimate at all.
	At        time.Time
	Estimate  time.Duration
	Unbounded bool
	// Ahead is how many jobs of its class were queued before it (in the
	// jobs stream: waiting, delayed or in flight); RatePerSec the tenant's
	// rate the estimate assumes, shared by weight between its classes; Pause
	// the rest of a pause in force, part of Estimate.
	Ahead      uint64
	RatePerSec float64
	Pause      time.Duration
}

func (e *DeadlineUnreachableError) Error() string {
	head := fmt.Sprintf("job %s of tenant %s (%s) cannot be done by its deadline %s", e.JobID, e.Tenant, e.Priority, e.Deadline.UTC().Format(time.RFC3339))
	if e.Unbounded {
		return fmt.Sprintf("%s: no lane can run the tenant's jobs now (estimate unbounded; %d %s jobs ahead of it)", head, e.Ahead, e.Priority)
	}
	msg := fmt.Sprintf("%s: estimated done in %s (at %s), %s after it; %d %s jobs ahead of it at the tenant's %.4g jobs/s",
		head, roundEstimate(e.Estimate), e.At.Add(e.Estimate).UTC().Format(time.RFC3339), roundEstimate(e.At.Add(e.Estimate).Sub(e.Deadline)),
		e.Ahead, e.Priority, e.RatePerSec)
	if e.Pause > 0 {
		msg += fmt.Sprintf(", paused %s more", roundEstimate(e.Pause))
	}
	return msg
}

func roundEstimate(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// DefaultLanesCacheTTL is how long a Publisher's deadline admission reuses
// the live replicas' lane figures (they are rewritten every heartbeat).
const DefaultLanesCacheTTL = 2 * time.Second

// drainEstimator reads what deadline admission needs of a tenant: its
// consumer (pause, configured rate, scope), its jobs by class, and the
// live replicas' lanes (read at most once per DefaultLanesCacheTTL for
// every tenant).
type drainEstimator struct {
	js     jetstream.JetStream
	names  Names
	admin  *Admin // reads the lanes
	now    func() time.Time
	logger *slog.Logger
	stream func(ctx context.Context, tenant string) (jetstream.Stream, error) // the tenant's jobs stream

	mu      sync.Mutex // held while the lanes are read, so that callers share one read
	lanes   map[string][]LaneReport
	lanesAt time.Time
}

// estimator returns the Publisher's drainEstimator, made on first use.
func (p *Publisher) estimator() *drainEstimator {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drain == nil {
		p.drain = &drainEstimator{js: p.js, names: p.names, admin: NewAdmin(p.js, p.names, WithClock(p.now)), now: p.now, logger: p.logger, stream: p.jobsStream}
	}
	return p.drain
}

// DrainEstimate returns tenant's backlog by class and when a job of each
// class published now would be done, as deadline admission sees it (the
// same figures as Admin.Tenant's TenantDrain). It costs two requests (the
// tenant's consumer and its jobs stream's counts of its subjects) and a
// read of the lane figures at most every DefaultLanesCacheTTL.
func (p *Publisher) DrainEstimate(ctx context.Context, tenant string) (TenantDrain, error) {
	if !ValidTenantID(tenant) {
		return TenantDrain{}, &UnknownTenantError{Tenant: tenant}
	}
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	d, _, err := p.estimator().estimate(ctx, tenant)
	return d, err
}

// PublishWithinDeadline is Publish with drain-time admission: it refuses
// (a *DeadlineUnreachableError, nothing queued) a job that would not be
// done by its Deadline, given the rest of a pause in force and the jobs of
// its class and of the others ahead of it at the tenant's current rate
// (DrainEstimate). A job without a Deadline is an *InvalidJobError. When
// the figures cannot be read the job is not published either: the error
// wraps ErrUnavailable (retry), or is an *UnknownTenantError.
//
// The estimate assumes the rate the tenant is allowed: a tenant whose
// platform answers are slow enough to hold it below that (see
// TenantDrain.Saturated) takes longer, so a job admitted can still expire.
// A job refused could not have been done in time at the tenant's rate.
func (p *Publisher) PublishWithinDeadline(ctx context.Context, job Job) (PublishResult, error) {
	res := PublishResult{ID: job.ID, Tenant: job.Tenant}
	if job.Tenant == "" {
		return res, invalid("tenant is required")
	}
	if err := job.Validate(job.Tenant); err != nil {
		return res, err
	}
	if job.Deadline == nil {
		return res, invalid("deadline admission needs the job's deadline")
	}
	if err := p.CheckDeadline(ctx, job); err != nil {
		return res, fmt.Errorf("dispatcher: publish job %s for tenant %s: %w", job.ID, job.Tenant, err)
	}
	return p.Publish(ctx, job)
}

// CheckDeadline is PublishWithinDeadline's admission without the publish:
// nil when job (which must have a Deadline) would be done in time.
func (p *Publisher) CheckDeadline(ctx context.Context, job Job) error {
	if job.Deadline == nil {
		return invalid("deadline admission needs the job's deadline")
	}
	if !ValidTenantID(job.Tenant) {
		return &UnknownTenantError{Tenant: job.Tenant}
	}
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	d, pausedUntil, err := p.estimator().estimate(ctx, job.Tenant)
	if err != nil {
		return err
	}
	at := p.now()
	prio := job.EffectivePriority()
	class := d.Class(prio)
	var pause time.Duration
	if pausedUntil.After(at) {
		pause = pausedUntil.Sub(at)
	}
	e := &DeadlineUnreachableError{
		Tenant: job.Tenant, JobID: job.ID, Priority: prio, Deadline: *job.Deadline, At: at,
		Ahead: class.Backlog, RatePerSec: d.DrainRatePerSec, Pause: pause,
	}
	if class.DrainSeconds == nil {
		e.Unbounded = true
		return e
	}
	e.Estimate = time.Duration(*class.DrainSeconds * float64(time.Second))
	if at.Add(e.Estimate).After(*job.Deadline) {
		return e
	}
	return nil
}

// estimate is tenant's TenantDrain and the end of its pause (zero: not
// paused).
func (d *drainEstimator) estimate(ctx context.Context, tenant string) (TenantDrain, time.Time, error) {
	c, err := d.js.Consumer(ctx, d.names.JobsStream(tenant), d.names.Consumer(tenant))
	if err != nil {
		return TenantDrain{}, time.Time{}, backlogReadError(tenant, "consumer", err)
	}
	info := c.CachedInfo()
	classes, err := d.classes(ctx, tenant)
	if err != nil {
		return TenantDrain{}, time.Time{}, err
	}
	var until time.Time
	if info.Paused && info.Config.PauseUntil != nil {
		until = *info.Config.PauseUntil
	}
	return tenantDrainOf(info, d.readLanes(ctx)[tenant], classes, d.now()), until, nil
}

// classes is tenant's jobs by class from its jobs stream's per-subject
// counts; for a producer that may read its tenants' consumers only (see
// WithConsumerBacklogCounts), from its class consumers' counts (before a
// tenant has class consumers, its one consumer counts every class as
// normal).
func (d *drainEstimator) classes(ctx context.Context, tenant string) (ClassCounts, error) {
	s, err := d.stream(ctx, tenant)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(d.names.TenantJobsFilter(tenant)))
	}
	switch {
	case err == nil:
		return d.names.ClassBacklogs(info.State.Subjects)[tenant], nil
	case !errors.Is(err, nats.ErrPermissionViolation):
		return ClassCounts{}, backlogReadError(tenant, "jobs stream", err)
	}
	var out ClassCounts
	for _, p := range Priorities() {
		c, err := d.js.Consumer(ctx, d.names.JobsStream(tenant), d.names.PriorityConsumer(tenant, p))
		if err != nil {
			continue
		}
		ci := c.CachedInfo()
		out[p.Index()] = ci.NumPending + uint64(ci.NumAckPending)
	}
	return out, nil
}

// readLanes returns the live replicas' lanes, read at most once per
// DefaultLanesCacheTTL. Lanes that cannot be read (a producer not allowed
// the buckets) count as none: the estimate then assumes the tenant's
// configured rate.
func (d *drainEstimator) readLanes(ctx context.Context) map[string][]LaneReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := d.now(); d.lanes != nil && now.Sub(d.lanesAt) >= 0 && now.Sub(d.lanesAt) < DefaultLanesCacheTTL {
		return d.lanes
	}
	lanes, err := d.admin.Lanes(ctx)
	if err != nil {
		d.logger.DebugContext(ctx, "lane figures not read; drain estimates use the configured rates", "err", err)
		return nil
	}
	d.lanes, d.lanesAt = lanes, d.now()
	return lanes
}
