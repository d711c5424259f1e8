package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable means the jobs stream did not answer: it does not exist
// (not provisioned), the server has no JetStream quorum, or the connection is
// down. Whether a timed-out job was queued is unknown; publishing it again
// with the same id is safe within the duplicate window.
var ErrUnavailable = errors.New("jobs stream unavailable")

// FullError means the jobs stream refused a job because it reached its
// MaxMsgs or MaxBytes (or the server its storage limit). Queued jobs are kept
// (the stream discards new, never old); the caller should retry later. The
// HTTP API answers 503.
type FullError struct {
	Stream string
	Reason string // the server's, e.g. "maximum messages exceeded"
}

func (e *FullError) Error() string {
	return fmt.Sprintf("jobs stream %s is full: %s", e.Stream, e.Reason)
}

// UnknownTenantError means no jobs stream takes the tenant's jobs: the tenant
// is not configured (or was removed; see RetireTenant). The HTTP API
// answers 404. NATS producers publishing on its subject get no answer from
// JetStream (nats: no responders).
type UnknownTenantError struct {
	Tenant string
}

func (e *UnknownTenantError) Error() string {
	return fmt.Sprintf("tenant %s is not configured: no jobs stream takes its jobs", e.Tenant)
}

// BacklogFullError means the tenant has as many jobs queued as its backlog
// limit (max_backlog) allows: the job was not queued. Every other tenant's
// publishes go on. The caller should retry later; the HTTP API answers 429.
type BacklogFullError struct {
	Tenant string
	// Limit is the tenant's max_backlog; Backlog what was queued (at least
	// Limit). PerOp means nats-server refused it: the jobs stream's limit
	// per tenant and operation (Limit) was reached.
	Limit   int
	Backlog int
	PerOp   bool
}

func (e *BacklogFullError) Error() string {
	if e.PerOp {
		return fmt.Sprintf("tenant %s's backlog is full: %d jobs of this operation queued, its limit (max_backlog %d)", e.Tenant, e.Backlog, e.Limit)
	}
	return fmt.Sprintf("tenant %s's backlog is full: %d jobs queued, max_backlog %d", e.Tenant, e.Backlog, e.Limit)
}

// ForeignDuplicateError means JetStream took the job for a duplicate of a
// message on another tenant's subject that carries this tenant's message id
// (a producer of the other tenant set it): the job was not queued. The
// worker dead-letters such a message rather than run it; publish the job
// again with another id.
type ForeignDuplicateError struct {
	Tenant, ID string
	// Subject is the subject of the message holding the id.
	Subject string
}

func (e *ForeignDuplicateError) Error() string {
	return fmt.Sprintf("job %s of tenant %s not queued: its message id is held by a message on %s, published for another tenant; publish it with another id", e.ID, e.Tenant, e.Subject)
}

// PublishResult is what the jobs stream said about a published job.
type PublishResult struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Duplicate is true when a job with the same id was already published
	// for the tenant within the duplicate window: this one was not queued
	// again.
	Duplicate bool `json:"duplicate"`
	// Seq is the job's sequence in the jobs stream (for a duplicate, the
	// original's).
	Seq uint64 `json:"seq"`
	// Priority is the class the job was queued in.
	Priority Priority `json:"priority,omitempty"`
}

// Publisher queues jobs: it validates them, publishes them on their tenant's
// subject with the job id as the JetStream message id (so a retried publish
// is deduplicated), and records them as queued in the status bucket. It is
// safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	names  Names
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	status  jetstream.KeyValue // nil until first found
	backlog map[string]*backlogEntry
	// consumerCounts: backlogs from consumers (WithConsumerBacklogCounts).
	consumerCounts bool
	streams        map[string]jetstream.Stream // jobs streams by name, once found
	drain          *drainEstimator             // deadline admission's figures (deadline.go), made on first use
	classes        map[string]bool             // urgent and bulk consumers known to exist, by name
}

// backlogEntry is what the Publisher knows of a tenant's backlog: its limit
// and queued count (pending) as its jobs stream counted them at, plus what it
// stored since that read began (since) and what it has admitted and not yet
// had an answer for (inflight). A job in flight during a read may be counted
// twice (in pending and in since): the figure errs high, never low.
type backlogEntry struct {
	limit, pending, since, inflight int
	stored                          int // jobs stored, ever: since is counted from it
	at                              time.Time
	refreshing                      bool // a read is under way in the background
}

