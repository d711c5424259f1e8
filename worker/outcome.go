package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

// pauseSlack: a 429 whose pause ends less than this after the one already
// known does not pause the consumer again. Retry-After counts whole seconds,
// so the answers to requests sent together ask for (nearly) the same time.
const pauseSlack = 250 * time.Millisecond

// pausedHandBackCap caps the delay of a job handed back because its tenant
// is paused. A paused consumer delivers nothing, redeliveries included, so
// the delay does not need to cover the pause: the server holds the job until
// the pause ends. Capping it means that when an operator resumes a tenant
// early, the jobs that were handed back come back within seconds instead of
// at the original deadline.
const pausedHandBackCap = 5 * time.Second

// blockedDelay is the hand-back delay of a job the gate refused: the rest of
// a pause up to pausedHandBackCap; none for a parking, which is local to
// this replica (it stops pulling; a healthy replica takes the job at once).
func blockedDelay(remaining time.Duration, state string) time.Duration {
	if state == dispatcher.LanePaused {
		return min(remaining, pausedHandBackCap)
	}
	return 0
}

// jobKeyRE matches job ids that can be status keys (the envelope's id rule).
var jobKeyRE = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_.=-]{0,126}[A-Za-z0-9_=-]$|^[A-Za-z0-9_=-]$`)

// run is one delivery of one job.
type run struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	tenant   string
	op       string
	job      dispatcher.Job
	start    time.Time
	first    time.Time // the job's first attempt (this one, or read from its record)
	free     int       // earlier deliveries that did not count as attempts
	base     int       // deliveries by earlier consumers or streams (JobStatus.DeliveryBase)
	consumer time.Time // when the consumer that delivered it was created
	attempts int       // this delivery's attempt number, if it counts
	corr     string    // the platform's ININ-Correlation-Id of this delivery's last answer
	class    int       // the class's index (dispatcher.Priorities) of the consumer that delivered it
}

func (r *run) key() (string, bool) {
	if !jobKeyRE.MatchString(r.job.ID) {
		return "", false
	}
	return dispatcher.StatusKey(r.tenant, r.job.ID), true
}

func (r *run) status(state string, now time.Time) dispatcher.JobStatus {
	st := dispatcher.JobStatus{
		ID: r.job.ID, Tenant: r.tenant, Op: r.op, State: state, CorrelationID: r.corr,
		Attempts: r.attempts, Updated: now, FreeDeliveries: r.free, FirstAttempt: r.first,
	}
	if r.meta != nil {
		st.Seq, st.Delivery = r.meta.Sequence.Stream, r.meta.NumDelivered
		st.Stream, st.Consumer, st.DeliveryBase = r.meta.Stream, r.consumer, r.base
	}
	return st
}

// deliveries is how many times the job was delivered, this delivery
// included, by this consumer and earlier ones.
func (r *run) deliveries() int {
	if r.meta == nil {
		return 0
	}
	return r.base + int(r.meta.NumDelivered)
}

// handle runs one delivered message to its outcome: ack, delayed retry,
// hand-back or dead letter. It never leaves a message without one.
func (l *lane) handle(msg jetstream.Msg, pl *puller) {
	p := l.p
	r := &run{msg: msg, tenant: l.id, op: "unknown", start: p.cfg.Now()}
	r.first = r.start
	defer l.keepAlive(msg)()

	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; cannot happen on a consumer's iterator.
		// Even so, it is terminated only once its dead letter is stored.
		p.log.Error("job without JetStream metadata", "tenant", l.id, "error", err)
		_ = l.decode(r) // its op and id, for the dead letter
		l.giveUp(r, deadLetter{class: ClassInvalid, reason: "delivery without JetStream metadata: " + err.Error()})
		return
	}
	r.meta = meta
	r.consumer = l.consumerCreatedAt(pl)
	r.class = pl.index
	r.attempts = int(meta.NumDelivered)

	if err := l.decode(r); err != nil {
		l.giveUp(r, deadLetter{class: ClassInvalid, reason: err.Error()})
		return
	}

	// The attempt budget ignores deliveries that were handed back (429,
	// pause, credentials, shutdown): attempts = deliveries − free ones. The
	// first delivery has none, so the common path reads nothing — unless the
	// job is older than its consumer (created again after a server restart
	// forgot it) or was moved by the upgrade: then its record holds the
	// deliveries made before.
	older := !r.consumer.IsZero() && meta.Timestamp.Before(r.consumer)
	if meta.NumDelivered > 1 || older || r.msg.Headers().Get(dispatcher.HeaderUpgraded) != "" {
		if key, ok := r.key(); ok {
			st, found, err := l.status.get(l.jobsCtx, key)
			if err != nil {
				l.cond.Report(slog.LevelWarn, l.id, condReadStatus, "job_id", r.job.ID, "error", err)
			} else {
				l.cond.Clear(l.id, condReadStatus)
			}
			if found {
				r.free = st.FreeDeliveries
				r.base = st.DeliveryBase
				if st.Seq != 0 && (st.Stream != meta.Stream || !st.Consumer.Equal(r.consumer)) {
					// Written by an earlier consumer or stream: its
					// deliveries count, and this one's start from 1.
					r.base += int(st.Delivery)
				}
				if !st.FirstAttempt.IsZero() {
					r.first = st.FirstAttempt
				}
			}
		}
		r.attempts = max(1, r.deliveries()-r.free)
	}

	now := p.cfg.Now()
	if r.job.Deadline != nil && now.After(*r.job.Deadline) {
		l.giveUp(r, deadLetter{class: ClassExpired, reason: "deadline " + r.job.Deadline.UTC().Format(time.RFC3339) + " passed before the job could run"})
		return
	}
	if until, state := l.gate.blockedUntil(now); !until.IsZero() {
		if r.first == r.start {
			r.first = time.Time{} // not an attempt: not the first one either
		}
		l.handBack(r, blockedDelay(until.Sub(now), state), "lane "+state, 0, OutcomeHandedBack)
		return
	}
	if budget := l.maxAttempts(); r.attempts > budget {
		// Its last attempt failed but the dead letter could not be stored then.
		l.giveUp(r, deadLetter{class: ClassExhausted, reason: fmt.Sprintf("all %d attempts failed", budget)})
		return
	}

	l.refreshLimits() // rate: auto: read the org's limits when a read is due
	l.status.put(r.status(dispatcher.StateRunning, now))
	res, err := l.call(r)
	if res != nil {
		r.corr = res.CorrelationID
	} else {
		r.corr = platform.CorrelationID(err)
	}
	l.settle(r, res, err)
}

// decode reads the job from the message and validates it against the
// subject it came on: the subject's tenant and operation are the truth.
func (l *lane) decode(r *run) error {
	tenant, op, err := l.p.cfg.Names.ParseJobSubject(r.msg.Subject())
	if err != nil {
		return err
	}
	r.op = op
	if tenant != l.id {
		return fmt.Errorf("subject %q is not tenant %s's", r.msg.Subject(), l.id)
	}
	job, err := dispatcher.DecodeJob(r.msg.Data())
	r.job = job
	if err != nil {
		return err
	}
	// A fired schedule's occurrence: its own id (see dispatcher.ScheduledJob).
	if job, err = dispatcher.ScheduledJob(l.p.cfg.Names, tenant, job, r.msg.Headers()); err != nil {
		return err
	}
	r.job = job
	if err := job.Validate(tenant); err != nil {
		return err
	}
	if job.Op != op {
		return &dispatcher.InvalidJobError{Reason: fmt.Sprintf("job names op %q but was published for op %q", job.Op, op)}
	}
	// A message id scoped to another tenant (<other>:<id>) was set by a
	// producer of this tenant to make the other tenant's job a duplicate in
	// the shared jobs stream: never run it (the other tenant's Publisher
	// reports the clash, dispatcher.ForeignDuplicateError).
	if id := r.msg.Headers().Get(nats.MsgIdHdr); id != "" {
		if scope, _, ok := strings.Cut(id, ":"); ok && scope != tenant && scope != "upgrade" && dispatcher.ValidTenantID(scope) {
			return &dispatcher.InvalidJobError{Reason: fmt.Sprintf("Nats-Msg-Id %q is scoped to tenant %s, not %s: want %s:<job id>", id, scope, tenant, tenant)}
		}
	}
	return nil
}

// call sends the job to the platform. A 401 drops the token and tries once
// more at once with a new one.
func (l *lane) call(r *run) (*platform.Result, error) {
	client := l.currentClient()
	ctx := withClass(l.jobsCtx, r.class)
	res, err := client.Do(ctx, r.job.Op, r.job.Params)
	var authErr *platform.AuthError
	if errors.As(err, &authErr) {
		l.p.log.Info("platform rejected the token; fetching a new one", "tenant", l.id, "job_id", r.job.ID, "status", authErr.Status)
		client.DropToken()
		res, err = client.Do(ctx, r.job.Op, r.job.Params)
	}
	return res, err
}

// settle acts on the platform's answer, classified once by the platform
// package: one errors.As switch, one outcome per class.
func (l *lane) settle(r *run, res *platform.Result, err error) {
	var (
		blocked   *blockedError
		limited   *platform.RateLimitError
		authErr   *platform.AuthError
		tokenErr  *platform.TokenError
		permErr   *platform.PermanentError
		invalid   *platform.InvalidRequestError
		transient *platform.TransientError
	)
	p := l.p
	switch {
	case err == nil:
		l.succeed(r, res)

	case context.Cause(l.jobsCtx) != nil:
		// Shutdown cancelled it: back to the queue at once, for another
		// replica. Not the job's fault, not an attempt.
		l.handBack(r, 0, "worker shut down during the attempt", 0, OutcomeHandedBack)

	case errors.As(err, &blocked):
		l.handBack(r, blockedDelay(blocked.Until.Sub(p.cfg.Now()), blocked.State), "lane "+blocked.State, 0, OutcomeHandedBack)

	case errors.As(err, &limited):
		l.rateLimitedBy(r, limited)

	case errors.As(err, &authErr):
		until := l.parkAndStopPulling(dispatcher.LaneCredentialsRejected, 0)
		l.parked(r, until, dispatcher.LaneCredentialsRejected, authErr.Error(), authErr.Status)

	case errors.As(err, &tokenErr):
		state := dispatcher.LaneTokenUnavailable
		if tokenErr.Rejected {
			state = dispatcher.LaneCredentialsRejected
		}
		// A 429 (or 503) from the token endpoint with Retry-After: park at
		// least that long.
		until := l.parkAndStopPulling(state, tokenErr.RetryAfter)
		l.parked(r, until, state, tokenErr.Error(), tokenErr.Status)

	case errors.As(err, &permErr):
		reason := permErr.Error()
		if len(permErr.Body) > 0 {
			reason += "; body: " + string(permErr.Body)
		}
		l.giveUp(r, deadLetter{class: ClassPermanent, reason: reason, httpStatus: permErr.Status})

	case errors.As(err, &invalid):
		l.giveUp(r, deadLetter{class: ClassInvalid, reason: invalid.Error()})

	case errors.As(err, &transient):
		l.retry(r, err.Error(), transient.Status, transient.RetryAfter)

	default:
		// Not classified by the platform client (a bug or a new failure):
		// retrying within the budget is the safe choice.
		l.retry(r, err.Error(), 0, 0)
	}
}

func (l *lane) succeed(r *run, res *platform.Result) {
	p := l.p
	// A plain Ack, not DoubleAck (AckSync): measured with
	// BenchmarkPoolThroughput (1 tenant, concurrency 64), waiting for the
	// server's confirmation halved the jobs/s (≈ 9.6k against ≈ 21k) for
	// +7 % CPU, because each job then holds its concurrency slot for one more
	// round trip to a busy server. And it would not change the guarantee: an
	// ack lost with the connection means a redelivery after AckWait, which a
	// DoubleAck could report but not prevent. Delivery is at-least-once either
	// way.
	if err := r.msg.Ack(); err != nil {
		l.cond.Report(slog.LevelWarn, l.id, condAck, "job_id", r.job.ID, "op", r.op, "error", err)
	} else {
		l.cond.Clear(l.id, condAck)
	}
	l.cond.Clear(l.id, condRetrying)
	l.gate.unpark()
	now := p.cfg.Now()
	// Counters and hooks first: whoever sees the succeeded record or event
	// sees them already counted.
	l.succeeded.Add(1)
	l.done.add()
	p.cfg.Hooks.JobFinished(l.id, r.op, OutcomeSucceeded, now.Sub(r.start))
	st := r.status(dispatcher.StateSucceeded, now)
	st.HTTPStatus = res.Status
	l.status.put(st)
	p.publishEvent(event{ID: r.job.ID, Tenant: l.id, Op: r.op, Outcome: dispatcher.StateSucceeded, HTTPStatus: res.Status, CorrelationID: r.corr, At: now})
	p.log.Debug("job succeeded", "tenant", l.id, "job_id", r.job.ID, "op", r.op, "status", res.Status)
}

// rateLimitedBy pauses the tenant on every replica and hands the job back
// until the pause ends; the delivery does not count as an attempt.
func (l *lane) rateLimitedBy(r *run, e *platform.RateLimitError) {
	now := l.p.cfg.Now()
	until, reason := l.rateLimited429(e, r.job.ID)
	delay := until.Sub(now)
	if paused := l.gate.paused(); paused.After(until) {
		delay = paused.Sub(now)
	}
	l.handBack(r, delay, reason, 429, OutcomeRateLimited)
}

// rateLimited429 acts on a 429 (to a job or to the lane's own limits read):
// it counts it, lets rate: auto learn from the body's limit, and pauses the
// tenant on every replica until now + Retry-After. It returns the pause's
// end and the reason recorded for it.
func (l *lane) rateLimited429(e *platform.RateLimitError, jobID string) (time.Time, string) {
	p := l.p
	wait := e.RetryAfter
	if wait <= 0 {
		wait = p.cfg.DefaultRetryAfter
	}
	wait = min(wait, p.cfg.MaxPause)
	now := p.cfg.Now()
	until := now.Add(wait)
	l.rateLimited.Add(1)
	p.cfg.Hooks.RateLimited(l.id, wait)
	reason := fmt.Sprintf("429 from platform, Retry-After %s", wait.Round(time.Second))
	if e.Limit != nil && e.Limit.Key != "" {
		reason += fmt.Sprintf(", limit %s = %d", e.Limit.Key, e.Limit.Value)
	}
	l.learnFrom429(e)
	l.setError(reason)
	if l.gate.pause(until, pauseSlack) {
		p.cfg.Hooks.PauseChanged(l.id, until)
		p.log.Info("tenant paused", "tenant", l.id, "job_id", jobID, "status", 429, "until", until.UTC().Format(time.RFC3339),
			"reason", reason, "correlation_id", e.CorrelationID)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(l.jobsCtx), statusTimeout)
		if _, err := dispatcher.ExtendPause(ctx, p.cfg.JS, p.cfg.Names, l.id, until, reason, p.cfg.ReplicaID); err != nil {
			l.cond.Report(slog.LevelWarn, l.id, condPauseServer, "error", err)
		} else {
			l.cond.Clear(l.id, condPauseServer)
		}
		cancel()
	}
	return until, reason
}

// learnFrom429 lets rate: auto take the quota from a 429 body's limit when it
// names the paced limit. A 429 of another limit (an endpoint family's) only
// pauses the tenant: it must not lower the whole tenant's pace for good.
func (l *lane) learnFrom429(e *platform.RateLimitError) {
	l.mu.Lock()
	auto := l.tenant.RateAuto
	l.mu.Unlock()
	if !auto || e.Limit == nil {
		return
	}
	if !isPacedLimit(e.Limit) {
		l.p.log.Debug("429 names another limit than the paced one: pausing only", "tenant", l.id, "limit", e.Limit.Key, "namespace", e.Limit.Namespace)
		return
	}
	if l.quota.learn(e.Limit.Value, RateSource429) {
		l.p.log.Info("rate: auto learnt the quota", "tenant", l.id, "source", RateSource429, "limit", e.Limit.Key, "per_minute", e.Limit.Value)
		l.applyRate()
	}
}

// parked hands the job back at once, for a healthy replica, while this
// replica's lane waits for working credentials or a working token endpoint
// (see parking.go).
func (l *lane) parked(r *run, until time.Time, state, reason string, status int) {
	l.setError(state + ": " + reason)
	l.cond.Report(slog.LevelWarn, l.id, condParked, "job_id", r.job.ID, "status", status, "state", state, "until", until.UTC().Format(time.RFC3339), "error", reason, "correlation_id", r.corr)
	l.handBack(r, 0, state+": "+reason, status, OutcomeHandedBack)
}

// retry ends a counted attempt that failed transiently: another delivery
// after a backoff with full jitter (never sooner than the answer's
// Retry-After, when it had one), or a dead letter when the budget is spent.
func (l *lane) retry(r *run, reason string, status int, retryAfter time.Duration) {
	p := l.p
	l.setError(reason)
	budget := l.maxAttempts()
	if r.attempts >= budget {
		l.giveUp(r, deadLetter{class: ClassExhausted, reason: fmt.Sprintf("attempt %d of %d: %s", r.attempts, budget, reason), httpStatus: status})
		return
	}
	delay := max(fullJitter(backoffCeiling(r.attempts, p.cfg.BackoffBase, p.cfg.BackoffMax), nil), min(retryAfter, p.cfg.BackoffMax))
	now := p.cfg.Now()
	l.retried.Add(1)
	p.cfg.Hooks.JobFinished(l.id, r.op, OutcomeRetried, now.Sub(r.start))
	st := r.status(dispatcher.StateRetrying, now)
	st.Error, st.HTTPStatus = reason, status
	// A counted attempt: its record carries only the error and the first
	// attempt's time, so one try is enough; it never replaces a later
	// delivery's record.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.jobsCtx), statusTimeout)
	if err := l.status.putSync(ctx, st); err != nil {
		l.cond.Report(slog.LevelWarn, l.id, condRecordRetry, "job_id", r.job.ID, "error", err)
	} else {
		l.cond.Clear(l.id, condRecordRetry)
	}
	cancel()
	l.nak(r, delay)
	p.publishEvent(event{ID: r.job.ID, Tenant: l.id, Op: r.op, Outcome: dispatcher.StateRetrying, HTTPStatus: status, Error: reason, CorrelationID: r.corr, At: now})
	p.log.Debug("job will be retried", "tenant", l.id, "job_id", r.job.ID, "op", r.op, "status", status, "attempt", r.attempts, "delay", delay, "error", reason, "correlation_id", r.corr)
	l.cond.Report(slog.LevelInfo, l.id, condRetrying, "job_id", r.job.ID, "op", r.op, "status", status, "attempt", r.attempts, "error", reason, "correlation_id", r.corr)
}

// handBack returns the job to the queue without using up an attempt: it
// records the free delivery durably first (the next delivery's attempt count
// relies on it), then naks with delay (0: at once). A slow or failing write
// is tried again, with backoff, until it is stored — the message is kept in
// progress meanwhile — so that a slow status bucket never turns a free
// delivery into an attempt. Only a shutdown past its deadline gives up on it.
func (l *lane) handBack(r *run, delay time.Duration, reason string, status int, outcome string) {
	p := l.p
	now := p.cfg.Now()
	if key, ok := r.key(); ok {
		mine := r.status(dispatcher.StateRetrying, now)
		mine.Error, mine.HTTPStatus = reason, status
		record := func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool) {
			st := mine
			if found {
				if supersedes(cur, st) {
					return cur, false // a later delivery recorded its own
				}
				if r.meta != nil && cur.Seq == st.Seq && cur.Delivery == st.Delivery && cur.State == dispatcher.StateRetrying {
					return cur, false // this delivery's outcome is stored (an earlier try landed)
				}
				st.FreeDeliveries = cur.FreeDeliveries + 1
				if !cur.FirstAttempt.IsZero() {
					st.FirstAttempt = cur.FirstAttempt
				}
			} else {
				st.FreeDeliveries = r.free + 1
			}
			st.Attempts = 0
			if r.meta != nil {
				st.Attempts = max(0, r.deliveries()-st.FreeDeliveries)
			}
			return st, true
		}
		for try := 1; ; try++ {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(l.jobsCtx), statusTimeout)
			err := l.status.update(ctx, key, record)
			cancel()
			if err == nil {
				l.cond.Clear(l.id, condRecordHandBack)
				break
			}
			l.cond.Report(slog.LevelWarn, l.id, condRecordHandBack, "job_id", r.job.ID, "tries", try, "error", err)
			if context.Cause(l.jobsCtx) != nil {
				break // shutting down past the deadline: hand it back regardless
			}
			t := time.NewTimer(backoffCeiling(try, handBackRetryBase, handBackRetryMax))
			select {
			case <-t.C:
			case <-l.jobsCtx.Done():
				t.Stop()
			}
		}
	}
	l.nak(r, delay)
	p.cfg.Hooks.JobFinished(l.id, r.op, outcome, now.Sub(r.start))
	p.log.Debug("job handed back", "tenant", l.id, "job_id", r.job.ID, "op", r.op, "status", status, "delay", delay, "reason", reason)
}

// Backoff between tries to record a hand-back.
const (
	handBackRetryBase = 50 * time.Millisecond
	handBackRetryMax  = 2 * time.Second
)

// condlog conditions of the outcome paths, logged once per lane while they
// last (see lane.cond).
const (
	condRetrying       = "jobs failed transiently and will be retried"
	condDeadLettered   = "jobs dead-lettered"
	condAck            = "ack failed; jobs may run again"
	condReadStatus     = "read job status failed; counting every delivery as an attempt"
	condPauseServer    = "pause tenant on the server failed; other replicas learn of the 429 on their own"
	condRecordHandBack = "record handed-back delivery failed; retrying before the nak"
	condRecordRetry    = "record retry failed"
	condNak            = "nak failed; the job is redelivered after the ack wait"
)

// nak hands the message back after delay (0: at once).
func (l *lane) nak(r *run, delay time.Duration) {
	var err error
	if delay > 0 {
		err = r.msg.NakWithDelay(delay)
	} else {
		err = r.msg.Nak()
	}
	if err != nil {
		l.cond.Report(slog.LevelWarn, l.id, condNak, "job_id", r.job.ID, "error", err)
		return
	}
	l.cond.Clear(l.id, condNak)
}

// handBackUnstarted returns a message that was buffered when the lane
// stopped: not run, not an attempt.
func (l *lane) handBackUnstarted(msg jetstream.Msg) {
	r := &run{msg: msg, tenant: l.id, op: "unknown", start: l.p.cfg.Now()}
	if meta, err := msg.Metadata(); err == nil {
		r.meta = meta
	}
	if _, op, err := l.p.cfg.Names.ParseJobSubject(msg.Subject()); err == nil {
		r.op = op
	}
	r.job, _ = dispatcher.DecodeJob(msg.Data())
	l.handBack(r, 0, "worker shut down before the job started", 0, OutcomeHandedBack)
}

// giveUp dead-letters the job: the dead letter is stored first, and only
// once the stream has it is the message terminated. If it cannot be stored
// the message is handed back after a backoff instead: nothing is lost.
func (l *lane) giveUp(r *run, dl deadLetter) {
	p := l.p
	now := p.cfg.Now()
	dl.attempts, dl.first, dl.last = r.attempts, r.first, now
	if err := p.publishDeadLetter(l.jobsCtx, r, dl); err != nil {
		p.log.Error("store dead letter; retrying later", "tenant", l.id, "job_id", r.job.ID, "op", r.op, "error", err)
		l.nak(r, backoffCeiling(1, p.cfg.BackoffBase, p.cfg.BackoffMax))
		return
	}
	if err := r.msg.TermWithReason(dl.class); err != nil {
		p.log.Warn("terminate dead-lettered job; it may be delivered again", "tenant", l.id, "job_id", r.job.ID, "error", err)
	}
	l.setError(dl.class + ": " + dl.reason)
	l.dead.Add(1)
	p.cfg.Hooks.JobFinished(l.id, r.op, OutcomeDead, now.Sub(r.start))
	if _, ok := r.key(); ok {
		st := r.status(dispatcher.StateDead, now)
		st.Error, st.HTTPStatus = dl.class+": "+dl.reason, dl.httpStatus
		l.status.put(st)
	}
	p.publishEvent(event{ID: r.job.ID, Tenant: l.id, Op: r.op, Outcome: dispatcher.StateDead, HTTPStatus: dl.httpStatus, Error: dl.class + ": " + dl.reason, CorrelationID: r.corr, At: now})
	// One line per tenant and class while jobs keep being given up (a
	// permanent 4xx storm, exhausted retries), summed up once a minute; every
	// one of them is in the dead-letter stream with its reason.
	l.cond.Report(slog.LevelWarn, l.id, condDeadLettered+" ("+dl.class+")", "job_id", r.job.ID, "op", r.op, "status", dl.httpStatus, "class", dl.class, "attempts", dl.attempts, "error", dl.reason, "correlation_id", r.corr)
}
