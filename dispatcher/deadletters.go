package dispatcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultDeadLetterPage is how many dead letters DeadLetters returns when
// no limit is given.
const DefaultDeadLetterPage = 50

// DeadLetters lists dead letters in stream order, starting after sequence
// after (0: from the start), at most limit (0: DefaultDeadLetterPage; capped
// at MaxDeadLetterPage). tenant "" lists every tenant's. Pass the last
// returned Seq as after to read the next page; an empty page is the end.
func (a *Admin) DeadLetters(ctx context.Context, tenant string, limit int, after uint64) ([]DeadLetter, error) {
	filter := a.names.DLQSubjects()
	if tenant != "" {
		if !ValidTenantID(tenant) {
			return nil, fmt.Errorf("admin: dead letters: tenant %q: %w", tenant, ErrTenantNotFound)
		}
		filter = a.names.TenantDLQFilter(tenant)
	}
	switch {
	case limit <= 0:
		limit = DefaultDeadLetterPage
	case limit > MaxDeadLetterPage:
		limit = MaxDeadLetterPage
	}
	s, err := a.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	out := []DeadLetter{}
	for seq := after + 1; len(out) < limit; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("admin: dead letters: read from %d: %w", seq, err)
		}
		out = append(out, a.deadLetter(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// DeadLetter returns one dead letter by its sequence.
func (a *Admin) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	m, err := a.getDeadLetter(ctx, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	return a.deadLetter(m), nil
}

func (a *Admin) getDeadLetter(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := a.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	if seq == 0 {
		return nil, fmt.Errorf("admin: dead letter 0: %w", ErrDeadLetterNotFound)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("admin: dead letter %d: %w", seq, ErrDeadLetterNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: dead letter %d: %w", seq, err)
	}
	return m, nil
}

// deadLetterOrigin is where a dead letter came from: its tenant and
// operation, from the original subject header, else the tenant and op
// headers, else the dead-letter subject.
func (a *Admin) deadLetterOrigin(m *jetstream.RawStreamMsg) (tenant, op string) {
	if t, o, err := a.names.ParseJobSubject(m.Header.Get(HeaderSubject)); err == nil {
		return t, o
	}
	tenant, op = m.Header.Get(HeaderTenant), m.Header.Get(HeaderOp)
	if tenant != "" && op != "" {
		return tenant, op
	}
	rest, ok := strings.CutPrefix(m.Subject, a.names.Prefix()+".dlq.")
	if !ok {
		return tenant, op
	}
	t, o, _ := strings.Cut(rest, ".")
	return cmp.Or(tenant, t), cmp.Or(op, o)
}

func (a *Admin) deadLetter(m *jetstream.RawStreamMsg) DeadLetter {
	tenant, op := a.deadLetterOrigin(m)
	h := m.Header
	dl := DeadLetter{
		Seq:        m.Sequence,
		Subject:    m.Subject,
		Tenant:     tenant,
		Op:         op,
		JobID:      h.Get(HeaderJobID),
		ErrorClass: h.Get(HeaderErrorClass),
		Error:      h.Get(HeaderError),
		DeadAt:     m.Time.UTC(),
		BodyBytes:  len(m.Data),
	}
	dl.HTTPStatus, _ = strconv.Atoi(h.Get(HeaderHTTPStatus))
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderFirstAttempt)); err == nil {
		dl.FirstAttempt = t.UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderLastAttempt)); err == nil {
		dl.LastAttempt = t.UTC()
	}
	body := m.Data
	if a.bodyLimit >= 0 && len(body) > a.bodyLimit {
		body, dl.BodyTruncated = body[:a.bodyLimit], true
	}
	dl.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	if dl.JobID == "" {
		if j, err := DecodeJob(m.Data); err == nil {
			dl.JobID = j.ID
		}
	}
	return dl
}

// ReplayMsgID is the Nats-Msg-Id of a replayed dead letter: new, so the
// jobs stream's duplicate window does not swallow the replay as a repeat of
// the original job, and stable, so replaying the same dead letter twice
// (e.g. after a failed delete) publishes it once.
func ReplayMsgID(tenant, jobID string, seq uint64) string {
	return MsgID(tenant, jobID) + ":replay:" + strconv.FormatUint(seq, 10)
}