func (e *backlogEntry) queued() int { return e.pending + e.since + e.inflight }

// backlogMaxAge bounds how long a tenant's backlog figures are reused.
const backlogMaxAge = time.Second

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithPublisherLogger sets where the Publisher logs (at Debug, status record
// failures). The default discards.
func WithPublisherLogger(l *slog.Logger) PublisherOption {
	return func(p *Publisher) {
		if l != nil {
			p.logger = l
		}
	}
}

// WithConsumerBacklogCounts makes the Publisher count a tenant's queued jobs
// from the tenant's consumer (NumPending + NumAckPending) rather than from
// its jobs stream's per-subject counts. Use it for a producer whose NATS
// user may read its tenants' consumers only (ProducerPermissions: a jobs
// stream's info would show the other tenants of its shard). The consumer's
// count may lag a publish just acknowledged, so concurrent publishes can
// take a tenant past its max_backlog by the few that land in that moment.
// Without it, a Publisher refused the stream's info falls back to it.
func WithConsumerBacklogCounts() PublisherOption {
	return func(p *Publisher) { p.consumerCounts = true }
}

// WithPublisherClock sets the clock stamping status records (default
// time.Now).
func WithPublisherClock(now func() time.Time) PublisherOption {
	return func(p *Publisher) {
		if now != nil {
			p.now = now
		}
	}
}

// NewPublisher returns a Publisher for the streams named by names, which
// Provision must have created.
func NewPublisher(js jetstream.JetStream, names Names, opts ...PublisherOption) *Publisher {
	p := &Publisher{
		js:      js,
		names:   names,
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
		backlog: map[string]*backlogEntry{},
		streams: map[string]jetstream.Stream{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish queues job for job.Tenant, which is required. An invalid job is an
// *InvalidJobError and is not published; a tenant that is not configured is
// an *UnknownTenantError; a tenant whose backlog is at its limit a
// *BacklogFullError; a full stream is a *FullError; a stream that does not
// answer is ErrUnavailable (wrapped).
//
// Unless the job is a duplicate, Publish also records it as queued in the
// status bucket. That record is best effort: the job is queued whether or not
// it is written (failures are logged at Debug), and it never overwrites a
// record a worker wrote after the job was published.
func (p *Publisher) Publish(ctx context.Context, job Job) (PublishResult, error) {
	if job.Tenant == "" {
		return PublishResult{}, invalid("tenant is required")
	}
	if err := job.Validate(job.Tenant); err != nil {
		return PublishResult{}, err
	}
	data, err := json.Marshal(job)
	if err != nil {
		return PublishResult{}, invalid("encode: %v", err)
	}
	if len(data) > MaxJobBytes {
		return PublishResult{}, invalid("job is %d bytes, larger than the %d byte limit", len(data), MaxJobBytes)
	}
	res := PublishResult{ID: job.ID, Tenant: job.Tenant, Priority: job.EffectivePriority()}
	done, err := p.admit(ctx, job.Tenant)
	if err != nil {
		return res, fmt.Errorf("dispatcher: publish job %s for tenant %s: %w", job.ID, job.Tenant, err)
	}

	// The status record's revision before publishing: the record is written
	// only if nobody (a fast worker) has written it since.
	key := StatusKey(job.Tenant, job.ID)
	kv := p.statusBucket(ctx)
	var rev uint64
	if kv != nil {
		switch e, err := kv.Get(ctx, key); {
		case err == nil:
			rev = e.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			p.logger.DebugContext(ctx, "status record not read", "tenant", job.Tenant, "job_id", job.ID, "err", err)
			kv = nil
		}
	}

	p.ensureClass(ctx, job.Tenant, res.Priority)
	msg := nats.NewMsg(p.names.JobSubjectOf(job.Tenant, res.Priority, job.Op))
	msg.Data = data
	msg.Header.Set(HeaderJobID, job.ID)
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(MsgID(job.Tenant, job.ID)),
		jetstream.WithExpectStream(p.names.JobsStream(job.Tenant)))
	if err != nil {
		// A job whose publish timed out may have been stored: count it.
		done(errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded))
		return res, p.publishError(ctx, job, err)
	}
	done(!ack.Duplicate)
	res.Seq, res.Duplicate = ack.Sequence, ack.Duplicate
	if res.Duplicate {
		return res, p.checkDuplicate(ctx, job, ack.Sequence)
	}
	if kv == nil {
		return res, nil
	}
	p.recordQueued(ctx, kv, key, rev, job)
	return res, nil
}

// recordQueued writes job's queued record, unless the record changed since
// revision rev (0: did not exist).
func (p *Publisher) recordQueued(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, job Job) {
	rec, err := json.Marshal(JobStatus{ID: job.ID, Tenant: job.Tenant, Op: job.Op, State: StateQueued, Updated: p.now().UTC()})
	if err != nil {
		return
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, rec)
	} else {
		_, err = kv.Update(ctx, key, rec, rev)
	}
	if err != nil {
		// ErrKeyExists: a worker wrote first, which is fine.
		p.logger.DebugContext(ctx, "status record not written", "tenant", job.Tenant, "job_id", job.ID, "op", job.Op, "err", err)
	}
}

// statusBucket returns the status bucket, or nil when it cannot be found now
// (a later Publish tries again).
func (p *Publisher) statusBucket(ctx context.Context) jetstream.KeyValue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != nil {
		return p.status
	}
	kv, err := p.js.KeyValue(ctx, p.names.StatusBucket())
	if err != nil {
		p.logger.DebugContext(ctx, "status bucket unavailable", "err", err)
		return nil
	}
	p.status = kv
	return kv
}

