package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

	mu     sync.Mutex
	status jetstream.KeyValue // nil until first found
}

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
		js:     js,
		names:  names,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:    time.Now,
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish queues job for job.Tenant, which is required. An invalid job is an
// *InvalidJobError and is not published; a full stream is a *FullError; a
// stream that does not answer is ErrUnavailable (wrapped).
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
	res := PublishResult{ID: job.ID, Tenant: job.Tenant}

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

	msg := nats.NewMsg(p.names.JobSubject(job.Tenant, job.Op))
	msg.Data = data
	msg.Header.Set(HeaderJobID, job.ID)
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(MsgID(job.Tenant, job.ID)),
		jetstream.WithExpectStream(p.names.JobsStream()))
	if err != nil {
		return res, p.publishError(job, err)
	}
	res.Seq, res.Duplicate = ack.Sequence, ack.Duplicate
	if res.Duplicate || kv == nil {
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

func (p *Publisher) publishError(job Job, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed && strings.HasPrefix(apiErr.Description, "maximum "):
		err = &FullError{Stream: p.names.JobsStream(), Reason: apiErr.Description}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInsufficientResources:
		err = &FullError{Stream: p.names.JobsStream(), Reason: apiErr.Description}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamMessageExceedsMax:
		return invalid("job too large for the jobs stream: %s", apiErr.Description)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		err = fmt.Errorf("%w: no answer from %s (not provisioned?)", ErrUnavailable, p.names.JobsStream())
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