// Replay publishes a dead letter's original job again on its tenant's
// subject, then deletes it from the dead-letter stream. A body that is not
// a valid job for its tenant is refused with an *InvalidJobError (replaying
// it could only dead-letter it again).
func (a *Admin) Replay(ctx context.Context, seq uint64) (ReplayResult, error) {
	m, err := a.getDeadLetter(ctx, seq)
	if err != nil {
		return ReplayResult{}, err
	}
	tenant, op := a.deadLetterOrigin(m)
	job, err := DecodeJob(m.Data)
	if err == nil {
		err = job.Validate(tenant)
	}
	if err == nil && job.Op != op {
		err = invalid("dead letter was stored for op %q but the job names op %q", op, job.Op)
	}
	if err != nil {
		return ReplayResult{}, fmt.Errorf("admin: replay dead letter %d: %w", seq, err)
	}
	data := m.Data
	// A cron schedule's occurrence (its body has the schedule's id) is
	// replayed under the occurrence's id, with its own record.
	if hid := m.Header.Get(HeaderJobID); len(hid) == len(job.ID)+OccurrenceSuffixLen && strings.HasPrefix(hid, job.ID+".") && jobIDRE.MatchString(hid) {
		job.ID = hid
		if data, err = json.Marshal(job); err != nil {
			return ReplayResult{}, fmt.Errorf("admin: replay dead letter %d: %w", seq, err)
		}
	}
	res := ReplayResult{Seq: seq, Tenant: tenant, Op: op, JobID: job.ID, MsgID: ReplayMsgID(tenant, job.ID, seq)}
	// A replay is a re-submission: it runs in the bulk class, behind live
	// work, whatever the job's own class was.
	if _, err := EnsureClassConsumer(ctx, a.js, a.names, tenant, PriorityBulk); err != nil {
		return ReplayResult{}, fmt.Errorf("admin: replay dead letter %d: %w", seq, err)
	}
	msg := nats.NewMsg(a.names.JobSubjectOf(tenant, PriorityBulk, op))
	msg.Data = data
	msg.Header.Set(HeaderTenant, tenant)
	msg.Header.Set(HeaderOp, op)
	msg.Header.Set(HeaderJobID, job.ID)
	statusRev, statusKV := a.statusRevision(ctx, tenant, job.ID)
	ack, err := a.js.PublishMsg(ctx, msg, jetstream.WithMsgID(res.MsgID), jetstream.WithExpectStream(a.names.JobsStream(tenant)))
	if err != nil {
		return ReplayResult{}, fmt.Errorf("admin: replay dead letter %d: publish to %s: %w", seq, msg.Subject, err)
	}
	res.JobSeq, res.Duplicate = ack.Sequence, ack.Duplicate
	if !res.Duplicate && statusKV != nil {
		// Best effort, as the Publisher does: the job is queued again
		// whether or not its record says so, and a record a worker wrote
		// meanwhile is not overwritten.
		rec, _ := json.Marshal(JobStatus{ID: job.ID, Tenant: tenant, Op: op, State: StateQueued, Updated: a.now().UTC()})
		key := StatusKey(tenant, job.ID)
		if statusRev == 0 {
			_, _ = statusKV.Create(ctx, key, rec)
		} else {
			_, _ = statusKV.Update(ctx, key, rec, statusRev)
		}
	}
	if err := a.DeleteDeadLetter(ctx, seq); err != nil && !errors.Is(err, ErrDeadLetterNotFound) {
		return res, fmt.Errorf("admin: dead letter %d replayed as %s but not deleted: %w", seq, res.MsgID, err)
	}
	return res, nil
}

// statusRevision returns the status bucket and the revision of a job's
// record (0: none); a nil bucket when it cannot be read now.
func (a *Admin) statusRevision(ctx context.Context, tenant, id string) (uint64, jetstream.KeyValue) {
	kv, err := a.bucket(ctx, &a.status, a.names.StatusBucket())
	if err != nil {
		return 0, nil
	}
	e, err := kv.Get(ctx, StatusKey(tenant, id))
	switch {
	case err == nil:
		return e.Revision(), kv
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, kv
	}
	return 0, nil
}

// DeleteDeadLetter removes a dead letter for good.
func (a *Admin) DeleteDeadLetter(ctx context.Context, seq uint64) error {
	// The server's answers to deleting a missing sequence vary (not found,
	// or a store error past the end), so look first.
	if _, err := a.getDeadLetter(ctx, seq); err != nil {
		return err
	}
	s, err := a.dlqStream(ctx)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		if _, gerr := a.getDeadLetter(ctx, seq); errors.Is(gerr, ErrDeadLetterNotFound) {
			return gerr // deleted meanwhile
		}
		return fmt.Errorf("admin: delete dead letter %d: %w", seq, err)
	}
	return nil
}