// JetStream error codes publishing can meet.
const (
	errCodeStoreFailed             jetstream.ErrorCode = 10077 // JSStreamStoreFailedF: "maximum messages exceeded", …
	errCodeInsufficientResources   jetstream.ErrorCode = 10023 // the server's storage limit
	errCodeStreamMessageExceedsMax                     = jetstream.JSErrCodeStreamMessageExceedsMaximum
)

// admit refuses a job of an unknown tenant or of one whose backlog is at its
// limit. It reads the tenant's backlog limit (its consumer's metadata) and
// how many of its jobs are queued or out (queuedJobs) once, then again at
// most once a second: in the background while the tenant has room to spare,
// and waiting for the answer once what it read plus what this Publisher
// stored or has in flight since comes near the limit.
//
// An admitted job holds a place in the backlog until its publish is
// answered: the caller must call done once, with whether the job was (or
// may have been) stored. So concurrent publishes of one Publisher never
// take a tenant past its limit.
//
// Publishing never waits long on a consumer or stream that cannot answer
// (its leader lost, an election under way): a read that fails or takes
// longer than admitTimeout decides on what was known — a full tenant stays
// refused, any other is let through (the stream still refuses a tenant it
// does not take).
func (p *Publisher) admit(ctx context.Context, tenant string) (done func(stored bool), err error) {
	now := p.now()
	p.mu.Lock()
	e := p.backlog[tenant]
	if e != nil && e.queued() < e.limit {
		fresh := now.Sub(e.at) < backlogMaxAge
		roomy := e.limit-e.queued() > e.limit/10
		if fresh || roomy {
			if !fresh && !e.refreshing {
				e.refreshing = true
				go func() { _ = p.readBacklog(context.WithoutCancel(ctx), tenant) }() // its outcome is the entry
			}
			e.inflight++
			p.mu.Unlock()
			return p.doneFunc(e), nil
		}
	}
	p.mu.Unlock()
	err = p.readBacklog(ctx, tenant)
	var unknown *UnknownTenantError
	if errors.As(err, &unknown) {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e = p.backlog[tenant]
	if e == nil {
		// Nothing known and no answer: let it through on the stream's word.
		p.logger.DebugContext(ctx, "tenant backlog not read; publishing without it", "tenant", tenant, "err", err)
		return func(bool) {}, nil
	}
	if q := e.queued(); q >= e.limit {
		return nil, &BacklogFullError{Tenant: tenant, Limit: e.limit, Backlog: q}
	}
	e.inflight++
	return p.doneFunc(e), nil
}

// admitTimeout bounds how long admit waits for a tenant's figures.
const admitTimeout = 2 * time.Second

// readBacklog reads tenant's backlog limit and queued jobs into its entry.
func (p *Publisher) readBacklog(ctx context.Context, tenant string) error {
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	p.mu.Lock()
	var from int // what was stored when the read began
	if e := p.backlog[tenant]; e != nil {
		from = e.stored
	}
	p.mu.Unlock()
	limit, queued, err := p.readFigures(ctx, tenant)
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.backlog[tenant]
	if err != nil {
		if e != nil {
			e.refreshing = false
		}
		return err
	}
	if e == nil {
		e = &backlogEntry{}
		p.backlog[tenant] = e
	}
	e.limit, e.pending, e.since, e.at, e.refreshing = limit, queued, e.stored-from, p.now(), false
	return nil
}

// readFigures asks NATS for tenant's backlog limit and queued jobs.
func (p *Publisher) readFigures(ctx context.Context, tenant string) (limit, queued int, err error) {
	c, err := p.js.Consumer(ctx, p.names.JobsStream(tenant), p.names.Consumer(tenant))
	if err != nil {
		return 0, 0, backlogReadError(tenant, "consumer", err)
	}
	limit, err = strconv.Atoi(c.CachedInfo().Config.Metadata[MetaMaxBacklog])
	if err != nil || limit <= 0 {
		limit = math.MaxInt // provisioned by an earlier version: no limit recorded
	}
	p.mu.Lock()
	consumerOnly := p.consumerCounts
	p.mu.Unlock()
	if consumerOnly {
		return limit, p.consumerQueued(ctx, tenant, c), nil
	}
	queued, err = p.queuedJobs(ctx, tenant)
	if errors.Is(err, nats.ErrPermissionViolation) {
		p.mu.Lock()
		p.consumerCounts = true // asked once; see WithConsumerBacklogCounts
		p.mu.Unlock()
		// A producer allowed its tenants' consumers only (see
		// ProducerPermissions: the stream's info would show the other
		// tenants of its shard): the consumer's count, which may lag a
		// publish it has just acknowledged by a moment.
		return limit, p.consumerQueued(ctx, tenant, c), nil
	}
	if err != nil {
		return 0, 0, backlogReadError(tenant, "jobs stream", err)
	}
	return limit, queued, nil
}

// ensureClass makes sure the tenant's consumer of class pr exists before
// its first job is published (EnsureClassConsumer), once per Publisher and
// consumer. A producer not allowed to create consumers publishes anyway: a
// worker replica creates the consumer when it finds the job (within
// seconds).
func (p *Publisher) ensureClass(ctx context.Context, tenant string, pr Priority) {
	if pr == PriorityNormal {
		return
	}
	name := p.names.PriorityConsumer(tenant, pr)
	p.mu.Lock()
	known := p.classes[name]
	p.mu.Unlock()
	if known {
		return
	}
	if _, err := EnsureClassConsumer(ctx, p.js, p.names, tenant, pr); err != nil {
		p.logger.DebugContext(ctx, "class consumer not ensured; a worker creates it", "tenant", tenant, "priority", pr, "err", err)
		return
	}
	p.mu.Lock()
	if p.classes == nil {
		p.classes = map[string]bool{}
	}
	p.classes[name] = true
	p.mu.Unlock()
}

// consumerQueued is the tenant's backlog as its class consumers count it:
// normal's (c, just read) and the others'. A class consumer that cannot be
// read counts nothing (the server's per-subject limit still holds).
func (p *Publisher) consumerQueued(ctx context.Context, tenant string, c jetstream.Consumer) int {
	info := c.CachedInfo()
	n := int(info.NumPending) + info.NumAckPending
	for _, pr := range Priorities() {
		if pr == PriorityNormal {
			continue
		}
		if oc, err := p.js.Consumer(ctx, p.names.JobsStream(tenant), p.names.PriorityConsumer(tenant, pr)); err == nil {
			oi := oc.CachedInfo()
			n += int(oi.NumPending) + oi.NumAckPending
		}
	}
	return n
}

// jobsStream is tenant's jobs stream, looked up once. Its cached info is
// not read: callers ask the stream what they need.
func (p *Publisher) jobsStream(ctx context.Context, tenant string) (jetstream.Stream, error) {
	name := p.names.JobsStream(tenant)
	p.mu.Lock()
	s := p.streams[name]
	p.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := p.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.streams[name] = s
	p.mu.Unlock()
	return s, nil
}

// queuedJobs is how many of tenant's jobs its jobs stream holds, queued or
// delivered and not yet acknowledged, as the stream counts its subjects.
// Not the consumer's NumPending: nats-server updates that after it has
// acknowledged a publish, so a read just after one may not count it.
func (p *Publisher) queuedJobs(ctx context.Context, tenant string) (int, error) {
	s, err := p.jobsStream(ctx, tenant)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(p.names.TenantJobsFilter(tenant)))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, msgs := range info.State.Subjects {
		n += int(msgs)
	}
	return n, nil
}

func backlogReadError(tenant, what string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		return &UnknownTenantError{Tenant: tenant}
	case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: tenant %s's %s: %w", ErrUnavailable, tenant, what, err)
	}
	return fmt.Errorf("tenant %s's %s: %w", tenant, what, err)
}

// doneFunc ends the admission of a job to e's backlog.
func (p *Publisher) doneFunc(e *backlogEntry) func(stored bool) {
	return func(stored bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		e.inflight--
		if stored {
			e.since++
			e.stored++
		}
	}
}

// checkDuplicate makes sure the message job is a duplicate of (at seq) is
// the tenant's own: a producer of another tenant in the same jobs stream
// could have published one with this tenant's message id. A message
// already consumed cannot be checked; the worker dead-letters one whose id
// names another tenant rather than run it.
func (p *Publisher) checkDuplicate(ctx context.Context, job Job, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	s, err := p.jobsStream(ctx, job.Tenant)
	if err != nil {
		return nil
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil // consumed meanwhile
	}
	if tenant, _, err := p.names.ParseJobSubject(m.Subject); err == nil && tenant == job.Tenant {
		return nil
	}
	return fmt.Errorf("dispatcher: publish job %s for tenant %s: %w", job.ID, job.Tenant, &ForeignDuplicateError{Tenant: job.Tenant, ID: job.ID, Subject: m.Subject})
}

func (p *Publisher) publishError(ctx context.Context, job Job, err error) error {
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	var apiErr *jetstream.APIError
	stream := p.names.JobsStream(job.Tenant)
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "per subject"):
		limit := 0
		if s, serr := p.js.Stream(ctx, stream); serr == nil {
			limit = int(s.CachedInfo().Config.MaxMsgsPerSubject)
		}
		err = &BacklogFullError{Tenant: job.Tenant, Limit: limit, Backlog: limit, PerOp: true}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed && strings.HasPrefix(apiErr.Description, "maximum "):
		err = &FullError{Stream: stream, Reason: apiErr.Description}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInsufficientResources:
		err = &FullError{Stream: stream, Reason: apiErr.Description}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamMessageExceedsMax:
		return invalid("job too large for the jobs stream: %s", apiErr.Description)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		if s, serr := p.js.Stream(ctx, stream); errors.Is(serr, jetstream.ErrStreamNotFound) ||
			(serr == nil && !slices.Contains(s.CachedInfo().Config.Subjects, p.names.TenantJobsFilter(job.Tenant))) {
			err = &UnknownTenantError{Tenant: job.Tenant}
		} else {
			err = fmt.Errorf("%w: no answer from %s", ErrUnavailable, stream)
		}
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDisconnected):
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("dispatcher: publish job %s for tenant %s: %w", job.ID, job.Tenant, err)
}

// ValidateTenantJob decodes and validates a job that arrived for tenant (on
// its subject, or in the HTTP API's path): DecodeJob, then Validate. The
// returned job's Tenant is set to tenant.
func ValidateTenantJob(tenant string, data []byte) (Job, error) {
	j, err := DecodeJob(data)
	if err != nil {
		return Job{}, err
	}
	if tenant == "" {
		return Job{}, invalid("tenant is required")
	}
	if err := j.Validate(tenant); err != nil {
		return Job{}, err
	}
	j.Tenant = tenant
	return j, nil
}
